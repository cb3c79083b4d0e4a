package main

// Admission by client (issue 26, docs/limits.md): clientmaxconn= (open
// connections of one client on a route), clientrate= (its new connections
// per time, a token bucket: ratelimit.go) and the service's global
// clientmaxconn (one client's open connections on all routes together).
//
// A new client passes admit right after allow=/deny= and the route's caps,
// before any backend is contacted, in every relay: the engine, the
// goroutine relay and a UDP route's new session. A refused client is
// closed at once (a UDP client's datagram dropped), counted by limit, and
// logged at most once a minute per client and route, with how many were
// refused since the line before. An admitted one holds a clientHold until
// it closes, which gives its place back exactly once.
//
// A client is its address masked to clientprefix4= (32) or clientprefix6=
// (64) bits: one host usually holds a whole IPv6 /64. The global cap
// groups by the defaults, /32 and /64, whatever the routes say.
//
// A route without these limits, in a relay without the global cap, pays
// one atomic load per new client and nothing per connection.

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The limits a client can be refused by, for the counters.
const (
	byClientMaxConn = iota // clientmaxconn= of the route
	byClientRate           // clientrate= of the route
	byGlobalClient         // the service's clientmaxconn
	limitKinds
)

const (
	// refusalLogEvery bounds how often one client's refusals on a route
	// are logged.
	refusalLogEvery = time.Minute
	// maxClients bounds a route's table of clients (and the global one):
	// clients with open connections, with a bucket not yet full, or
	// refused within the last minute. Past it, idle entries are swept (at
	// most once a second); a table still full admits new clients without
	// an entry, unlimited, rather than refusing them.
	maxClients = 1 << 16
	sweepEvery = time.Second
)

// routeLimiter is a route number's per-client state and bandwidth buckets
// (bandwidth.go). It lives in the route's routeStats, so that a reload,
// which swaps the figures (set), keeps the counts of the clients' open
// connections and their buckets. The zero value has no limits.
type routeLimiter struct {
	figures atomic.Pointer[Limits] // nil: none
	clock   func() time.Time       // nil: time.Now (tests set it)

	mu        sync.Mutex
	clients   map[netip.Prefix]*clientEntry
	lastSweep time.Time

	refused [limitKinds]atomic.Int64
	band    routeBandwidth // rate= and connrate= (bandwidth.go)
}

// clientEntry is one client of a route. The route limiter's mu guards it.
type clientEntry struct {
	open    int        // connections admitted and not closed
	rate    clientRate // clientrate='s bucket
	lastLog time.Time  // when a refusal of it was last logged
	unseen  int        // refusals since, not logged yet
}

// idle reports whether the entry can be forgotten at now.
func (e *clientEntry) idle(now time.Time) bool {
	return e.open == 0 && e.rate.full(now) && now.Sub(e.lastLog) >= refusalLogEvery
}

// set gives the route its figures: for the clients that come next, and
// for the bandwidth of the open connections at once. It reports whether
// its caps changed, and whether it gained a cap it did not have: the open
// connections must then be told (runningRoute.repaceOpen).
func (lim *routeLimiter) set(l Limits) (capsChanged, gainedCap bool) {
	old := lim.limits()
	capsChanged = l.Rate != old.Rate || l.ConnRate != old.ConnRate
	gainedCap = l.paced() && !old.paced()
	if l.Rate != old.Rate {
		// The queue of reservations under the old rate means nothing
		// under the new one: the waiters reserve again, from a full
		// bucket (their stale reservations are given back to it).
		for d := range lim.band.bucket {
			lim.band.bucket[d].reset()
		}
	}
	if l == (Limits{}) {
		lim.figures.Store(nil)
	} else {
		lim.figures.Store(&l)
	}
	return capsChanged, gainedCap
}

// now is the limiter's clock.
func (lim *routeLimiter) now() time.Time {
	if lim.clock != nil {
		return lim.clock()
	}
	return time.Now()
}

// limits returns the route's figures, zero when it has none.
func (lim *routeLimiter) limits() Limits {
	if f := lim.figures.Load(); f != nil {
		return *f
	}
	return Limits{}
}

// globalClients counts every client's open connections across the routes
// for the service's clientmaxconn (Relay.SetClientMaxConns).
type globalClients struct {
	max  atomic.Int64
	mu   sync.Mutex
	open map[netip.Prefix]int // clients with open connections only
}

