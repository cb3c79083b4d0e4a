package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// relayConn is one relayed client connection and its two directions.
//
// A direction that ends cleanly (EOF) is passed on as a half-close of the
// other side, and the other direction keeps flowing; an error in either
// direction aborts both sides. When both directions have ended, both
// connections are closed and the Closed event is reported.
type relayConn struct {
	connLife
	l          *tcpRoute
	clientConn *net.TCPConn
	dial       connAttempt // connLife.attempt while a backend is tried

	sideFailed atomic.Bool // a write failed: one side was gone before the end
	// The TLS sides (tlsconn.go), nil for plaintext; sniName is the server
	// name an SNI route was picked by (sniroute.go).
	clientTLS, remoteTLS *tls.Conn
	sniName              string
	peeked               []byte // an SNI route's ClientHello, relayed first

	mu          sync.Mutex // the connection's end: aborted, the halves, connLife.reason
	backendConn *net.TCPConn
	halves      [2]*halfConn // client to remote, remote to client; nil until connected
	pending     int          // directions still running
	aborted     bool
	finish      func() // closes and reports the connection after both directions

	// With an idle timeout: when data last moved (Unix nanoseconds), and
	// the timer that checks it.
	lastActive atomic.Int64
	idleTimer  *time.Timer
}

// touch records that data moved, for the idle timeout.
func (c *relayConn) touch() {
	if c.idleTimer != nil {
		c.lastActive.Store(time.Now().UnixNano())
	}
}

// checkIdle runs when the idle timer fires: it aborts the connection if
// nothing moved for the whole timeout, or waits for the rest of it.
func (c *relayConn) checkIdle() {
	wait, expired := c.idleExpired(time.Since(time.Unix(0, c.lastActive.Load())))
	if expired {
		c.abort(errIdle)
		return
	}
	c.idleTimer.Reset(wait)
}

// halfConn is one direction of a relayConn: bytes read from src are written
// to dst.
type halfConn struct {
	conn       *relayConn
	src, dst   *net.TCPConn
	fromClient bool
	bytes      atomic.Int64
	done       atomic.Bool
	// repace: a reload gave the route a cap, and set a read deadline on
	// src to wake the direction's unpaced copy (tcpRoute.repaceOpen).
	repace atomic.Bool
	dlog   *dataLogDirection // nil: not logged
	other  *halfConn         // the opposite direction
	early  []byte            // read from src already (after a PROXY header): relayed first
	// srcTLS and dstTLS, when set, are the TLS over src and dst that the
	// direction reads and writes through (tlsconn.go).
	srcTLS, dstTLS *tls.Conn
	// srcCut: src was reset before its end, as the other direction's write
	// to it found (that write took the error), so the end its reads now
	// return is not one (endWasCut).
	srcCut atomic.Bool

	// The stall watch (stall.go): the timer is armed while a write to dst
	// waits, and checks every stallPoll whether src has ended and dst has
	// stopped taking data (checkStall). writing is set during each write;
	// the timer is made by the first.
	writing    atomic.Bool
	stallTimer *time.Timer
	stallMu    sync.Mutex // the timer's checks: srcEnded and stall
	srcEnded   bool       // src's end was seen: the stall clock runs
	stall      stallClock
}

