package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// keepAlive is the TCP keepalive of both sides of every relayed connection:
// the first probe after a minute of silence, then the system's interval and
// count (Linux: 75 s, 9 probes), so a vanished peer is noticed within about
// 12 minutes. Leaving interval and count alone saves two setsockopt calls
// per socket against Go's default 15 s/15 s/9.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: -1, Count: -1}

// routeConfig is what a running route relays its new connections with:
// the route and its backends. Relay.Update replaces it; a connection keeps
// the one it was accepted with.
type routeConfig struct {
	Route
	pool      *backendPool
	firstPort int       // the route's first local port: a port's offset in a range counts from it
	tls       *routeTLS // the route's TLS (tlsroute.go); nil without
}

// remoteOffset is the offset that a connection to local port adds to the
// backends' ports: its place in the range when the remote ports are a
// range too, else 0.
func (c *routeConfig) remoteOffset(port int) int {
	if !c.RemoteRange {
		return 0
	}
	return port - c.firstPort
}

// Relay runs any number of routes, each identified by a number, and lets each
// be started and stopped while the others keep running. The zero value is
// ready to use.
type Relay struct {
	// Events, when set, receives every connection event. It is called from
	// the connection's goroutines or from an event loop that relays many
	// connections (Linux), so it must be quick and must not block, nor call
	// the Relay's methods: hand such work to another goroutine.
	Events   func(Event)
	open     atomic.Int64 // open connections, all routes
	maxConns atomic.Int64 // SetMaxConns
	// clients counts each client's open connections for the global
	// clientmaxconn (SetClientMaxConns, clientlimits.go).
	clients globalClients

	mu       sync.Mutex
	routes   map[int]runningRoute
	retiring map[runningRoute]struct{} // stopped accepting, connections still running
	stats    map[int]*routeStats       // by route number, from its first Start on
	pools    map[int]*backendPool      // each route number's last backends, whose state a restart keeps
	sni      map[string]*sniGroup      // ports shared by sni=, by address (sniroute.go)
	names    dataLogNamer
	engines  []*engine // created with the first route they run; nil where unsupported
	noEngine bool      // the engines could not be created: use goroutines
}

// runningRoute is a route that runs, whatever its protocol: a tcpRoute
// (relay.go) or a udpRoute (udp.go). The Relay's methods know only this.
type runningRoute interface {
	core() *routeCore
	// firstAddr is the address of its lowest port, nil when it has none.
	firstAddr() net.Addr
	// update gives it rt, whose listening sockets are host's ports, and
	// the backends pool; it reports false, changing nothing, when rt needs
	// a restart (the route would be left with no socket, say), and the
	// ports that failed to open. The Relay's lock is held.
	update(rt Route, host string, ports []int, pool *backendPool) (bool, map[int]error)
	// active is its open connections (UDP: sessions).
	active() int
	// repaceOpen makes its open connections take the bandwidth caps a
	// reload has just changed (bandwidth.go); gained: it has a cap it did
	// not have.
	repaceOpen(gained bool)
	// live is its open connections and what they relayed so far that
	// Status reads from it, and the kernel's drops on its sockets (UDP).
	// The route's byte lock is held.
	live() (open, sent, received, drops int64)
	// lookUp refreshes what live reads from the system, before the byte
	// lock is taken (UDP: its sockets' drops).
	lookUp()
	// rcvBuf is the receive buffer its sockets got (UDP), or 0.
	rcvBuf() int
	// stop stops accepting at once, lets its connections finish until ctx
	// is done, then closes the rest, and returns when all are closed.
	stop(ctx context.Context)
	// retire stops accepting at once (its ports are free when it returns)
	// and lets its connections run until they end, or until cut, which
	// it returns (nil: none is left); done runs once they all have.
	retire(done func()) (cut func())
	// awaitRetired waits, after retire, until its connections have ended,
	// and cuts them when ctx is done first.
	awaitRetired(ctx context.Context)
}

// SetMaxConns caps the open connections of all routes together; zero means
// no cap. Over it, new clients are refused; open ones are not touched.
func (r *Relay) SetMaxConns(n int) { r.maxConns.Store(int64(n)) }