// SetClientMaxConns caps the open connections of one client across all
// routes together; zero means no cap. Connections open before a cap is
// set do not count in it.
func (r *Relay) SetClientMaxConns(n int) { r.clients.max.Store(int64(n)) }

// clientHold is an admitted client's place: its route entry and its
// global count. release gives them back, once; a nil hold is nothing.
type clientHold struct {
	lim      *routeLimiter
	key      netip.Prefix // in lim's table; invalid when not counted there
	global   *globalClients
	gkey     netip.Prefix // in global's; invalid when not counted there
	released atomic.Bool
}

// release gives the client's places back, the first time only.
func (h *clientHold) release() {
	if h == nil || !h.released.CompareAndSwap(false, true) {
		return
	}
	if h.key.IsValid() {
		h.lim.forget(h.key, h.lim.now())
	}
	if h.gkey.IsValid() {
		h.global.mu.Lock()
		if n := h.global.open[h.gkey] - 1; n > 0 {
			h.global.open[h.gkey] = n
		} else {
			delete(h.global.open, h.gkey)
		}
		h.global.mu.Unlock()
	}
}

// clientKey is the client that addr counts as: the address masked to the
// prefix length of its family.
func clientKey(addr netip.Addr, bits4, bits6 int) netip.Prefix {
	addr = addr.Unmap()
	bits := bits6
	if addr.Is4() {
		bits = bits4
	}
	p, err := addr.WithZone("").Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(addr, addr.BitLen())
	}
	return p
}

// refusal is why admit refused a client: the limit, the reason for the
// log, and whether to log it now (report, with the refusals it stands
// for).
type refusal struct {
	kind   int
	why    string
	report bool
	count  int
}

// inUse reports whether the route or the service limits clients at all.
func (lim *routeLimiter) inUse(global *globalClients) bool {
	fig := lim.figures.Load()
	return (fig != nil && !fig.admitsAll()) || global.max.Load() > 0
}

// admit admits a new client of the route at now, or refuses it. relay's
// global cap counts too. Admitted, it returns the client's hold (nil when
// nothing counts it); refused, the refusal, already counted.
func (lim *routeLimiter) admit(global *globalClients, addr netip.Addr, now time.Time) (*clientHold, *refusal) {
	fig := lim.figures.Load()
	gmax := int(global.max.Load())
	if (fig == nil || fig.admitsAll()) && gmax == 0 {
		return nil, nil
	}
	h := &clientHold{lim: lim, global: global}
	if gmax > 0 {
		h.gkey = clientKey(addr, defaultClientPrefix4, defaultClientPrefix6)
		if !global.acquire(h.gkey, gmax) {
			return nil, lim.refuseClient(byGlobalClient, h.gkey, now,
				fmt.Sprintf("client %s has the global clientmaxconn of %d open connections", h.gkey, gmax))
		}
	}
	if fig == nil || fig.admitsAll() {
		return h, nil
	}
	bits4, bits6 := fig.prefixBits()
	key := clientKey(addr, bits4, bits6)
	lim.mu.Lock()
	e := lim.entry(key, now)
	var kind int
	var why string
	switch {
	case e == nil: // the table is full of busy clients: admitted, uncounted
	case fig.ClientMaxConn > 0 && e.open >= fig.ClientMaxConn:
		kind, why = byClientMaxConn, fmt.Sprintf("client %s has clientmaxconn=%d open connections", key, fig.ClientMaxConn)
	case fig.ClientRate > 0 && !e.rate.allow(now, fig.clientInterval(), fig.ClientRate):
		kind, why = byClientRate, fmt.Sprintf("client %s is over clientrate=%s", key, formatClientRate(fig.ClientRate, fig.ClientPer))
	default:
		e.open++
		h.key = key
	}
	lim.mu.Unlock()
	if why != "" {
		h.release() // its global place
		return nil, lim.refuseClient(kind, key, now, why)
	}
	return h, nil
}

