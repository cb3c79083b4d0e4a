package main

// One connection's life on its route, whichever relay moves its bytes: the
// engine's flow (engine_linux.go), the goroutine relay's relayConn
// (conn.go) and a UDP session (udp.go) each embed a connLife, and take the
// same steps through it:
//
//	accepted      begin (the route's whyRefuse came first: refuse)
//	before        takeProxyHeader (acceptproxy=1), or refuse
//	connect!      nextBackend, then attemptFailed (retry or give up: fail)
//	              or connected; proxyHeaderToSend (proxy=v1|v2)
//	after         opened (openDataLog first, where the route has data logs)
//	relay         the relay's own; idleExpired, endedCleanly, endWith
//	end           closed
//
// The methods are steps, never a loop that waits: the engine calls them
// from its event loop. The relays keep only sockets, buffers and the
// moving of bytes.

import (
	"errors"
	"net/netip"
	"time"
)

// Close reasons of a relayed connection, for the Closed line.
var (
	errStopped      = errors.New("relay stopped")
	errClientClosed = errors.New("client closed")
	errServerClosed = errors.New("server closed")
	errIdle         = errors.New("idle timeout")
	// A side that took nothing for drainStall after the other side had
	// ended (stall.go).
	errBackendStalled = errors.New("backend stalled")
	errClientStalled  = errors.New("client stalled")
)

// connLife is what a connection is to its route, from accept to close:
// the settings it was accepted with, its counters, its client, the backend
// it tries or relays to, and why it ended.
type connLife struct {
	route *routeCore
	cfg   *routeConfig // the route's configuration when the client came
	slot  *statSlot    // the route's counters this connection adds to
	start time.Time
	// client is the client as events name it (ip:port): the peer, or the
	// one its PROXY header names. remote is the backend: HOST:PORT while
	// it is tried, ip:port once connected; "" before the first.
	client, remote string
	// backend is the one being tried, then the one relayed to: it counts
	// the connection in its open connections from the pick to the close.
	backend *backend
	// attempt is what the connection needs until a backend answers; nil
	// once opened (an idle connection does not carry it).
	attempt *connAttempt
	reason  error // why it ended
	// hold is the client's place under the per-client limits
	// (clientlimits.go), given back once when the connection is over; nil
	// on a route without them.
	hold *clientHold
}

// held is the connection's place under the per-client limits.
func (c *connLife) held() *clientHold { return c.hold }

// connAttempt is a connection's state until a backend answers.
type connAttempt struct {
	// clientAP is the client: the peer, or what its PROXY header names;
	// dstAP the address it connected to, when a PROXY header named it.
	clientAP, dstAP netip.AddrPort
	offset          int    // added to the backends' ports (routeConfig.remoteOffset)
	tried           uint64 // the backends tried, by pool index
	failures        int    // the connects that failed
	lastErr         error  // the last one's error
	// n counts the backends tried: a relay whose timers and name lookups
	// report later sees from it that theirs is stale.
	n uint32
	// For a relay that connects by itself (the engine): the addresses of
	// the backend left to try, and whether the client's PROXY header is
	// still awaited.
	addrs          []netip.AddrPort
	awaitingHeader bool
}

// begin starts the life of a connection from peer, accepted at start by a
// route running cfg, on port's place in the range (offset), holding its
// place under the per-client limits (routeCore.admit, before: a refused
// client costs no record); a is its attempt state, which the relay may
// allocate with its own.
func (c *connLife) begin(route *routeCore, cfg *routeConfig, slot *statSlot, peer netip.AddrPort, start time.Time, offset int, hold *clientHold, a *connAttempt) {
	c.route, c.cfg, c.slot, c.start, c.hold = route, cfg, slot, start, hold
	c.client = peer.String()
	a.clientAP, a.offset = peer, offset
	c.attempt = a
}