// Start listens for the route and relays its connections until Stop or
// Shutdown. It returns the listen error, if any, and never blocks on
// clients. For a range whose ports could only partly be listened on, it
// returns a *ListenError and the route runs on the others.
func (r *Relay) Start(id int, rt Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.routes[id]; ok {
		return fmt.Errorf("route %d is already running", id)
	}
	if changed, gained := r.statsFor(id).limits.set(rt.Limits); changed { // limits: the route's figures (clientlimits.go)
		r.repaceRetiring(id, gained)
	}
	if rt.Proto != "udp" && (rt.TLS.SNI != "" || rt.SNIShared) {
		return r.startSNI(id, rt) // a port shared by sni=: sniroute.go
	}
	host, ports, err := listenPorts(rt)
	if err != nil {
		return err
	}
	rtls, err := newRouteTLS(rt.TLS, r.tlsReporter(id)) // tlsroute.go; nil without TLS
	if err != nil {
		return err
	}
	route, failed := newRunningRoute(r, id, rt, host, ports, rtls)
	if route == nil {
		if len(ports) == 1 {
			return failed[ports[0]]
		}
		return &ListenError{Failed: failed}
	}
	if r.routes == nil {
		r.routes = make(map[int]runningRoute)
	}
	r.routes[id] = route
	pool := route.core().cfg.Load().pool
	r.pools[id] = pool
	pool.startChecks()
	if len(failed) > 0 {
		return &ListenError{Failed: failed}
	}
	return nil
}

// repaceRetiring tells the connections still open on route id's retired
// instances of the caps its restart has just changed, as Update does for
// a route changed in place (a route restarts when its data log, TLS or
// sni= change). r.mu is held.
func (r *Relay) repaceRetiring(id int, gained bool) {
	for old := range r.retiring {
		if old.core().id == id {
			old.repaceOpen(gained)
		}
	}
}

// newRunningRoute starts route id on host's ports, by its protocol: the one
// place that chooses. It returns nil when no port could be listened on,
// and the ports that failed. r.mu is held.
func newRunningRoute(r *Relay, id int, rt Route, host string, ports []int, rtls *routeTLS) (runningRoute, map[int]error) {
	if rt.Proto == "udp" {
		return startUDP(r, id, rt, host, ports)
	}
	return startTCP(r, id, rt, host, ports, rtls)
}

// startTCP starts TCP route id (Start).
func startTCP(r *Relay, id int, rt Route, host string, ports []int, rtls *routeTLS) (runningRoute, map[int]error) {
	l := &tcpRoute{socks: make(map[int]*listenSock), conns: make(map[trackedConn]struct{})}
	l.init(r, id, false)
	l.cfg.Store(newRouteConfig(rt, newBackendPool(id, rt, r.pools[id], r.emit), ports[0]).withTLS(rtls))
	// The engines accept and relay the route's clients, on descriptors of
	// their own: the runtime's poller must not wake up for every client.
	l.engines = r.enginesFor(rt)
	failed := l.openSocks(host, ports)
	if first := l.firstAddr(); first != nil && ports[0] == 0 {
		// Port 0: the one the system chose (a configuration is never
		// changed once its accept loops may read it).
		l.cfg.Store(newRouteConfig(rt, l.cfg.Load().pool, first.(*net.TCPAddr).Port).withTLS(rtls))
	}
	if len(l.socks) == 0 {
		l.stopDials()
		return nil, failed
	}
	return l, failed
}

// statsFor returns the counters of route number id, made on first use.
// r.mu is held.
func (r *Relay) statsFor(id int) *routeStats {
	if r.stats == nil {
		r.stats, r.pools = make(map[int]*routeStats), make(map[int]*backendPool)
	}
	if r.stats[id] == nil {
		r.stats[id] = &routeStats{}
	}
	return r.stats[id]
}

// newRouteConfig is the configuration of a route rt whose first port is
// first, with its backends.
func newRouteConfig(rt Route, pool *backendPool, first int) *routeConfig {
	return &routeConfig{Route: rt, pool: pool, firstPort: first}
}