// serve dials the remote side and starts relaying. It runs in its own
// goroutine per accepted client.
func (c *relayConn) serve() {
	l := c.l
	early := c.peeked // the ClientHello an SNI route read, or the bytes that came with a PROXY header
	if c.cfg.AcceptProxy {
		h, rest, err := readProxyHeader(c.clientConn, c.cfg.connectTimeout())
		ok := err == nil
		if !ok {
			c.turnAway(err.Error(), refusedByProxy)
		} else {
			ok = c.takeProxyHeader(h)
		}
		if !ok {
			c.clientConn.SetLinger(0)
			c.clientConn.Close()
			l.connDone(c)
			return
		}
		early = rest
	}
	if c.cfg.tls != nil { // the client's TLS handshake: tlsconn.go
		var ok bool
		if early, ok = c.startTLS(c.connLife.client, early); !ok {
			return
		}
	}
	remote, err := c.dialBackend()
	if err != nil {
		c.clientConn.SetLinger(0)
		c.clientConn.Close()
		c.fail(err)
		l.connDone(c)
		return
	}
	at := time.Now()
	dlog := c.openDataLog(at)
	client, backend := c.connLife.client, c.connLife.remote
	up := &halfConn{conn: c, src: c.clientConn, dst: remote, fromClient: true, dlog: dlog.direction(client, backend), early: early}
	down := &halfConn{conn: c, src: remote, dst: c.clientConn, dlog: dlog.direction(backend, client)}
	up.other, down.other = down, up
	c.wrapTLS(up, down) // tlsconn.go
	finish := func() {
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		up.stopStallTimer()
		down.stopStallTimer()
		if c.sideFailed.Load() {
			// What a peer sent after its other side failed went nowhere;
			// left unread it would make the close a reset that discards
			// what is still queued for that peer.
			discardQueued(c.clientConn)
			discardQueued(remote)
		}
		c.clientConn.Close()
		remote.Close()
		if dlog != nil {
			dlog.Close()
		}
		c.mu.Lock()
		c.aborted = true // nothing more to abort: the reason stays
		c.mu.Unlock()
		t := traffic{sent: up.bytes.Load(), received: down.bytes.Load()}
		c.closed(t)
		l.connClosed(c, t)
	}
	if !c.setRemote(remote, up, down, finish) {
		remote.Close()
		c.abandoned()
		if dlog != nil {
			dlog.Close()
		}
		l.connDone(c)
		return
	}
	if idle := c.cfg.IdleTimeout; idle > 0 {
		// Set before it can fire, and before the directions start.
		c.lastActive.Store(time.Now().UnixNano())
		c.idleTimer = time.AfterFunc(time.Hour, c.checkIdle)
		c.idleTimer.Reset(idle)
	}
	c.opened(at, dlog, c.tlsSummary())

	go up.copy()
	down.copy()
}

// dialBackend connects to the route's backends as the lifecycle picks
// them until one answers (and takes its PROXY header, if the route sends
// one), and returns that connection; or the error to fail with.
func (c *relayConn) dialBackend() (*net.TCPConn, error) {
	d := net.Dialer{Timeout: c.cfg.connectTimeout(), KeepAliveConfig: keepAlive}
	for {
		if _, err := c.nextBackend(); err != nil {
			return nil, err
		}
		conn, err := d.DialContext(c.l.dials, "tcp", c.connLife.remote)
		if err == nil {
			if err = c.sendProxyHeader(conn, d.Timeout); err != nil {
				conn.Close()
			}
		}
		if err == nil && c.cfg.originates() { // backendtls=: tlsconn.go
			if err = c.backendHandshake(conn, c.remote); err != nil {
				conn.Close()
			}
		}
		if err == nil {
			c.connected(conn.RemoteAddr().String())
			return conn.(*net.TCPConn), nil
		}
		if err := c.attemptFailed(err); err != nil {
			return nil, err
		}
	}
}

// sendProxyHeader writes the route's PROXY header, if it sends one, to a
// backend that has just answered.
func (c *relayConn) sendProxyHeader(remote net.Conn, timeout time.Duration) error {
	hdr, _ := c.proxyHeaderToSend(func() (netip.AddrPort, error) {
		return c.clientConn.LocalAddr().(*net.TCPAddr).AddrPort(), nil
	})
	if hdr == nil {
		return nil
	}
	remote.SetWriteDeadline(time.Now().Add(timeout))
	defer remote.SetWriteDeadline(time.Time{})
	_, err := remote.Write(hdr)
	return err
}

