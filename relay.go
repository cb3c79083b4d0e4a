package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultConnectTimeout is how long a route waits for the remote side to
// accept a connection when Route.ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

// keepAlive is the TCP keepalive of both sides of every relayed connection:
// the first probe after a minute of silence, then the system's interval and
// count (Linux: 75 s, 9 probes), so a vanished peer is noticed within about
// 12 minutes. Leaving interval and count alone saves two setsockopt calls
// per socket against Go's default 15 s/15 s/9.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: -1, Count: -1}

// Route is one forwarding rule: connections accepted on ListenAddr are relayed
// to RemoteHost:RemotePort.
type Route struct {
	// ListenAddr is the local address to listen on, as for net.Listen:
	// ":155" listens on every interface, IPv4 and IPv6.
	ListenAddr string
	// Ports, when more than 1, makes the route listen on that many ports
	// from ListenAddr's on (a range, ranges.go). With RemoteRange, a
	// connection to the n-th port goes to each backend's port + n; else
	// every port goes to the backends' ports.
	Ports       int
	RemoteRange bool
	// Proto is "udp" for a UDP route (udp.go), "" for TCP.
	Proto string
	// RemoteHost is the destination as a name or an IP literal. A name is
	// resolved again for every connection, so DNS changes are followed.
	RemoteHost string
	// RemotePort is the destination port, 1-65535.
	RemotePort int
	// ConnectTimeout bounds the dial to the remote side; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// DataLogDir, when not empty, turns on the data log: one hex+ASCII file
	// per connection in that directory.
	DataLogDir string

	// Allow, when not empty, admits only clients whose address is in one
	// of these prefixes; Deny refuses clients in any of its prefixes (Deny
	// wins). A refused client is closed at once.
	Allow, Deny []netip.Prefix
	// MaxConn caps the route's open connections; zero means no cap. Over
	// it, new clients are refused and the open ones are not affected.
	MaxConn int
	// IdleTimeout closes a connection that has relayed nothing either way
	// for that long; zero means never.
	IdleTimeout time.Duration

	// Also are more backends (HOST:PORT) besides RemoteHost:RemotePort,
	// Backups backends used only while all the others are down. Balance
	// is how a connection picks one ("" is roundrobin); Check, when not
	// zero, checks each backend that often; Rise and Fall are the checks
	// in a row that mark a backend up and down (zero: 2 and 3). See
	// backends.go.
	Also, Backups []string
	Balance       string
	Check         time.Duration
	Rise, Fall    int

	// Proxy, "v1" or "v2", sends each backend a PROXY header first that
	// names the client; AcceptProxy requires one from every client, read
	// within the connect timeout, and takes the client from it
	// (proxyproto.go).
	Proxy       string
	AcceptProxy bool

	// RcvBuf is the receive buffer of a UDP route's sockets in bytes; zero
	// means defaultRcvBuf (udpbuf.go).
	RcvBuf int

	// Limits are the per-client limits and the bandwidth caps
	// (limitoptions.go); the zero value is none.
	Limits

	// TLS are the route's TLS options (tlsoptions.go); a route that uses
	// them is relayed by the goroutine relay (tlsroute.go). SNIShared
	// marks a route without sni= on a port that routes with sni= share:
	// it is the port's default (sniroute.go).
	TLS       TLSOptions
	SNIShared bool
}

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

// admits reports why a client may not use the route, or "" if it may.
// With AcceptProxy this is the connecting proxy: allow= lists the trusted
// proxies, and the client its header names must pass denies too.
func (rt Route) admits(client netip.Addr) string {
	client = client.Unmap()
	if why := rt.denies(client); why != "" {
		return why
	}
	if len(rt.Allow) == 0 {
		return ""
	}
	for _, p := range rt.Allow {
		if p.Contains(client) {
			return ""
		}
	}
	return "not in allow=" + joinPrefixes(rt.Allow)
}

// denies reports why deny= refuses a client, or "".
func (rt Route) denies(client netip.Addr) string {
	client = client.Unmap()
	for _, p := range rt.Deny {
		if p.Contains(client) {
			return "denied by deny=" + p.String()
		}
	}
	return ""
}

// joinPrefixes writes prefixes as the allow= and deny= options do.
func joinPrefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// RemoteAddr returns the destination in host:port form.
func (rt Route) RemoteAddr() string {
	return net.JoinHostPort(rt.RemoteHost, strconv.Itoa(rt.RemotePort))
}

