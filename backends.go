package main

// Several backends per route: the route's text form names them
// (REMOTEHOST REMOTEPORT, then also= and backup=), a backendPool picks one
// for each new connection by the route's balance= mode, and the next one
// when a connect fails, so that a client sees a failure only when no
// backend answers. health.go keeps each backend's up/down state.
//
//	route 80 web1 8080 also=web2:8080,[fd00::5]:8080 backup=web9:8080 balance=leastconn check=2s

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// passiveRetry is how long a backend that is down waits, without active
// checks, before a new connection tries it again.
const passiveRetry = 10 * time.Second

// backend is one server behind a route, with its health and counters. A
// reload that keeps a backend keeps this object, so its state and its open
// connections carry over.
type backend struct {
	addr string     // HOST:PORT as configured
	ip   netip.Addr // the host, when it is an IP address: nothing to resolve
	port uint16
	hash uint64 // of addr, for balance=source

	up       atomic.Bool  // false once fall checks failed in a row
	disabled atomic.Bool  // taken out by an administrator: no new connections
	open     atomic.Int64 // connections being connected or relayed
	total    atomic.Int64 // connections relayed
	failed   atomic.Int64 // connects that failed
	badRun   atomic.Int32 // failed checks in a row (read without the lock)

	mu      sync.Mutex
	goodRun int       // good checks in a row
	since   time.Time // when it last went up or down (or was created)
	retryAt time.Time // while down without active checks: when a connection may try it
	// lastCheck is when the active check (check=) last connected; the
	// passive checks (every connection) leave it alone: a time per
	// connection would cost the relay's hot path.
	lastCheck time.Time
}

// addrAt is the backend's HOST:PORT for a connection whose ports are
// shifted by offset (a port of a range, routeConfig.remoteOffset).
func (b *backend) addrAt(offset int) string {
	if offset == 0 {
		return b.addr
	}
	host, _, _ := net.SplitHostPort(b.addr)
	return net.JoinHostPort(host, strconv.Itoa(int(b.port)+offset))
}

// newBackend returns a backend for HOST:PORT, up.
func newBackend(addr string) *backend {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(addr)))
	b := &backend{addr: addr, port: uint16(p), hash: h.Sum64(), since: time.Now()}
	if ip, err := netip.ParseAddr(host); err == nil {
		b.ip = ip.Unmap()
	}
	b.up.Store(true)
	return b
}

// poolEntry is a backend in a pool, with its role.
type poolEntry struct {
	b      *backend
	backup bool
}

// backendPool is a route's backends as one configuration of the route
// names them, and how it balances them. A connection keeps the pool it was
// accepted with; a reload gives the route a new one (newBackendPool), which
// keeps the backends the two share.
type backendPool struct {
	route   int // the route's number, for events
	entries []poolEntry
	balance string
	check   time.Duration // active checks' interval; 0 is none
	rise    int
	fall    int
	timeout time.Duration // a check's connect timeout
	emit    func(Event)
	rr      atomic.Uint64 // roundrobin's counter

	stopChecks context.CancelFunc // nil while no checks run
	checks     sync.WaitGroup
}

// newBackendPool builds route id's pool for rt. Backends that old (the
// route's previous pool, or nil) has too are kept, with their state.
func newBackendPool(id int, rt Route, old *backendPool, emit func(Event)) *backendPool {
	p := &backendPool{route: id, balance: cmp.Or(rt.Balance, balanceRoundRobin), check: rt.Check,
		rise: rt.Rise, fall: rt.Fall, emit: emit}
	if p.rise == 0 {
		p.rise = defaultRise
	}
	if p.fall == 0 {
		p.fall = defaultFall
	}
	p.timeout = min(rt.connectTimeout(), max(rt.Check, time.Second))
	kept := map[string]*backend{}
	if old != nil {
		for _, e := range old.entries {
			kept[strings.ToLower(e.b.addr)] = e.b
		}
	}
	add := func(addr string, backup bool) {
		b := kept[strings.ToLower(addr)]
		if b == nil {
			b = newBackend(addr)
		}
		p.entries = append(p.entries, poolEntry{b: b, backup: backup})
	}
	add(rt.RemoteAddr(), false)
	for _, a := range rt.Also {
		add(a, false)
	}
	for _, a := range rt.Backups {
		add(a, true)
	}
	return p
}