// setRemote records the dialed remote connection and the two directions; it
// reports false if the connection was aborted while dialing.
func (c *relayConn) setRemote(remote *net.TCPConn, up, down *halfConn, finish func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return false
	}
	c.backendConn = remote
	c.halves = [2]*halfConn{up, down}
	c.pending = 2
	c.finish = finish
	return true
}

// splices reports whether the direction moves its bytes with io.Copy
// between the two TCP connections, which splices on Linux: no data log,
// no idle timer to touch, no TLS.
func (h *halfConn) splices() bool {
	return h.dlog == nil && h.conn.idleTimer == nil && copySplices && !h.hasTLS()
}

// copy relays the direction with one goroutine until it ends: io.Copy
// between the two TCP connections (which splices on Linux), or a copy that
// sees each chunk, to log it or to note the activity for the idle timeout.
func (h *halfConn) copy() {
	var err error
	if len(h.early) > 0 {
		h.conn.touch()
		if h.dlog != nil {
			h.dlog.packet(h.early)
		}
		n, werr := h.write(h.early)
		h.bytes.Add(int64(n))
		if werr != nil {
			h.finish(werr)
			return
		}
	}
	lim := &h.conn.route.stats.limits
	for {
		if p := lim.pacer(h.dir()); p != nil { // limits: rate=, connrate= (bandwidth.go)
			err = h.copyPaced(p)
		} else if h.splices() {
			var n int64
			n, err = io.Copy(h.dst, h.src)
			h.bytes.Add(n)
		} else {
			// Each write is watched for a stall; io.Copy's are not (its
			// splice cannot be watched from outside: see copySplices).
			err = copyChunks(h.write, h.reader(), h.dlog, h.conn.touch, &h.bytes)
		}
		if !h.repaced(err) { // a reload gave the route a cap, or lifted it
			break
		}
	}
	if err != nil && socketGone(h.dst) && !errors.Is(err, syscall.EPIPE) {
		// A write took dst's reset error (EPIPE would say its end came
		// first): the end the other direction reads from dst is a cut.
		// Marked before this direction is done: the other waits for that.
		h.other.srcCut.Store(true)
	}
	h.finish(err)
}

// finish ends the direction, once: cleanly (err nil) by half-closing dst,
// or by aborting the whole connection.
func (h *halfConn) finish(err error) {
	if !h.done.CompareAndSwap(false, true) {
		return
	}
	c := h.conn
	if err == nil && endWasCut(h.src, &h.srcCut, &h.other.done) {
		err = &net.OpError{Op: "read", Net: "tcp", Addr: h.src.RemoteAddr(), Err: syscall.ECONNRESET}
	}
	if err == nil {
		c.mu.Lock()
		c.endedCleanly(h.fromClient)
		// When the other direction has ended too, both connections are
		// closed next, which sends the FIN: no shutdown needed.
		lastDirection := c.pending == 1
		c.mu.Unlock()
		if !lastDirection {
			if cerr := h.closeWrite(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
				err = cerr
			}
		}
	}
	if err != nil {
		if socketGone(h.dst) {
			// The write failed: dst is gone. The other direction, which
			// reads from dst, passes on what dst's peer sent before going
			// and ends (soon, if it has not); then both sides close
			// normally, so that what is queued for src's peer reaches it.
			c.sideFailed.Store(true)
			c.setReason(err)
		} else {
			// The read failed: reset both sides, once dst's peer has what
			// is queued for it.
			if c.idleTimer != nil {
				c.idleTimer.Stop() // the drain is not idleness
			}
			if !waitDelivered(h.dst, c.isAborted) {
				err = stallReason(!h.fromClient)
			}
			c.abort(err)
		}
	}
	c.directionDone()
}

// setReason records why the connection ends, unless an error came first.
func (c *relayConn) setReason(reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endWith(reason)
}

// isAborted reports whether the connection was aborted.
func (c *relayConn) isAborted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborted
}

