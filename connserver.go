package main

// The small connection server that the control channel (control.go) and
// the metrics listener (metricshttp.go) share. Both answer a few
// administrators' requests, so both must never cost the relay the
// descriptors its routes need: a flood of idle connections to either holds
// maxConns descriptors at most (one more for the moment a new connection
// takes an old one's place), each connection must send its request
// within a few seconds, and accept errors (out of descriptors, say) make
// the loop back off as a route's accept loop does.
//
//	s := &connServer{ln: ln, maxConns: 16, headerTimeout: 5 * time.Second,
//		closeWait: 5 * time.Second, handle: serveOne}
//	s.start()
//	...
//	s.close()

import (
	"errors"
	"net"
	"sync"
	"time"
)

// connServer serves each connection of a listener with handle, in a
// goroutine of its own, until close. It holds at most maxConns connections
// open: a new one beyond makes room by closing the connection that has
// waited longest for its request, or, when every one is being answered, is
// closed at once.
type connServer struct {
	ln net.Listener
	// maxConns caps the open connections; it must be positive.
	maxConns int
	// headerTimeout is how long a new connection has to send its (first)
	// request: handle's reads fail after it.
	headerTimeout time.Duration
	// closeWait is how long close waits for the answers being written.
	closeWait time.Duration
	// handle serves one connection: it reads a request, calls answering
	// before it answers, and, to read another, awaitRequest. The server
	// closes the connection when handle returns.
	handle func(*serverConn)

	done chan struct{} // the accept loop returned
	stop chan struct{} // closed by close: ends a back-off wait

	mu      sync.Mutex
	conns   map[*serverConn]struct{} // open, not yet closed by the server
	closing bool                     // close has begun: no connection starts answering
	wg      sync.WaitGroup           // the connections' goroutines
}

// serverConn is one connection of a connServer, as its handler sees it.
type serverConn struct {
	net.Conn
	s *connServer
	// Under s.mu: whether it answers a request now, and since when it
	// waits for its next (the oldest such is closed first at the cap).
	busy      bool
	waitSince time.Time
}

// start starts accepting.
func (s *connServer) start() {
	s.done, s.stop = make(chan struct{}), make(chan struct{})
	s.conns = make(map[*serverConn]struct{})
	go s.acceptLoop()
}

// acceptLoop admits connections until the listener is closed. An error
// does not end it: it waits, doubling as a route's accept loop does
// (nextAcceptBackoff), until an accept succeeds again.
func (s *connServer) acceptLoop() {
	defer close(s.done)
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = nextAcceptBackoff(backoff)
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return
			}
			continue
		}
		backoff = 0
		s.admit(c)
	}
}

// admit serves nc if there is room, making some if needed; else it closes
// nc.
func (s *connServer) admit(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	var victim *serverConn
	if len(s.conns) >= s.maxConns {
		if victim = s.longestWaiting(); victim == nil {
			s.mu.Unlock()
			nc.Close() // every one is being answered: no room
			return
		}
		delete(s.conns, victim)
	}
	c := &serverConn{Conn: nc, s: s, waitSince: time.Now()}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if victim != nil {
		victim.Close() // its handler's read fails, and it returns
	}
	nc.SetReadDeadline(time.Now().Add(s.headerTimeout))
	go s.serve(c)
}

// longestWaiting is the connection that has waited longest for a request,
// or nil if every one is answering. s.mu is held.
func (s *connServer) longestWaiting() *serverConn {
	var oldest *serverConn
	for c := range s.conns {
		if !c.busy && (oldest == nil || c.waitSince.Before(oldest.waitSince)) {
			oldest = c
		}
	}
	return oldest
}

// serve runs the handler on c, then closes it.
func (s *connServer) serve(c *serverConn) {
	defer s.wg.Done()
	s.handle(c)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// answering says that c has read a request and answers it now: it is no
// longer closed to make room, nor at close until closeWait. It returns
// false if the server has closed c or is closing; the handler returns then.
func (c *serverConn) answering() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if _, open := c.s.conns[c]; !open || c.s.closing {
		return false
	}
	c.busy = true
	return true
}

// awaitRequest says that c has answered and waits for another request,
// for timeout at most: it may be closed to make room from now on.
func (c *serverConn) awaitRequest(timeout time.Duration) {
	c.s.mu.Lock()
	c.busy, c.waitSince = false, time.Now()
	c.s.mu.Unlock()
	c.SetReadDeadline(time.Now().Add(timeout))
}

// close stops the listener, cuts the connections waiting for a request,
// and waits for the answers being written, for closeWait; those still
// being written then are cut too. It returns when every handler has.
// Calling it again waits again.
func (s *connServer) close() {
	s.mu.Lock()
	again := s.closing
	s.closing = true
	s.mu.Unlock()
	if !again {
		close(s.stop)
	}
	s.ln.Close()
	<-s.done
	s.cut(false)
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return
	case <-time.After(s.closeWait):
	}
	s.cut(true)
	<-finished
}

// cut closes the connections waiting for a request, and with answering
// those being answered too.
func (s *connServer) cut(answering bool) {
	s.mu.Lock()
	var cut []*serverConn
	for c := range s.conns {
		if answering || !c.busy {
			cut = append(cut, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}