// Update gives running route id the configuration rt without closing its
// listening sockets: new connections are relayed with rt, open ones keep
// what they were accepted with, and the backends that rt keeps keep their
// health and their counts. A range's ports that rt drops close, ports it
// adds (and ports that failed before) open: the error is a *ListenError for
// those that failed again. It reports false, changing nothing, when the
// route is not running or rt needs other listeners (another protocol or
// local address, or a data log turned on or off): then Retire it and
// Start it again.
func (r *Relay) Update(id int, rt Route) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	route, ok := r.routes[id]
	if !ok {
		return false, nil
	}
	old := route.core().cfg.Load()
	host, ports, ok := updatedPorts(old, rt)
	if !ok || (rt.Proto == "udp") != (old.Proto == "udp") {
		return false, nil
	}
	rt.ListenAddr = net.JoinHostPort(host, strconv.Itoa(ports[0]))
	pool := newBackendPool(id, rt, old.pool, r.emit)
	ok, failed := route.update(rt, host, ports, pool)
	if !ok {
		return false, nil
	}
	old.pool.stop()
	r.pools[id] = pool
	pool.startChecks()
	if changed, gained := route.core().stats.limits.set(rt.Limits); changed { // limits: open connections go on under the new figures
		route.repaceOpen(gained) // pacedcopy.go
	}
	if len(failed) > 0 {
		return true, &ListenError{Failed: failed}
	}
	return true, nil
}

// update is Update for a TCP route (a data log turned on or off needs a
// restart): ports the route gains, or that could
// not be listened on before, open first; then the ports it no longer has
// close; the others are not touched. A route that would be left with no
// socket is not changed: it is restarted instead.
func (l *tcpRoute) update(rt Route, host string, ports []int, pool *backendPool) (bool, map[int]error) {
	old := l.cfg.Load()
	if (rt.DataLogDir == "") != (old.DataLogDir == "") {
		return false, nil // the engines relay the route, or goroutines: see enginesFor
	}
	if l.sni != nil || rt.TLS != old.TLS {
		return false, nil // restarted: sniroute.go, tlsroute.go
	}
	gone, missing := portChanges(l.socks, ports)
	failed := l.openSocks(host, missing)
	if len(l.socks) == len(gone) {
		return false, nil
	}
	l.cfg.Store(newRouteConfig(rt, pool, ports[0]).withTLS(old.tls))
	var goneSocks []*listenSock
	for _, port := range gone {
		goneSocks = append(goneSocks, l.socks[port])
		delete(l.socks, port)
	}
	l.closeSocks(goneSocks)
	return true, failed
}

// Addr returns the address route id listens on, or nil if it is not running.
func (r *Relay) Addr(id int) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if route, ok := r.routes[id]; ok {
		return route.firstAddr()
	}
	return nil
}

// Active returns the number of connections being relayed on all routes.
func (r *Relay) Active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, route := range r.routes {
		n += route.active()
	}
	return n
}

// Stop stops route id: it stops accepting at once, lets the route's
// connections finish until ctx is done, then closes what is left (a UDP
// session cannot outlive its listening socket: it ends at once). Stopping
// a route that is not running does nothing.
func (r *Relay) Stop(ctx context.Context, id int) {
	r.mu.Lock()
	route, ok := r.routes[id]
	delete(r.routes, id)
	r.mu.Unlock()
	if ok {
		route.stop(ctx)
	}
}

// Retire stops route id from accepting, at once, and lets its connections
// run until they end by themselves (or until Shutdown). The route's number
// and port are free again when Retire returns.
func (r *Relay) Retire(id int) { r.retire(id) }

// RetireWithin is Retire with a drain time: the connections still open
// after drain are closed (routedisable.go).
func (r *Relay) RetireWithin(id int, drain time.Duration) {
	if cut := r.retire(id); cut != nil {
		time.AfterFunc(drain, cut)
	}
}

// retire is Retire; it returns what closes the retired route's connections
// at once, or nil when there is nothing left to close.
func (r *Relay) retire(id int) (cut func()) {
	r.mu.Lock()
	route, ok := r.routes[id]
	if !ok {
		r.mu.Unlock()
		return nil
	}
	delete(r.routes, id)
	if r.retiring == nil {
		r.retiring = make(map[runningRoute]struct{})
	}
	r.retiring[route] = struct{}{}
	r.mu.Unlock()
	return route.retire(func() {
		r.mu.Lock()
		delete(r.retiring, route)
		r.mu.Unlock()
	})
}

