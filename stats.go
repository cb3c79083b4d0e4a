package main

// Live numbers of the routes: counters that connections add to once each
// (never per chunk of data), in one slot per event loop so that no two
// loops write the same cache line, summed when someone asks (Relay.Status).

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// statSlots is the number of counter slots of a route: one per Linux event
// loop (at most maxEngines, 8) and one for the connections the goroutine
// relay serves.
const (
	statSlots     = 9
	goroutineSlot = statSlots - 1
)

// statSlot is one slot of a route's counters, a cache line of its own.
type statSlot struct {
	total        atomic.Int64 // connections relayed (a backend answered)
	failed       atomic.Int64 // clients closed because no backend answered
	refusedACL   atomic.Int64 // clients refused by allow= or deny=
	refusedCap   atomic.Int64 // clients refused by maxconn= or the relay's cap
	refusedProxy atomic.Int64 // clients refused for want of a valid PROXY header
	sent         atomic.Int64 // bytes from clients to backends, of closed connections
	received     atomic.Int64 // bytes from backends to clients, of closed connections
	_            [8]byte
}

// routeStats are the counters of a route number: they live as long as the
// Relay, so that a route stopped and started again (a reload) goes on
// counting, as Prometheus wants of a counter.
type routeStats struct {
	slots [statSlots]statSlot
	// bytesMu is held while a connection of the goroutine relay or a UDP
	// session moves its bytes into the goroutine slot and leaves its open
	// set, and while Status reads both.
	bytesMu sync.Mutex
	udp     udpCounters
	// limits are the route's per-client limits and bandwidth caps, with
	// their refusal counts (clientlimits.go, bandwidth.go).
	limits routeLimiter
	tls    tlsCounters // TLS handshakes (tlsroute.go)
}

// udpCounters are what only a UDP route counts (udp.go): datagrams it did
// not relay, by reason (besides those refused, counted as refusals), and
// sessions it evicted.
type udpCounters struct {
	// queueDrops: a receive queue was full. The kernel's drops on the
	// route's closed sockets and its ended sessions' (the open ones' are
	// read from the sockets), and datagrams over the maxQueued a session
	// holds while its backend is connected.
	queueDrops atomic.Int64
	// backendDrops: the backend's socket refused the datagram (its port
	// was unreachable), or no backend could be reached for its session.
	backendDrops atomic.Int64
	// capDrops: held by a session that the route's cap evicted before its
	// backend was connected.
	capDrops atomic.Int64
	// evicted: sessions ended for a new client at the route's cap.
	evicted atomic.Int64
}

// counters is a sum of a route's slots, and a UDP route's own counters.
type counters struct {
	Total, Failed, RefusedACL, RefusedCap, RefusedProxy, Sent, Received int64
	// UDP routes: datagrams dropped for a full receive queue, for want of
	// a backend, held by a session evicted at the cap; sessions evicted.
	QueueDrops, BackendDrops, CapDrops, Evicted int64
	// TLS routes: handshakes done and failed (tlsroute.go).
	TLSDone, TLSFailed int64
}

// sum adds up the slots' counts; bytes are added by Status, which reads
// each source of them with its open connections.
func (s *routeStats) sum() counters {
	var c counters
	for i := range s.slots {
		sl := &s.slots[i]
		c.Total += sl.total.Load()
		c.Failed += sl.failed.Load()
		c.RefusedACL += sl.refusedACL.Load()
		c.RefusedCap += sl.refusedCap.Load()
		c.RefusedProxy += sl.refusedProxy.Load()
		c.TLSDone, c.TLSFailed = s.tls.done.Load(), s.tls.failed.Load()
	}
	c.QueueDrops = s.udp.queueDrops.Load()
	c.BackendDrops = s.udp.backendDrops.Load()
	c.CapDrops = s.udp.capDrops.Load()
	c.Evicted = s.udp.evicted.Load()
	return c
}

// RouteStatus is what a running route is doing now: its counters, its open
// connections (those of a route restarted by a reload included) and what
// they have relayed so far, and its backends.
type RouteStatus struct {
	Listening bool
	Addr      string // the address it listens on
	Open      int64
	counters
	Backends []BackendStatus
	RcvBuf   int         // UDP: the receive buffer its sockets got, in bytes
	Limits   limitStatus // refusals by client limit, throughput under a cap (limitstatus.go)
}