// turnAway turns the client away before a backend is tried: counted and
// reported by kind. The relay closes it.
func (c *connLife) turnAway(why string, kind int) {
	c.route.turnAway(c.cfg, c.slot, c.client, why, kind, true)
}

// takeProxyHeader takes the PROXY header the client sent (acceptproxy=1):
// the client is the one it names, and deny= applies to that client. It
// reports false when deny= refuses it (refused already: the relay closes
// it). A LOCAL header names nobody: it is the proxy's own connection (a
// health check), so the client stays the connecting proxy, which allow=
// and deny= admitted already when it was accepted.
//
// The per-client limits (clientlimits.go) then admit the client it
// names, or the proxy itself for a LOCAL header; a refusal is counted and
// reported there.
func (c *connLife) takeProxyHeader(h proxyHeader) bool {
	if !h.local {
		c.attempt.clientAP, c.attempt.dstAP = h.src, h.dst
		c.client = h.src.String()
		if why := c.cfg.denies(h.src.Addr()); why != "" {
			c.turnAway(why, refusedByACL)
			return false
		}
	}
	var admitted bool
	c.hold, admitted = c.route.admitNamed(c.cfg, c.attempt.clientAP)
	return admitted
}

// nextBackend picks the backend to try next, in balance order
// (backendPool.pick), each at most once, and counts the connection in its
// open connections (for leastconn, while it connects too). It returns the
// error to fail with when none is left.
func (c *connLife) nextBackend() (*backend, error) {
	a, pool := c.attempt, c.cfg.pool
	i := pool.pick(a.clientAP.Addr(), a.tried)
	if i < 0 {
		return nil, pool.failure(a.failures, a.lastErr)
	}
	a.tried |= 1 << i
	a.n++
	a.lastErr, a.addrs = nil, nil
	b := pool.entries[i].b
	b.open.Add(1)
	c.backend, c.remote = b, b.addrAt(a.offset)
	return b, nil
}

// attemptFailed records that the backend being tried did not answer
// (err). It returns nil to try the next one, or the error to fail with
// when the failure is not the backend's: the system lacks descriptors, or
// the route is stopping.
func (c *connLife) attemptFailed(err error) error {
	a, b := c.attempt, c.backend
	c.backend = nil
	b.open.Add(-1)
	a.failures++
	a.lastErr = err
	if c.route.dials.Err() != nil || isResourceError(err) {
		return err
	}
	c.cfg.pool.connectFailed(b, err)
	return nil
}

// connected records that the backend being tried answered, at remote
// (ip:port): it counts for it, and the attempt is over.
func (c *connLife) connected(remote string) {
	c.cfg.pool.connected(c.backend)
	c.remote = remote
	c.attempt = nil
}

// proxyHeaderToSend is the PROXY header the backend gets first
// (proxy=v1|v2), or nil: the client, and the address it connected to
// (what the client's own header named, or the client socket's local
// address, which local returns). It must come before connected.
func (c *connLife) proxyHeaderToSend(local func() (netip.AddrPort, error)) ([]byte, error) {
	if c.cfg.Proxy == "" {
		return nil, nil
	}
	dst := c.attempt.dstAP
	if !dst.IsValid() {
		var err error
		if dst, err = local(); err != nil {
			return nil, err
		}
	}
	return proxyHeaderBytes(c.cfg.Proxy, c.attempt.clientAP, dst), nil
}

// fail ends a connection for which no backend answered (err): the relay
// has closed the client or closes it next. A route that is stopping
// reports nothing: the connection is one it stopped. On a TCP route, lack
// of descriptors counts in the route's incident (one report per incident,
// and the accept loop backs off); anything else is a Failed event naming
// the last backend tried, or the route's remote address when none was.
func (c *connLife) fail(err error) {
	r := c.route
	if r.dials.Err() != nil {
		return
	}
	if !r.udp && isResourceError(err) {
		r.resourceError(err)
		return
	}
	c.slot.failed.Add(1)
	remote := c.remote
	if remote == "" { // no backend was tried: every one is disabled
		remote = c.cfg.RemoteAddr()
	}
	r.relay.emit(Event{Kind: ConnFailed, Time: time.Now(), Route: r.id, Client: c.client,
		Remote: r.remoteName(remote), Duration: time.Since(c.start), Err: err})
}