// Shutdown stops every route as Stop does, all at the same time, and the
// connections of retired routes too.
func (r *Relay) Shutdown(ctx context.Context) {
	r.mu.Lock()
	routes, engines := r.routes, r.engines
	r.routes, r.engines = nil, nil
	retiring := make([]runningRoute, 0, len(r.retiring))
	for route := range r.retiring {
		retiring = append(retiring, route)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, route := range routes {
		wg.Go(func() { route.stop(ctx) })
	}
	for _, route := range retiring {
		wg.Go(func() { route.awaitRetired(ctx) })
	}
	wg.Wait()
	for _, e := range engines {
		e.Close()
	}
}

// enginesFor returns the engines that relay route rt's connections, one
// per processor (up to maxEngines), creating them on first use; or nil if
// goroutines relay them: where the platform has no engine, and for routes
// with a data log. r.mu is held.
func (r *Relay) enginesFor(rt Route) []*engine {
	if rt.DataLogDir != "" || rt.usesGoroutines() || r.noEngine { // usesGoroutines: tlsroute.go
		return nil
	}
	if r.engines == nil {
		for i := range min(engineCount(), goroutineSlot) {
			e, err := newEngine(i)
			if err != nil {
				for _, e := range r.engines {
					e.Close()
				}
				r.engines, r.noEngine = nil, true
				return nil
			}
			r.engines = append(r.engines, e)
		}
		if r.engines == nil {
			r.noEngine = true
		} else {
			reserveSpareProc(len(r.engines))
		}
	}
	return r.engines
}

func (r *Relay) emit(e Event) {
	if r.Events != nil {
		r.Events(e)
	}
}

// tcpRoute is one running TCP route: its listening sockets (one per
// port of a range), who accepts on them, and the connections accepted.
type tcpRoute struct {
	routeCore
	// socks are the route's listening sockets by port (listeners.go);
	// changed under the Relay's lock while the route runs. engines accept
	// and relay its clients (each those it accepts), or, when nil, an
	// accept loop per socket does.
	socks   map[int]*listenSock
	engines []*engine
	// sni is the port the route shares by sni= (sniroute.go), whose
	// socket is the group's; nil for a route with sockets of its own.
	sni *sniGroup

	closeOnce sync.Once // closes the listening sockets

	// Set by Retire: cancelDrain forces the connections closed; retired is
	// closed when they all are.
	cancelDrain context.CancelFunc
	retired     chan struct{}

	mu      sync.Mutex
	conns   map[trackedConn]struct{}
	closing bool
	wg      sync.WaitGroup // the accept loop and every connection
	idle    chan struct{}  // closed when conns becomes empty while closing
}

// acceptLoop accepts clients on s until it is closed. Errors never end
// it: it backs off, reports the first error of an incident, and reports the
// recovery when an accept succeeds again.
func (l *tcpRoute) acceptLoop(s *listenSock) {
	defer l.wg.Done()
	for {
		// While the system is out of resources, accept slowly: each
		// accepted client would need more descriptors to be relayed.
		if wait := l.incidentBackoff(); wait > 0 {
			select {
			case <-time.After(wait):
			case <-l.dials.Done():
				return
			}
		}
		client, err := s.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.resourceError(err)
			continue
		}
		cfg := l.cfg.Load()
		if c := l.accepted(client, cfg, cfg.remoteOffset(s.port)); c != nil {
			go c.serve()
		}
	}
}

// accepted takes a client the goroutine relay accepted (an accept loop's,
// or one an sni= port handed over) with the route's cfg, on port's place
// in a range (offset): it refuses it (allow=/deny=, maxconn=, the limits
// per client), or returns its connection, tracked and counted open, for
// the caller to serve.
func (l *tcpRoute) accepted(client *net.TCPConn, cfg *routeConfig, offset int) *relayConn {
	slot := &l.stats.slots[goroutineSlot]
	peer := client.RemoteAddr().(*net.TCPAddr).AddrPort()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if why, kind := l.whyRefuse(cfg, peer.Addr()); why != "" {
		client.SetLinger(0)
		client.Close()
		l.turnAway(cfg, slot, peer.String(), why, kind, true)
		return nil
	}
	hold, ok := l.admit(cfg, peer) // limits: per client (clientlimits.go)
	if !ok {
		client.SetLinger(0)
		client.Close()
		return nil
	}
	c := &relayConn{l: l, clientConn: client}
	c.begin(&l.routeCore, cfg, slot, peer, time.Now(), offset, hold, &c.dial)
	if !l.track(c) {
		hold.release()
		client.Close()
		return nil
	}
	l.relay.open.Add(1)
	l.wg.Add(1)
	return c
}

// whyRefuse says why a newly accepted client is refused by the route's
// configuration cfg (access lists, the route's and the relay's connection
// caps), and the kind of refusal, or "" if it is not.
func (l *tcpRoute) whyRefuse(cfg *routeConfig, addr netip.Addr) (why string, kind int) {
	if why := cfg.admits(addr); why != "" {
		return why, refusedByACL
	}
	if max := cfg.MaxConn; max > 0 && l.active() >= max {
		return fmt.Sprintf("route has maxconn=%d open connections", max), refusedByCap
	}
	if why := l.relay.atGlobalCap(); why != "" {
		return why, refusedByCap
	}
	return "", 0
}