func (rt Route) connectTimeout() time.Duration {
	if rt.ConnectTimeout > 0 {
		return rt.ConnectTimeout
	}
	return DefaultConnectTimeout
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
	routes   map[int]*routeListener
	retiring map[*routeListener]struct{} // stopped accepting, connections still running
	udp      map[int]*udpRoute           // the UDP routes (udp.go)
	sni      map[string]*sniGroup        // ports shared by sni=, by address (sniroute.go)
	stats    map[int]*routeStats         // by route number, from its first Start on
	pools    map[int]*backendPool        // each route number's last backends, whose state a restart keeps
	names    dataLogNamer
	engines  []*engine // created with the first route they run; nil where unsupported
	noEngine bool      // the engines could not be created: use goroutines
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
	if _, ok := r.routes[id]; ok || r.udp[id] != nil {
		return fmt.Errorf("route %d is already running", id)
	}
	if rt.Proto == "udp" {
		return r.startUDP(id, rt)
	}
	if rt.TLS.SNI != "" || rt.SNIShared {
		return r.startSNI(id, rt) // a port shared by sni=: sniroute.go
	}
	host, ports, err := listenPorts(rt)
	if err != nil {
		return err
	}
	rtls, err := newRouteTLS(rt.TLS, r.tlsReporter(id)) // tlsroute.go
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &routeListener{
		id:     id,
		stats:  r.statsFor(id),
		relay:  r,
		socks:  make(map[int]*listenSock),
		conns:  make(map[trackedConn]struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	l.cfg.Store(newRouteConfig(rt, newBackendPool(id, rt, r.pools[id], r.emit), ports[0]).withTLS(rtls))
	l.stats.limits.set(rt.Limits) // limits: the route's figures (clientlimits.go)
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
		cancel()
		if len(ports) == 1 {
			return failed[ports[0]]
		}
		return &ListenError{Failed: failed}
	}
	if r.routes == nil {
		r.routes = make(map[int]*routeListener)
	}
	r.routes[id] = l
	r.pools[id] = l.cfg.Load().pool
	l.cfg.Load().pool.startChecks()
	if len(failed) > 0 {
		return &ListenError{Failed: failed}
	}
	return nil
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
// route is not running or rt needs other listeners (another local address,
// or a data log turned on or off): then Retire it and Start it again.
func (r *Relay) Update(id int, rt Route) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.udp[id]; u != nil {
		return r.updateUDP(u, rt)
	}
	l, ok := r.routes[id]
	if !ok || rt.Proto == "udp" || l.sni != nil { // sni: restarted, sniroute.go
		return false, nil
	}
	old := l.cfg.Load()
	host, ports, ok := updatedPorts(old, rt)
	if !ok || (rt.DataLogDir == "") != (old.DataLogDir == "") || rt.TLS != old.TLS || (l.engines != nil && rt.paced()) {
		return false, nil // TLS: tlsroute.go; limits: a cap moves the route off the engines (bandwidth.go)
	}
	rt.ListenAddr = net.JoinHostPort(host, strconv.Itoa(ports[0]))
	// Ports the route gains, or that could not be listened on before,
	// open first; then the ports it no longer has close; the others are
	// not touched. A route that would be left with no socket is not
	// changed: it is restarted instead.
	gone, missing := portChanges(l.socks, ports)
	failed := l.openSocks(host, missing)
	if len(l.socks) == len(gone) {
		return false, nil
	}
	cfg := newRouteConfig(rt, newBackendPool(id, rt, old.pool, r.emit), ports[0]).withTLS(old.tls)
	old.pool.stop()
	l.cfg.Store(cfg)
	l.stats.limits.set(rt.Limits) // limits: open connections go on under the new figures
	r.pools[id] = cfg.pool
	cfg.pool.startChecks()
	var goneSocks []*listenSock
	for _, port := range gone {
		goneSocks = append(goneSocks, l.socks[port])
		delete(l.socks, port)
	}
	l.closeSocks(goneSocks)
	if len(failed) > 0 {
		return true, &ListenError{Failed: failed}
	}
	return true, nil
}

// Addr returns the address route id listens on, or nil if it is not running.
func (r *Relay) Addr(id int) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.routes[id]; ok {
		return l.firstAddr()
	}
	if u := r.udp[id]; u != nil {
		return u.firstAddr()
	}
	return nil
}

// Active returns the number of connections being relayed on all routes.
func (r *Relay) Active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.routes {
		n += l.active()
	}
	for _, u := range r.udp {
		open, _, _, _ := u.status()
		n += int(open)
	}
	return n
}

