package main

// The goroutine relay's side of the bandwidth caps (bandwidth.go): a
// direction under a cap moves a chunk at a time, as its pacer lets it; a
// direction without one is woken to take a cap that a reload gives its
// route (repaceOpen).

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// errUnpaced ends a paced copy whose route has no cap any more: the
// direction goes on unpaced.
var errUnpaced = errors.New("the route's bandwidth cap was lifted")

// copyPaced relays direction h under pacer p until it ends, as copy does:
// by io.CopyN between the sockets a chunk at a time where that splices,
// else (a data log, an idle timer, TLS) by copyChunks reading through
// the pacer. It returns errUnpaced once the route's cap is lifted.
func (h *halfConn) copyPaced(p *pacer) error {
	if h.splices() {
		for {
			n, ok := p.await(h.conn.isAborted, nil) // no idle timer here: see splices
			if !ok {
				return net.ErrClosed
			}
			if n == 0 {
				return errUnpaced
			}
			m, err := io.CopyN(h.dst, h.src, int64(n))
			h.bytes.Add(m)
			p.settle(int(m))
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	return copyChunks(h.write, &pacedReader{src: h.reader(), p: p, stopped: h.conn.isAborted, touch: h.conn.touch}, h.dlog, h.conn.touch, &h.bytes)
}

// pacedReader reads src no faster than its pacer lets it.
type pacedReader struct {
	src     io.Reader
	p       *pacer
	stopped func() bool
	touch   func() // notes the activity for the idle timeout while it waits
}

// A read that moves less than the chunk keeps the rest of it for the next
// read, as io.CopyN does: the connection's next bytes, or its end, need
// not wait for another turn.
func (r *pacedReader) Read(b []byte) (int, error) {
	n := r.p.held // left of the chunk a read before reserved
	if n == 0 {
		var ok bool
		if n, ok = r.p.await(r.stopped, r.touch); !ok {
			return 0, net.ErrClosed
		}
		if n == 0 {
			return 0, errUnpaced
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	m, err := r.src.Read(b)
	if r.p.use(m) == 0 || err != nil {
		r.p.settle(0) // used up, or the end: what is left goes back
	}
	return m, err
}

// repaced reports whether a copy of h ended only for its route's caps to
// change, and readies h to go on under the new figures: a paced copy whose
// cap was lifted (errUnpaced), or an unpaced one woken by the read
// deadline repaceOpen set (it marks the direction first: nothing else
// sets a read deadline on a relayed connection's sockets once its
// directions run, but a mark tells for sure).
func (h *halfConn) repaced(err error) bool {
	if errors.Is(err, errUnpaced) {
		return true
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || !h.repace.Swap(false) {
		return false
	}
	h.src.SetReadDeadline(time.Time{})
	return true
}

// repaceOpen makes the route's open connections take the caps a reload
// has just changed. The engines give back the reservations their flows
// hold under the old figures and reserve again (engine.repace). A cap
// given (gained) wakes the goroutine relay's unpaced copies, which do not
// look at the figures: a read deadline in the past ends each such copy
// without losing a byte (a read that times out took nothing), and the
// copy goes on under the cap (halfConn.repaced). Its paced copies look at
// the figures while they wait (pacer.await).
func (l *tcpRoute) repaceOpen(gained bool) {
	for _, e := range l.engines {
		e.submit(func() { e.repace(l.stats) })
	}
	if !gained {
		return
	}
	l.mu.Lock()
	conns := make([]*relayConn, 0, len(l.conns))
	for c := range l.conns {
		if rc, ok := c.(*relayConn); ok {
			conns = append(conns, rc)
		}
	}
	l.mu.Unlock()
	now := time.Now()
	for _, c := range conns {
		// Only once the directions exist: before, a deadline would cut a
		// PROXY header's read or a TLS handshake, and the copies will
		// look at the figures when they start.
		c.mu.Lock()
		for _, h := range c.halves {
			if h != nil {
				h.repace.Store(true)
				h.src.SetReadDeadline(now)
			}
		}
		c.mu.Unlock()
	}
}