// atGlobalCap says why the relay takes no new connection (TCP, or UDP
// session) while it has SetMaxConns open, or "" if it does.
func (r *Relay) atGlobalCap() string {
	if max := r.maxConns.Load(); max > 0 && r.open.Load() >= max {
		return fmt.Sprintf("relay has its global maximum of %d open connections", max)
	}
	return ""
}

// retire stops the route accepting now and lets its connections run until
// they end, or until the cut it returns; done runs when they all have.
func (l *tcpRoute) retire(done func()) (cut func()) {
	drain, cancel := context.WithCancel(context.Background())
	l.cancelDrain, l.retired = cancel, make(chan struct{})
	l.closeListener()
	go func() {
		l.stop(drain)
		done()
		close(l.retired)
	}()
	return cancel
}

// awaitRetired waits until the connections of the retired route have
// ended, cutting them when ctx is done first.
func (l *tcpRoute) awaitRetired(ctx context.Context) {
	select {
	case <-ctx.Done():
		l.cancelDrain()
		<-l.retired
	case <-l.retired:
	}
}

func (l *tcpRoute) core() *routeCore { return &l.routeCore }
func (l *tcpRoute) lookUp()          {}
func (l *tcpRoute) rcvBuf() int      { return 0 }

// closeListener stops the route accepting: when it returns, its listening
// sockets are closed and their ports free (closeSocks). It must not run in
// an engine's loop, nor under the Relay's lock.
func (l *tcpRoute) closeListener() {
	l.closeOnce.Do(func() {
		l.relay.mu.Lock()
		socks := make([]*listenSock, 0, len(l.socks))
		for _, s := range l.socks {
			socks = append(socks, s)
		}
		l.relay.mu.Unlock()
		l.closeSocks(socks)
		l.leaveSNI()             // sniroute.go
		l.cfg.Load().pool.stop() // no new connection needs the checks
	})
}

// trackedConn is an accepted connection of a route: a relayConn, or a flow
// of the engine.
type trackedConn interface {
	// abort closes the connection at once, from any goroutine.
	abort(reason error)
	// liveBytes is what the connection has relayed so far, each way, for
	// Status: a relayConn's; an engine's flow says 0, as its engine counts
	// its flows itself (engine.routeBytes).
	liveBytes() (sent, received int64)
	// held is the client's place under the per-client limits, given
	// back when the connection is done (clientlimits.go); often nil.
	held() *clientHold
}

// track registers c as active; it reports false once the route is closing.
func (l *tcpRoute) track(c trackedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

// connDone is called once per accepted connection, when it is over.
func (l *tcpRoute) connDone(c trackedConn) {
	c.held().release()
	l.relay.open.Add(-1)
	l.untrack(c)
	l.wg.Done()
}

// connClosed is connDone for a goroutine-relay connection that relayed
// sent and received bytes: they move from its open bytes to its route's
// counters in one step under the route's byte lock, so that Status counts
// them once, neither twice nor never.
func (l *tcpRoute) connClosed(c *relayConn, t traffic) {
	c.held().release()
	l.stats.bytesMu.Lock()
	c.slot.sent.Add(t.sent)
	c.slot.received.Add(t.received)
	l.untrack(c)
	l.stats.bytesMu.Unlock()
	l.relay.open.Add(-1)
	l.wg.Done()
}

func (l *tcpRoute) untrack(c trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	if l.closing && len(l.conns) == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
}

func (l *tcpRoute) active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// stop closes the listener, waits for the connections to end until ctx is
// done, then forces the rest closed and waits for every goroutine to return.
func (l *tcpRoute) stop(ctx context.Context) {
	l.mu.Lock()
	l.closing = true
	idle := make(chan struct{})
	if len(l.conns) == 0 {
		close(idle)
	} else {
		l.idle = idle
	}
	l.mu.Unlock()
	l.closeListener()

	select {
	case <-idle:
	case <-ctx.Done():
	}
	l.stopDials()
	l.mu.Lock()
	left := make([]trackedConn, 0, len(l.conns))
	for c := range l.conns {
		left = append(left, c)
	}
	l.mu.Unlock()
	for _, c := range left {
		c.abort(errStopped)
	}
	l.wg.Wait()
}