// Stop stops route id: it stops accepting at once, lets the route's
// connections finish until ctx is done, then closes what is left. Stopping a
// route that is not running does nothing.
func (r *Relay) Stop(ctx context.Context, id int) {
	r.mu.Lock()
	l, ok := r.routes[id]
	delete(r.routes, id)
	u := r.udp[id]
	delete(r.udp, id)
	r.mu.Unlock()
	if ok {
		l.stop(ctx)
	}
	if u != nil {
		u.stop() // a UDP session cannot outlive its listening socket
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
	if u := r.udp[id]; u != nil {
		delete(r.udp, id)
		r.mu.Unlock()
		u.stop() // its sessions' answers go out by its socket: they end too
		return nil
	}
	l, ok := r.routes[id]
	if !ok {
		r.mu.Unlock()
		return nil
	}
	delete(r.routes, id)
	drain, cancel := context.WithCancel(context.Background())
	l.cancelDrain, l.retired = cancel, make(chan struct{})
	if r.retiring == nil {
		r.retiring = make(map[*routeListener]struct{})
	}
	r.retiring[l] = struct{}{}
	r.mu.Unlock()

	l.closeListener()
	go func() {
		l.stop(drain)
		r.mu.Lock()
		delete(r.retiring, l)
		r.mu.Unlock()
		close(l.retired)
	}()
	return cancel
}

// Shutdown stops every route as Stop does, all at the same time, and the
// connections of retired routes too.
func (r *Relay) Shutdown(ctx context.Context) {
	r.mu.Lock()
	routes, engines, udp := r.routes, r.engines, r.udp
	r.routes, r.engines, r.udp = nil, nil, nil
	retiring := make([]*routeListener, 0, len(r.retiring))
	for l := range r.retiring {
		retiring = append(retiring, l)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stop(ctx)
		}()
	}
	for _, u := range udp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.stop()
		}()
	}
	for _, l := range retiring {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				l.cancelDrain()
				<-l.retired
			case <-l.retired:
			}
		}()
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
	if rt.DataLogDir != "" || rt.usesGoroutines() || r.noEngine || rt.paced() { // usesGoroutines: tlsroute.go; paced: bandwidth.go
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

// routeListener is one running TCP route: its listening sockets (one per
// port of a range), who accepts on them, and the connections accepted.
type routeListener struct {
	id    int
	cfg   atomic.Pointer[routeConfig] // for new connections
	stats *routeStats
	relay *Relay
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

	// ctx is cancelled when the route's remaining connections are forced
	// closed; pending dials use it.
	ctx    context.Context
	cancel context.CancelFunc

	// Set by Retire: cancelDrain forces the connections closed; retired is
	// closed when they all are.
	cancelDrain context.CancelFunc
	retired     chan struct{}

	mu      sync.Mutex
	conns   map[trackedConn]struct{}
	closing bool
	wg      sync.WaitGroup // the accept loop and every connection

	// An incident: accept or dial errors for lack of resources, since the
	// last connection relayed; the accept loop waits backoff between
	// accepts until it ends.
	incidentErrors    int
	lastIncidentError time.Time
	backoff           time.Duration
	idle              chan struct{} // closed when conns becomes empty while closing
}

// Back-off bounds: during an incident (too many open files, say) the
// accept loop waits minAcceptBackoff between accepts, doubling up to
// maxAcceptBackoff.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
	// incidentQuiet is how long an incident must go without errors before a
	// relayed connection ends it.
	incidentQuiet = time.Second
)

// nextAcceptBackoff is an accept loop's wait after another error, when it
// waited d after the one before: doubling from minAcceptBackoff up to
// maxAcceptBackoff.
func nextAcceptBackoff(d time.Duration) time.Duration {
	return min(max(2*d, minAcceptBackoff), maxAcceptBackoff)
}