// openDataLog creates the connection's data log, at, where the route has
// them (nil where not, or when it could not be created: reported). Its
// write errors are reported once.
func (c *connLife) openDataLog(at time.Time) *dataLog {
	dir := c.cfg.DataLogDir
	if dir == "" {
		return nil
	}
	r, client, remote := c.route, c.client, c.route.remoteName(c.remote)
	logErr := func(err error) {
		r.relay.emit(Event{Kind: DataLogFailed, Time: time.Now(), Route: r.id, Client: client, Remote: remote, Err: err})
	}
	dlog, err := r.relay.names.create(dir, at)
	if err != nil {
		logErr(err)
		return nil
	}
	dlog.onError = logErr
	return dlog
}

// opened reports that the connection relays, since at: it ends the
// route's incident (if any), counts, and reports Opened (with the data
// log's file, if any, and for a TLS route what was negotiated, tlsText).
func (c *connLife) opened(at time.Time, dlog *dataLog, tlsText string) {
	r := c.route
	r.recovered()
	c.slot.total.Add(1)
	kind, name := ConnOpened, ""
	if r.udp {
		kind = SessionOpened
	}
	if dlog != nil {
		name = dlog.name
	}
	r.relay.emit(Event{Kind: kind, Time: at, Route: r.id, Client: c.client, Remote: c.remote, DataLog: name, TLS: tlsText})
}

// idleExpired checks the idle timeout after quiet without data either
// way: it reports whether the connection is to end (errIdle), and else
// how long to wait before the next check.
func (c *connLife) idleExpired(quiet time.Duration) (wait time.Duration, expired bool) {
	idle := c.cfg.IdleTimeout
	if quiet >= idle {
		return 0, true
	}
	return idle - quiet, false
}

// endedCleanly records that one side ended its stream (fromClient: the
// client's), unless the connection's end has a reason already.
func (c *connLife) endedCleanly(fromClient bool) {
	if c.reason == nil {
		c.reason = errServerClosed
		if fromClient {
			c.reason = errClientClosed
		}
	}
}

// endWith records why the connection ends: an error that came first is
// kept; a clean end gives way to the error.
func (c *connLife) endWith(reason error) {
	if c.reason == nil || c.reason == errClientClosed || c.reason == errServerClosed {
		c.reason = reason
	}
}

// traffic is what a connection relayed: bytes each way, and for a UDP
// session datagrams.
type traffic struct {
	sent, received                   int64
	sentDatagrams, receivedDatagrams int64
}

// closed reports that a connection that had opened is over, having
// relayed t: its backend counts it no more, and Closed says why it
// ended. The relay has closed its sockets, and moves t's bytes to the
// route's counters in its own step (Status counts them once).
func (c *connLife) closed(t traffic) {
	c.backend.open.Add(-1)
	c.backend = nil
	r := c.route
	kind := ConnClosed
	if r.udp {
		kind = SessionClosed
	}
	r.relay.emit(Event{Kind: kind, Time: time.Now(), Route: r.id, Client: c.client, Remote: c.remote,
		Sent: t.sent, Received: t.received, Duration: time.Since(c.start), Err: c.reason,
		SentDatagrams: t.sentDatagrams, ReceivedDatagrams: t.receivedDatagrams})
}

// abandoned releases the backend of a connection that ends while a
// backend is tried (stopped, refused mid-way): no event, nothing counted.
func (c *connLife) abandoned() {
	if c.backend != nil {
		c.backend.open.Add(-1)
		c.backend = nil
	}
	c.attempt = nil
}