// directionDone counts one direction as ended and finishes the connection
// after the second.
func (c *relayConn) directionDone() {
	c.mu.Lock()
	c.pending--
	last := c.pending == 0
	c.mu.Unlock()
	if last {
		c.finish()
	}
}

// abort closes both sides at once, resetting them so each peer learns that
// the stream did not end cleanly. The reason is kept unless an error came first.
func (c *relayConn) abort(reason error) {
	c.mu.Lock()
	if c.aborted {
		c.mu.Unlock()
		return
	}
	c.aborted = true
	c.endWith(reason)
	remote := c.backendConn
	c.mu.Unlock()

	c.clientConn.SetLinger(0)
	c.clientConn.Close()
	if remote != nil {
		remote.SetLinger(0)
		remote.Close()
	}
}

// liveBytes returns the bytes the connection has relayed so far, each way.
func (c *relayConn) liveBytes() (sent, received int64) {
	c.mu.Lock()
	up, down := c.halves[0], c.halves[1]
	c.mu.Unlock()
	if up == nil {
		return 0, 0
	}
	return up.bytes.Load(), down.bytes.Load()
}

// copyChunks copies src to its destination with write like io.Copy,
// recording every chunk read in the data log (if any) before it is written
// on, calling touch, and adding what it wrote to copied as it goes (status
// shows it live).
func copyChunks(write func([]byte) (int, error), src io.Reader, dlog *dataLogDirection, touch func(), copied *atomic.Int64) error {
	size := 32 << 10 // as io.Copy's
	if dlog != nil {
		size = 64 << 10 // fewer, bigger entries in the data log
	}
	buf := make([]byte, size)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			touch()
			if dlog != nil {
				dlog.packet(buf[:nr])
			}
			nw, werr := write(buf[:nr])
			copied.Add(int64(nw)) // this connection's own counter: nothing shared
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// write writes b to dst under the stall watch: the timer fires only if the
// write waits for stallPoll, so a destination that takes data costs it
// nothing but arming and stopping the timer.
func (h *halfConn) write(b []byte) (int, error) {
	if h.stallTimer == nil {
		// Made stopped, then armed: the arming orders the field's
		// write before the timer's checks.
		h.stallTimer = time.AfterFunc(time.Hour, h.checkStall)
		h.stallTimer.Stop()
	}
	h.writing.Store(true)
	h.stallTimer.Reset(stallPoll)
	n, err := h.writer().Write(b)
	h.writing.Store(false)
	h.stallTimer.Stop()
	return n, err
}

// stopStallTimer stops the stall watch of a direction that has ended.
func (h *halfConn) stopStallTimer() {
	if h.stallTimer != nil {
		h.stallTimer.Stop()
	}
}

// checkStall runs while a write of h waits, every stallPoll. Once src has
// ended (the system reports its FIN or its reset without a read:
// peerEnded), it aborts the connection when dst has taken nothing for
// drainStall: the bytes written, those dst acknowledged (where the system
// tells) and those that moved the other way are the progress (stall.go).
// A source that has not ended is never cut: a slow or paused reader is
// the idle timeout's business.
func (h *halfConn) checkStall() {
	h.stallMu.Lock()
	defer h.stallMu.Unlock()
	c := h.conn
	if !h.writing.Load() || c.isAborted() {
		return // the write ended meanwhile; the next one rearms
	}
	now := time.Now()
	mark := h.bytes.Load() + acknowledged(h.dst) + h.other.bytes.Load()
	switch {
	case !h.srcEnded:
		if h.srcEnded = peerEnded(h.src); h.srcEnded {
			h.stall.start(mark, now)
		}
	case h.stall.stalled(mark, now):
		c.abort(stallReason(!h.fromClient))
		return
	}
	h.stallTimer.Reset(stallPoll)
}

// dir is the direction's index for the bandwidth caps (bandwidth.go).
func (h *halfConn) dir() int {
	if h.fromClient {
		return dirSent
	}
	return dirReceived
}