// acceptLoop accepts clients on s until it is closed. Errors never end
// it: it backs off, reports the first error of an incident, and reports the
// recovery when an accept succeeds again.
func (l *routeListener) acceptLoop(s *listenSock) {
	defer l.wg.Done()
	for {
		// While the system is out of resources, accept slowly: each
		// accepted client would need more descriptors to be relayed.
		if wait := l.incidentBackoff(); wait > 0 {
			select {
			case <-time.After(wait):
			case <-l.ctx.Done():
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
		cfg, slot := l.cfg.Load(), &l.stats.slots[goroutineSlot]
		if why, kind := l.refusal(cfg, client.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()); why != "" {
			client.SetLinger(0)
			client.Close()
			l.refused(cfg, slot, client.RemoteAddr().String(), why, kind)
			continue
		}
		hold, ok := l.admit(cfg, client.RemoteAddr().(*net.TCPAddr).AddrPort()) // limits: per client (clientlimits.go)
		if !ok {
			client.SetLinger(0)
			client.Close()
			continue
		}
		c := &relayConn{route: l, cfg: cfg, slot: slot, client: client, start: time.Now(), offset: cfg.remoteOffset(s.port), hold: hold}
		if !l.track(c) {
			hold.release()
			client.Close()
			continue
		}
		l.relay.open.Add(1)
		l.wg.Add(1)
		go c.serve()
	}
}

// The kinds of refusal, for the counters.
const (
	refusedByACL   = iota // allow= or deny=
	refusedByCap          // maxconn= or the relay's cap
	refusedByProxy        // acceptproxy=1 and no valid PROXY header
)

// refused counts and reports a client closed at once, and why (refusal).
func (l *routeListener) refused(cfg *routeConfig, slot *statSlot, client, why string, kind int) {
	switch kind {
	case refusedByCap:
		slot.refusedCap.Add(1)
	case refusedByProxy:
		slot.refusedProxy.Add(1)
	default:
		slot.refusedACL.Add(1)
	}
	l.relay.emit(Event{Kind: ConnRefused, Time: time.Now(), Route: l.id,
		Client: client, Remote: cfg.RemoteAddr(), Err: errors.New(why)})
}

// dialFailed reports that no backend could be reached for a client
// accepted at start (the client has been closed); remote is the last
// backend tried. Lack of descriptors counts in the route's incident, one
// report per incident; anything else is a Failed event of its own.
func (l *routeListener) dialFailed(slot *statSlot, client, remote string, start time.Time, err error) {
	if isResourceError(err) {
		l.resourceError(err)
		return
	}
	slot.failed.Add(1)
	l.relay.emit(Event{Kind: ConnFailed, Time: time.Now(), Route: l.id, Client: client,
		Remote: remote, Duration: time.Since(start), Err: err})
}

// resourceError records an error of an incident (accepting failed, or a
// dial failed for lack of descriptors): the first one of an incident is
// reported, and the accept loop backs off, doubling, until recovered.
func (l *routeListener) resourceError(err error) {
	l.mu.Lock()
	first := l.incidentErrors == 0
	l.incidentErrors++
	l.lastIncidentError = time.Now()
	l.backoff = nextAcceptBackoff(l.backoff)
	l.mu.Unlock()
	if first {
		l.relay.emit(Event{Kind: AcceptFailed, Time: time.Now(), Route: l.id, Err: err})
	}
}

// recovered ends an incident, if there is one and it has been quiet for
// incidentQuiet, and reports it: a connection has been relayed again. While
// descriptors run short, some connections get through between errors: they
// do not end the incident.
func (l *routeListener) recovered() {
	l.mu.Lock()
	n := l.incidentErrors
	if n > 0 && time.Since(l.lastIncidentError) < incidentQuiet {
		l.mu.Unlock()
		return
	}
	l.incidentErrors, l.backoff = 0, 0
	l.mu.Unlock()
	if n > 0 {
		l.relay.emit(Event{Kind: AcceptRecovered, Time: time.Now(), Route: l.id, Failures: n})
	}
}

// incidentBackoff is how long the accept loop waits before its next accept.
func (l *routeListener) incidentBackoff() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.backoff
}

// refusal says why a newly accepted client is refused by the route's
// configuration cfg (access lists, the route's and the relay's connection
// caps), and the kind of refusal, or "" if it is not.
func (l *routeListener) refusal(cfg *routeConfig, addr netip.Addr) (why string, kind int) {
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

// closeListener stops the route accepting: when it returns, its listening
// sockets are closed and their ports free (closeSocks). It must not run in
// an engine's loop, nor under the Relay's lock.
func (l *routeListener) closeListener() {
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
	// held is the client's place under the per-client limits, given
	// back when the connection is done (clientlimits.go); often nil.
	held() *clientHold
}

// track registers c as active; it reports false once the route is closing.
func (l *routeListener) track(c trackedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

// connDone is called once per accepted connection, when it is over.
func (l *routeListener) connDone(c trackedConn) {
	c.held().release()
	l.relay.open.Add(-1)
	l.untrack(c)
	l.wg.Done()
}

// connClosed is connDone for a goroutine-relay connection that relayed
// sent and received bytes: they move from its open bytes to its route's
// counters in one step under the route's byte lock, so that Status counts
// them once, neither twice nor never.
func (l *routeListener) connClosed(c *relayConn, sent, received int64) {
	c.held().release()
	l.stats.bytesMu.Lock()
	slot := &l.stats.slots[goroutineSlot]
	slot.sent.Add(sent)
	slot.received.Add(received)
	l.untrack(c)
	l.stats.bytesMu.Unlock()
	l.relay.open.Add(-1)
	l.wg.Done()
}

func (l *routeListener) untrack(c trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	if l.closing && len(l.conns) == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
}

func (l *routeListener) active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// stop closes the listener, waits for the connections to end until ctx is
// done, then forces the rest closed and waits for every goroutine to return.
func (l *routeListener) stop(ctx context.Context) {
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
	l.cancel()
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