// pick returns the index of the backend a connection from client tries
// next, or -1 when none is left; tried holds the indexes it has tried.
// The order: a backend that is down and due for its passive retry (without
// active checks) first, so that it gets its new chance; then the backends
// that are up, by the balance mode; then, only while they are all down,
// the backups that are up; then whatever is left, down or not, in the
// written order (a check can be wrong). Disabled backends are never picked.
func (p *backendPool) pick(client netip.Addr, tried uint64) int {
	if len(p.entries) == 1 {
		if tried != 0 || p.entries[0].b.disabled.Load() {
			return -1
		}
		return 0
	}
	if p.check == 0 {
		var now time.Time
		primaryUp := false
		for _, e := range p.entries {
			primaryUp = primaryUp || (!e.backup && e.b.up.Load() && !e.b.disabled.Load())
		}
		for i, e := range p.entries {
			if tried&(1<<i) != 0 || e.b.up.Load() || e.b.disabled.Load() || (e.backup && primaryUp) {
				continue // a backup waits for its retry while a primary is up
			}
			if now.IsZero() {
				now = time.Now()
			}
			if e.b.retryDue(now) {
				return i
			}
		}
	}
	if i := p.choose(client, tried, false); i >= 0 {
		return i
	}
	if i := p.choose(client, tried, true); i >= 0 {
		return i
	}
	for i, e := range p.entries {
		if tried&(1<<i) == 0 && !e.b.disabled.Load() {
			return i
		}
	}
	return -1
}

// eligible reports whether entry i may take a new connection in its
// balance group (backups or not).
func (p *backendPool) eligible(i int, tried uint64, backup bool) bool {
	e := p.entries[i]
	return e.backup == backup && tried&(1<<i) == 0 && e.b.up.Load() && !e.b.disabled.Load()
}

// choose picks among the untried, up and enabled backends of one group by
// the balance mode, or returns -1.
func (p *backendPool) choose(client netip.Addr, tried uint64, backup bool) int {
	n := len(p.entries)
	switch p.balance {
	case balanceFirst:
		for i := range n {
			if p.eligible(i, tried, backup) {
				return i
			}
		}
	case balanceLeastConn:
		// Ties go round: the scan starts one further each time.
		start := int(p.rr.Add(1) % uint64(n))
		best, least := -1, int64(0)
		for k := range n {
			i := (start + k) % n
			if !p.eligible(i, tried, backup) {
				continue
			}
			if open := p.entries[i].b.open.Load(); best < 0 || open < least {
				best, least = i, open
			}
		}
		return best
	case balanceSource:
		// Rendezvous hashing: the client goes to the backend with the
		// highest score; one going down moves only its own clients.
		ch := clientHash(client)
		best, top := -1, uint64(0)
		for i := range n {
			if !p.eligible(i, tried, backup) {
				continue
			}
			if s := mix64(ch ^ p.entries[i].b.hash); best < 0 || s > top {
				best, top = i, s
			}
		}
		return best
	default: // roundrobin
		count := 0
		for i := range n {
			if p.eligible(i, tried, backup) {
				count++
			}
		}
		if count == 0 {
			return -1
		}
		// A backend may go down between the two passes: then the last
		// eligible one found is taken.
		k := int(p.rr.Add(1) % uint64(count))
		found := -1
		for i := range n {
			if p.eligible(i, tried, backup) {
				if found = i; k == 0 {
					break
				}
				k--
			}
		}
		return found
	}
	return -1
}

// clientHash hashes a client's address for balance=source.
func clientHash(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	h := fnv.New64a()
	h.Write(b[:])
	return h.Sum64()
}

// mix64 is splitmix64's finalizer: every input bit moves every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// failure is the error of a connection for which no backend answered,
// after attempts connects; last is the last one's error.
func (p *backendPool) failure(attempts int, last error) error {
	if attempts == 0 {
		return errors.New("no backend to try: every one is disabled")
	}
	if attempts > 1 {
		return fmt.Errorf("no backend answered (%d tried), the last: %w", attempts, last)
	}
	return last
}

// SetBackendDisabled disables (or enables again) the backend addr of
// running route id, and returns its open connections and how many of the
// route's backends are enabled now. A disabled backend is never picked for
// a new connection.
func (r *Relay) SetBackendDisabled(id int, addr string, disabled bool) (open int64, enabled int, err error) {
	r.mu.Lock()
	var pool *backendPool
	if route, ok := r.routes[id]; ok {
		pool = route.core().cfg.Load().pool
	}
	r.mu.Unlock()
	if pool == nil {
		return 0, 0, errors.New("not running")
	}
	var names []string
	found := false
	for _, e := range pool.entries {
		if strings.EqualFold(e.b.addr, addr) {
			e.b.disabled.Store(disabled)
			open, found = e.b.open.Load(), true
		}
		if !e.b.disabled.Load() {
			enabled++
		}
		names = append(names, e.b.addr)
	}
	if !found {
		return 0, 0, fmt.Errorf("no backend %s (its backends: %s)", addr, strings.Join(names, ", "))
	}
	return open, enabled, nil
}