// entry returns the client's entry, made if need be; nil when the table is
// full of clients that cannot be forgotten. lim.mu is held.
func (lim *routeLimiter) entry(key netip.Prefix, now time.Time) *clientEntry {
	if e := lim.clients[key]; e != nil {
		return e
	}
	if lim.clients == nil {
		lim.clients = make(map[netip.Prefix]*clientEntry)
	}
	if len(lim.clients) >= maxClients {
		if now.Sub(lim.lastSweep) < sweepEvery {
			return nil
		}
		lim.lastSweep = now
		for k, e := range lim.clients {
			if e.idle(now) {
				delete(lim.clients, k)
			}
		}
		if len(lim.clients) >= maxClients {
			return nil
		}
	}
	e := &clientEntry{}
	lim.clients[key] = e
	return e
}

// forget counts a connection of client key as closed at now, and drops
// the entries that no longer matter: the client's at once, and, once the
// table has grown, the others that are idle (at most once a second), so
// that a route whose clients come and go does not keep them all.
func (lim *routeLimiter) forget(key netip.Prefix, now time.Time) {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if e := lim.clients[key]; e != nil {
		if e.open--; e.idle(now) {
			delete(lim.clients, key)
		}
	}
	if len(lim.clients) < 1024 || now.Sub(lim.lastSweep) < sweepEvery {
		return
	}
	lim.lastSweep = now
	for k, e := range lim.clients {
		if e.idle(now) {
			delete(lim.clients, k)
		}
	}
}

// refuseClient counts a refusal by limit kind of client key and says whether to
// log it: the first refusal of a client on the route, then at most once
// every refusalLogEvery, with the refusals since the last line.
func (lim *routeLimiter) refuseClient(kind int, key netip.Prefix, now time.Time, why string) *refusal {
	lim.refused[kind].Add(1)
	r := &refusal{kind: kind, why: why}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	e := lim.entry(key, now)
	if e == nil {
		return r // a full table: not logged (the counters still count)
	}
	e.unseen++
	if !e.lastLog.IsZero() && now.Sub(e.lastLog) < refusalLogEvery {
		return r
	}
	r.report, r.count = true, e.unseen
	e.lastLog, e.unseen = now, 0
	return r
}

// message is the refusal as the connection log writes it.
func (r *refusal) message(what string) error {
	if r.count <= 1 {
		return fmt.Errorf("%s (%s refused at once; logged once a minute per client)", r.why, what)
	}
	return fmt.Errorf("%s (%s refused at once: %d since the last line; logged once a minute per client)", r.why, what, r.count)
}

// acquire counts a connection of client key, unless it has max already.
func (g *globalClients) acquire(key netip.Prefix, max int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == nil {
		g.open = make(map[netip.Prefix]int)
	}
	n := g.open[key]
	if n >= max {
		return false
	}
	if n == 0 && len(g.open) >= maxClients {
		return true // full of clients with open connections: uncounted (see maxClients)
	}
	g.open[key] = n + 1
	return true
}

// refusedBy returns the route's refusals by limit kind.
func (lim *routeLimiter) refusedBy() [limitKinds]int64 {
	var n [limitKinds]int64
	for i := range n {
		n[i] = lim.refused[i].Load()
	}
	return n
}

// admit is admission by client for a new connection (UDP: session) of
// the route, in every relay: it returns the client's hold, or reports the
// refusal (counted and, once a minute per client, logged) and false. The
// caller closes a refused client (UDP: drops its datagram). On an
// acceptproxy=1 route the client is the one its PROXY header names: admit
// lets every connection through, and the lifecycle admits it once its
// header is read (connLife.takeProxyHeader).
func (r *routeCore) admit(cfg *routeConfig, client netip.AddrPort) (*clientHold, bool) {
	if cfg.AcceptProxy && !r.udp {
		return nil, true
	}
	return r.admitNamed(cfg, client)
}

// admitNamed is admit for the client a PROXY header named (or, for a
// LOCAL header, the proxy itself).
func (r *routeCore) admitNamed(cfg *routeConfig, client netip.AddrPort) (*clientHold, bool) {
	if !r.stats.limits.inUse(&r.relay.clients) {
		return nil, true // a route without limits: two loads, no clock read
	}
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	h, refused := r.stats.limits.admit(&r.relay.clients, client.Addr(), r.stats.limits.now())
	if refused == nil {
		return h, true
	}
	if refused.report {
		what := "its connections are"
		if r.udp {
			what = "its datagrams are"
		}
		r.relay.emit(Event{Kind: ConnRefused, Time: time.Now(), Route: r.id, Client: client.String(),
			Remote: r.remoteName(cfg.RemoteAddr()), Err: refused.message(what)})
	}
	return nil, false
}