// BackendStatus is one backend of a route as its balancing sees it.
type BackendStatus struct {
	Addr     string
	Backup   bool
	Up       bool
	Disabled bool
	Since    time.Time // when it last went up or down
	Open     int64     // connections being connected or relayed
	Total    int64     // connections relayed
	Failed   int64     // connects that failed
	// LastCheck is when the active check last connected (zero without
	// check=).
	LastCheck time.Time
}

// Status returns the live numbers of every route number the relay has
// run, whether it runs now or not (Listening). Bytes include what open
// connections have relayed so far: each source of them (an engine; the
// goroutine relay's connections and UDP sessions of a route) is read in
// one step in which no connection moves from open to closed, so a byte is
// counted once and the counts never go back.
func (r *Relay) Status() map[int]RouteStatus {
	r.mu.Lock()
	out := make(map[int]RouteStatus, len(r.stats))
	stats := make(map[int]*routeStats, len(r.stats))
	routes := make(map[int][]runningRoute) // running and retired
	for id, st := range r.stats {
		stats[id] = st
		rs := RouteStatus{counters: st.sum(), Limits: st.limits.status()}
		if route, ok := r.routes[id]; ok {
			rs.Listening, rs.Addr = true, addrString(route.firstAddr())
			rs.Backends = route.core().cfg.Load().pool.status()
			rs.RcvBuf = route.rcvBuf()
		}
		out[id] = rs
	}
	for id, route := range r.routes {
		routes[id] = append(routes[id], route)
	}
	for route := range r.retiring {
		id := route.core().id
		routes[id] = append(routes[id], route)
	}
	engines := r.engines
	r.mu.Unlock()
	for _, rr := range routes {
		for _, route := range rr {
			route.lookUp()
		}
	}

	for id, st := range stats {
		rs := out[id]
		st.bytesMu.Lock()
		slot := &st.slots[goroutineSlot]
		rs.Sent, rs.Received = slot.sent.Load(), slot.received.Load()
		// The drops of a UDP route's sockets that have closed, and of
		// those open, like its bytes.
		rs.QueueDrops = st.udp.queueDrops.Load()
		for _, route := range routes[id] {
			open, sent, received, drops := route.live()
			rs.Open, rs.Sent, rs.Received = rs.Open+open, rs.Sent+sent, rs.Received+received
			rs.QueueDrops += drops
		}
		st.bytesMu.Unlock()
		out[id] = rs
	}
	// A running engine reads its slot and its open flows in one turn; the
	// slot of an engine that is gone (stopped, or its loop ended) is read
	// as it is: all its flows have ended.
	var read [statSlots]bool
	read[goroutineSlot] = true
	for _, e := range engines {
		sums := e.routeBytes(stats)
		if sums == nil {
			continue
		}
		read[e.index] = true
		for id, b := range sums {
			rs := out[id]
			rs.Sent += b[0]
			rs.Received += b[1]
			out[id] = rs
		}
	}
	for id, st := range stats {
		rs := out[id]
		for i := range st.slots {
			if !read[i] {
				rs.Sent += st.slots[i].sent.Load()
				rs.Received += st.slots[i].received.Load()
			}
		}
		out[id] = rs
	}
	return out
}

// addrString is a's text, or "" for none.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// live returns the route's open connections, and what those the
// goroutine relay serves have relayed so far (the engines' own flows are
// counted by engine.routeBytes); a TCP route drops nothing.
func (l *tcpRoute) live() (open, sent, received, drops int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		open++
		s, r := c.liveBytes()
		sent += s
		received += r
	}
	return open, sent, received, 0
}

// status returns the pool's backends as they are now.
func (p *backendPool) status() []BackendStatus {
	out := make([]BackendStatus, len(p.entries))
	for i, e := range p.entries {
		b := e.b
		b.mu.Lock()
		since, lastCheck := b.since, b.lastCheck
		b.mu.Unlock()
		out[i] = BackendStatus{Addr: b.addr, Backup: e.backup, Up: b.up.Load(), Disabled: b.disabled.Load(),
			Since: since, LastCheck: lastCheck, Open: b.open.Load(), Total: b.total.Load(), Failed: b.failed.Load()}
	}
	return out
}
