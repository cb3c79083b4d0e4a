package main

// UDP routes (proto=udp): a session per client address. A client's first
// datagram opens a socket connected to a backend (so only the backend's
// answers come back on it); the backend's answers go back to the client
// from the route's listening socket. Datagrams are relayed whole. A session
// ends after idle= without a datagram either way (60 s by default); at
// maxconn= sessions (10,000 by default) the least recently used one ends
// for a new client. Every socket asks for a receive buffer of rcvbuf=
// (udpbuf.go), and the datagrams that are not relayed are counted by
// reason (udpdrops.go).
//
//	route 53 10.0.0.2 53 proto=udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of UDP routes.
const (
	defaultUDPIdle     = 60 * time.Second
	defaultUDPSessions = 10000
	// maxDatagram is the largest UDP payload over IPv4.
	maxDatagram = 65507
	// deniedLogEvery bounds how often a client whose datagrams allow= or
	// deny= drop is logged.
	deniedLogEvery = time.Minute
	// evictionQuiet ends an incident of evictions (at the session cap):
	// the next eviction after that long is reported again.
	evictionQuiet = 10 * time.Second
)

// checkUDP refuses the options that do not apply to UDP routes, and
// those that apply only to them on TCP routes.
func (r RouteSpec) checkUDP() error {
	if r.Proto != "udp" {
		if r.RcvBuf != 0 {
			return fmt.Errorf("option rcvbuf= applies only to proto=udp routes")
		}
		return nil
	}
	for _, o := range []struct {
		set  bool
		name string
	}{{r.Proxy != "", "proxy="}, {r.AcceptProxy, "acceptproxy="}, {r.Connect != 0, "connect="},
		{r.Check != 0, "check="}, {r.Rise != 0, "rise="}, {r.Fall != 0, "fall="}} {
		if o.set {
			return fmt.Errorf("option %s does not apply to proto=udp routes", o.name)
		}
	}
	return nil
}

// udpKey names a session: the client, and the route's port it sends to.
type udpKey struct {
	client netip.AddrPort
	port   int
}

// udpRoute is a running UDP route.
type udpRoute struct {
	id    int
	relay *Relay
	cfg   atomic.Pointer[routeConfig]
	stats *routeStats

	mu       sync.Mutex
	socks    map[int]*udpSock // by port
	sessions map[udpKey]*udpSession
	closing  bool
	// Reports that must not flood the log: the last time each denied
	// client was logged; when the last eviction happened.
	deniedLogged map[netip.Addr]time.Time
	lastEviction time.Time
	// evictQueue: the sessions the next evictions take, oldest first
	// (udpevict.go).
	evictQueue []evictionCandidate
	// capLogged is when a client was last logged as refused at the
	// relay's global cap: once a minute at most, for the route.
	capLogged time.Time

	// buf is the receive buffer its sockets asked for and got, and the
	// dialer of its sessions, which gives theirs the same.
	buf atomic.Pointer[rcvBuf]

	stopJanitor chan struct{}
	wg          sync.WaitGroup // the sockets' readers, the janitor, the sessions' goroutines
	// dials is done when the route stops: a session still resolving its
	// backend's name gives up.
	dials     context.Context
	stopDials context.CancelFunc
}

// udpSock is one listening socket of a UDP route.
type udpSock struct {
	port  int
	conn  *net.UDPConn
	drops socketDrops // the kernel's, on this socket
}

// udpSession is one client's session.
type udpSession struct {
	route    *udpRoute
	cfg      *routeConfig
	key      udpKey
	sock     *udpSock
	backend  *backend
	remote   *net.UDPConn // connected to the backend
	remoteTo string       // the backend's address, ip:port
	start    time.Time
	last     atomic.Int64 // Unix nanoseconds of the last datagram either way
	dlog     *dataLog
	up, down *dataLogDirection
	drops    socketDrops // the kernel's, on remote
	// Limits (clientlimits.go, bandwidth.go): the client's place under
	// the per-client limits, and the pacers of rate= and connrate=; nil
	// on a route without them.
	hold *clientHold
	pace *udpPace

	sentDatagrams, sentBytes         atomic.Int64
	receivedDatagrams, receivedBytes atomic.Int64
	// countMu orders a relayed datagram's byte count with end: once the
	// session has left its route (left), a datagram still in flight adds
	// its bytes to the route's counters itself, as end moved the others.
	countMu sync.Mutex
	left    bool

	closeOnce sync.Once

	// While the backend is being connected: dialing, and the client's
	// datagrams meanwhile; closed once the session has ended.
	dialMu  sync.Mutex
	dialing bool
	queued  [][]byte
	closed  bool
}

// startUDP starts UDP route id on the ports of rt; like Start, it returns
// a *ListenError when some ports of a range failed, and runs on the
// others.
func (r *Relay) startUDP(id int, rt Route) error {
	host, ports, err := listenPorts(rt)
	if err != nil {
		return err
	}
	u := &udpRoute{id: id, relay: r, stats: r.statsFor(id), socks: make(map[int]*udpSock),
		sessions: make(map[udpKey]*udpSession), deniedLogged: make(map[netip.Addr]time.Time),
		stopJanitor: make(chan struct{})}
	u.dials, u.stopDials = context.WithCancel(context.Background())
	u.cfg.Store(newRouteConfig(rt, newBackendPool(id, rt, r.pools[id], r.emit), ports[0]))
	u.stats.limits.set(rt.Limits) // limits: the route's figures (clientlimits.go)
	failed, buf := u.openSocks(host, ports, rcvBufFor(rt))
	if len(u.socks) == 0 {
		u.stopDials()
		if len(ports) == 1 {
			return failed[ports[0]]
		}
		return &ListenError{Failed: failed}
	}
	if ports[0] == 0 {
		u.cfg.Store(newRouteConfig(rt, u.cfg.Load().pool, u.firstPort())) // port 0: the one the system chose
	}
	if r.udp == nil {
		r.udp = make(map[int]*udpRoute)
	}
	r.udp[id] = u
	r.pools[id] = u.cfg.Load().pool
	u.useBuf(buf)
	u.wg.Add(1)
	go u.janitor()
	if len(failed) > 0 {
		return &ListenError{Failed: failed}
	}
	return nil
}

// openSocks listens on the ports, each with a receive buffer of rcvbuf
// bytes, and starts reading each; it returns the ports that failed, and
// the buffer the others got.
func (u *udpRoute) openSocks(host string, ports []int, rcvbuf int) (map[int]error, *rcvBuf) {
	failed := map[int]error{}
	buf := &rcvBuf{}
	lc := net.ListenConfig{Control: rcvBufControl(rcvbuf, buf)}
	for _, port := range ports {
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		c, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			failed[port] = fmt.Errorf("listen on %s/udp: %w", addr, err)
			continue
		}
		s := &udpSock{port: c.LocalAddr().(*net.UDPAddr).Port, conn: c.(*net.UDPConn)}
		u.mu.Lock()
		u.socks[s.port] = s
		u.mu.Unlock()
		u.wg.Add(1)
		go u.readClients(s)
	}
	return failed, buf
}

// useBuf makes buf the buffer of the route's new sessions, and reports
// once, if the system granted less than it asked.
func (u *udpRoute) useBuf(buf *rcvBuf) {
	buf.dial = buf.dialer()
	u.buf.Store(buf)
	if why := buf.shortfall(); why != "" {
		u.relay.emit(Event{Kind: BufferCapped, Time: time.Now(), Route: u.id, Err: errors.New(why)})
	}
}

// firstPort is the route's lowest listening port.
func (u *udpRoute) firstPort() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	first := 0
	for p := range u.socks {
		if first == 0 || p < first {
			first = p
		}
	}
	return first
}

// readClients relays the datagrams clients send to socket s until it is
// closed.
func (u *udpRoute) readClients(s *udpSock) {
	defer u.wg.Done()
	readDatagrams(s.conn, &s.drops, nil, func(data []byte, from netip.AddrPort) {
		u.fromClient(s, from, data)
	})
}

// fromClient relays one client datagram: to its session, opened first if
// it has none (unless allow=/deny= or the relay's cap drop it). A session
// that ended just as the datagram came hands it to a new one.
func (u *udpRoute) fromClient(s *udpSock, client netip.AddrPort, data []byte) {
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	key := udpKey{client, s.port}
	for range 2 {
		u.mu.Lock()
		sess := u.sessions[key]
		u.mu.Unlock()
		if sess == nil {
			if sess = u.open(s, key); sess == nil {
				return
			}
		}
		sess.last.Store(time.Now().UnixNano())
		switch sess.queue(data) {
		case held:
			return // its backend is being connected: sent when it is
		case connected:
			sess.send(data)
			return
		}
	}
}

// send relays one client datagram to the session's backend. A write error
// loses it, as the network would: UDP has no retry. It is counted, with
// the earlier datagram that the backend's host refused when the error says
// so (ECONNREFUSED: an ICMP port unreachable came back for it, and the
// write, not the session's reader, reports it).
func (sess *udpSession) send(data []byte) {
	if !sess.pace.pass(dirSent, len(data)) { // limits: over rate= or connrate=, dropped (bandwidth.go)
		return
	}
	if sess.up != nil {
		sess.up.packet(data)
	}
	n, err := sess.remote.Write(data)
	switch {
	case err == nil:
		sess.sentDatagrams.Add(1)
		sess.count(&sess.sentBytes, &sess.route.stats.slots[goroutineSlot].sent, n)
	case errors.Is(err, syscall.ECONNREFUSED):
		sess.route.stats.udp.backendDrops.Add(2)
	default:
		sess.route.stats.udp.backendDrops.Add(1)
	}
}

// maxQueued bounds the datagrams a session keeps while its backend is
// being connected (a name being resolved).
const maxQueued = 64

// What queue did with a datagram.
const (
	held      = iota // kept (or dropped, over maxQueued) until the backend is connected
	connected        // nothing: the backend is connected, send it
	ended            // nothing: the session has ended
)

// queue keeps a copy of a datagram of a session whose backend is not
// connected yet (over maxQueued, it is dropped and counted).
func (sess *udpSession) queue(data []byte) int {
	sess.dialMu.Lock()
	defer sess.dialMu.Unlock()
	switch {
	case sess.closed:
		return ended
	case !sess.dialing:
		return connected
	case len(sess.queued) < maxQueued:
		sess.queued = append(sess.queued, append([]byte(nil), data...))
	default:
		sess.route.stats.udp.queueDrops.Add(1)
	}
	return held
}

// open opens the session of a new client, or drops its datagram (denied,
// or the relay has its global maximum of open connections, which sessions
// count in). The session's backend is connected by the session's own
// goroutine (run): a backend's name may take a while to resolve, and the
// socket's other clients must not wait for it. At the route's session cap,
// the least recently used session ends for it.
func (u *udpRoute) open(s *udpSock, key udpKey) *udpSession {
	cfg := u.cfg.Load()
	if why := cfg.admits(key.client.Addr()); why != "" {
		u.stats.slots[goroutineSlot].refusedACL.Add(1)
		if u.shouldLogDenied(key.client.Addr()) {
			u.relay.emit(Event{Kind: ConnRefused, Time: time.Now(), Route: u.id, Client: key.client.String(),
				Remote: cfg.RemoteAddr() + "/udp", Err: fmt.Errorf("%s (its datagrams are dropped; logged once a minute)", why)})
		}
		return nil
	}
	hold, ok := u.admit(cfg, key.client) // limits: per client (clientlimits.go)
	if !ok {
		return nil
	}
	now := time.Now()
	sess := &udpSession{route: u, cfg: cfg, key: key, sock: s, start: now, dialing: true, hold: hold, pace: u.stats.limits.udpPace()}
	sess.last.Store(now.UnixNano())
	var evicted *udpSession
	u.mu.Lock()
	if u.closing || u.socks[s.port] != s { // the route stops, or this port left it (update)
		u.mu.Unlock()
		hold.release()
		return nil
	}
	if max := sessionCap(cfg); len(u.sessions) >= max {
		evicted = u.leastRecent()
		u.reportEviction(max)
	} else if why := u.relay.atGlobalCap(); why != "" { // an eviction would have made room
		report := now.Sub(u.capLogged) >= deniedLogEvery
		if report {
			u.capLogged = now
		}
		u.mu.Unlock()
		hold.release()
		u.stats.slots[goroutineSlot].refusedCap.Add(1)
		if report {
			u.relay.emit(Event{Kind: ConnRefused, Time: now, Route: u.id, Client: key.client.String(),
				Remote: cfg.RemoteAddr() + "/udp", Err: fmt.Errorf("%s (new clients' datagrams are dropped; logged once a minute)", why)})
		}
		return nil
	} else {
		u.evictQueue = nil // below the cap: no need to hold on to ended sessions
	}
	u.sessions[key] = sess
	u.relay.open.Add(1)
	u.wg.Add(1)
	u.mu.Unlock()
	if evicted != nil {
		u.stats.udp.evicted.Add(1)
		evicted.end(errEvicted)
	}
	go sess.run(cfg.remoteOffset(s.port))
	return sess
}

// run connects the session to a backend, sends what the client sent
// meanwhile, and relays the backend's answers until the session ends. A
// session no backend could be reached for ends, reported as failed.
func (sess *udpSession) run(offset int) {
	u := sess.route
	remote, b, err := u.dialBackend(sess.cfg, sess.key.client.Addr(), offset)
	if err != nil {
		now := time.Now()
		if u.dials.Err() == nil { // not a stopping route's
			u.stats.slots[goroutineSlot].failed.Add(1)
			u.relay.emit(Event{Kind: ConnFailed, Time: now, Route: u.id, Client: sess.key.client.String(),
				Remote: sess.cfg.RemoteAddr() + "/udp", Err: err, Duration: now.Sub(sess.start)})
		} else {
			err = errStopped
		}
		sess.end(err)
		u.wg.Done()
		return
	}
	sess.dialMu.Lock()
	if sess.closed {
		sess.dialMu.Unlock()
		remote.Close()
		b.open.Add(-1)
		u.wg.Done()
		return
	}
	sess.backend, sess.remote, sess.remoteTo = b, remote, remote.RemoteAddr().String()
	sess.openLog()
	u.stats.slots[goroutineSlot].total.Add(1)
	u.relay.emit(Event{Kind: SessionOpened, Time: sess.start, Route: u.id, Client: sess.key.client.String(), Remote: sess.remoteTo, DataLog: sess.dlogName()})
	// Sent under the lock: a datagram that comes now waits, in order.
	for _, data := range sess.queued {
		sess.send(data)
	}
	sess.queued, sess.dialing = nil, false
	sess.dialMu.Unlock()
	sess.readReplies()
}

// openLog opens the session's data log, if the route has them.
func (sess *udpSession) openLog() {
	u, dir := sess.route, sess.cfg.DataLogDir
	if dir == "" {
		return
	}
	client := sess.key.client.String()
	dlog, err := u.relay.names.create(dir, sess.start)
	if err != nil {
		u.relay.emit(Event{Kind: DataLogFailed, Time: time.Now(), Route: u.id, Client: client, Remote: sess.remoteTo + "/udp", Err: err})
		return
	}
	sess.dlog = dlog
	dlog.onError = func(err error) {
		u.relay.emit(Event{Kind: DataLogFailed, Time: time.Now(), Route: u.id, Client: client, Remote: sess.remoteTo + "/udp", Err: err})
	}
	sess.up = dlog.datagrams(client, sess.remoteTo)
	sess.down = dlog.datagrams(sess.remoteTo, client)
}

// dialBackend opens a socket connected to a backend for a new session,
// picked by the route's balance mode; a backend that cannot be reached
// (its name does not resolve, no route to it) is left for the next one.
// A backend that does not answer is not a failure: UDP cannot tell.
func (u *udpRoute) dialBackend(cfg *routeConfig, client netip.Addr, offset int) (*net.UDPConn, *backend, error) {
	var tried uint64
	var err error
	attempts := 0
	for {
		i := cfg.pool.pick(client, tried)
		if i < 0 {
			return nil, nil, cfg.pool.failure(attempts, err)
		}
		tried |= 1 << i
		b := cfg.pool.entries[i].b
		var c net.Conn
		ctx, cancel := context.WithTimeout(u.dials, DefaultConnectTimeout)
		c, err = u.buf.Load().dial.DialContext(ctx, "udp", b.addrAt(offset))
		cancel()
		if err == nil {
			b.open.Add(1)
			cfg.pool.connected(b)
			return c.(*net.UDPConn), b, nil
		}
		attempts++
		if u.dials.Err() != nil || isResourceError(err) {
			return nil, nil, err // the route stops, or the system is out of descriptors: not the backend's fault
		}
		cfg.pool.connectFailed(b, err)
	}
}

// readReplies relays the backend's datagrams to the client until the
// session ends.
func (sess *udpSession) readReplies() {
	defer sess.route.wg.Done()
	client := sess.key.client
	// An ICMP port unreachable the socket reports is a datagram the
	// backend's host refused.
	readDatagrams(sess.remote, &sess.drops, &sess.route.stats.udp.backendDrops, func(data []byte, _ netip.AddrPort) {
		sess.last.Store(time.Now().UnixNano())
		if !sess.pace.pass(dirReceived, len(data)) { // limits: over rate= or connrate=, dropped (bandwidth.go)
			return
		}
		if sess.down != nil {
			sess.down.packet(data)
		}
		if n, err := sess.sock.conn.WriteToUDPAddrPort(data, client); err == nil {
			sess.receivedDatagrams.Add(1)
			sess.count(&sess.receivedBytes, &sess.route.stats.slots[goroutineSlot].received, n)
		}
	})
}

// count adds n relayed bytes to the session's counter, and to the route's
// as well once the session has left the route (end moved its bytes there
// already: these came after).
func (sess *udpSession) count(session, route *atomic.Int64, n int) {
	sess.countMu.Lock()
	session.Add(int64(n))
	if sess.left {
		route.Add(int64(n))
	}
	sess.countMu.Unlock()
}

// Close reasons of UDP sessions.
var (
	errUDPIdle = errors.New("idle")
	errEvicted = errors.New("evicted")
)

// end ends the session: it leaves its route's table (and the relay's
// open connections), and closes.
func (sess *udpSession) end(reason error) {
	u := sess.route
	sess.dialMu.Lock()
	remote := sess.remote
	sess.dialMu.Unlock()
	if remote != nil {
		sess.drops.lookUp(remote) // the socket's last drops, which no datagram has brought
	}
	// Its bytes and drops move from the open sessions' to the route's
	// counters in one step under the route's byte lock: Status counts them
	// once.
	u.stats.bytesMu.Lock()
	u.mu.Lock()
	removed := u.sessions[sess.key] == sess
	if removed {
		delete(u.sessions, sess.key)
	}
	u.mu.Unlock()
	if removed {
		slot := &u.stats.slots[goroutineSlot]
		sess.countMu.Lock()
		sess.left = true
		slot.sent.Add(sess.sentBytes.Load())
		slot.received.Add(sess.receivedBytes.Load())
		sess.countMu.Unlock()
		u.stats.udp.queueDrops.Add(sess.drops.total())
	}
	u.stats.bytesMu.Unlock()
	if removed {
		u.relay.open.Add(-1)
		sess.hold.release()
	}
	sess.close(reason)
}

// close closes the session's socket (its reader returns) and reports it,
// once (end has counted its bytes). A session whose backend is still
// being connected only says so (run cleans up).
func (sess *udpSession) close(reason error) {
	sess.closeOnce.Do(func() {
		u := sess.route
		sess.dialMu.Lock()
		sess.closed = true
		opened := !sess.dialing
		held := len(sess.queued)
		sess.queued = nil
		sess.dialMu.Unlock()
		if !opened {
			u.dropHeld(held, reason)
			return
		}
		sess.remote.Close()
		if sess.dlog != nil {
			if reason == errEvicted {
				// Evicted by the route's reader, which must not wait
				// for the log's queue to reach the disk.
				go sess.dlog.Close()
			} else {
				sess.dlog.Close()
			}
		}
		sess.backend.open.Add(-1)
		u.relay.emit(Event{Kind: SessionClosed, Time: time.Now(), Route: u.id, Client: sess.key.client.String(), Remote: sess.remoteTo,
			Sent: sess.sentBytes.Load(), Received: sess.receivedBytes.Load(), Duration: time.Since(sess.start), Err: reason,
			SentDatagrams: sess.sentDatagrams.Load(), ReceivedDatagrams: sess.receivedDatagrams.Load()})
	})
}

func (sess *udpSession) dlogName() string {
	if sess.dlog == nil {
		return ""
	}
	return sess.dlog.name
}

// sessionCap is the route's session cap: maxconn=, or the UDP default.
func sessionCap(cfg *routeConfig) int {
	if cfg.MaxConn > 0 {
		return cfg.MaxConn
	}
	return defaultUDPSessions
}

// idleTimeout is the route's session idle timeout: idle=, or the UDP
// default.
func idleTimeout(cfg *routeConfig) time.Duration {
	if cfg.IdleTimeout > 0 {
		return cfg.IdleTimeout
	}
	return defaultUDPIdle
}

// reportEviction reports the first eviction of an incident (evictions
// within evictionQuiet of each other). u.mu is held.
func (u *udpRoute) reportEviction(max int) {
	now := time.Now()
	first := now.Sub(u.lastEviction) >= evictionQuiet
	u.lastEviction = now
	if first {
		u.relay.emit(Event{Kind: SessionsEvicting, Time: now, Route: u.id, Failures: max})
	}
}

// shouldLogDenied reports whether a denied client's datagram is to be
// logged: once per client per deniedLogEvery.
func (u *udpRoute) shouldLogDenied(client netip.Addr) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if last, ok := u.deniedLogged[client]; ok && now.Sub(last) < deniedLogEvery {
		return false
	}
	if len(u.deniedLogged) >= 10000 {
		// A flood from many addresses: forget them all rather than grow
		// (or scan) without end; each is logged once more at most.
		clear(u.deniedLogged)
	}
	u.deniedLogged[client] = now
	return true
}

// janitor ends the sessions that have been idle for the route's idle
// timeout, until the route stops.
func (u *udpRoute) janitor() {
	defer u.wg.Done()
	for {
		idle := idleTimeout(u.cfg.Load())
		wait := min(max(idle/4, 10*time.Millisecond), time.Second)
		select {
		case <-u.stopJanitor:
			return
		case <-time.After(wait):
		}
		now := time.Now().UnixNano()
		var expired []*udpSession
		u.mu.Lock()
		for _, s := range u.sessions {
			if time.Duration(now-s.last.Load()) >= idleTimeout(s.cfg) {
				expired = append(expired, s)
			}
		}
		u.mu.Unlock()
		for _, s := range expired {
			s.end(errUDPIdle)
		}
	}
}

// stop closes the route's sockets and ends every session ("relay
// stopped"), and waits for its goroutines.
func (u *udpRoute) stop() {
	u.mu.Lock()
	if u.closing {
		u.mu.Unlock()
		return
	}
	u.closing = true
	socks := make([]*udpSock, 0, len(u.socks))
	for _, s := range u.socks {
		socks = append(socks, s)
	}
	sessions := make([]*udpSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		sessions = append(sessions, s)
	}
	u.mu.Unlock()
	u.stopDials()
	close(u.stopJanitor)
	u.closeSocks(socks)
	for _, s := range sessions {
		s.end(errStopped)
	}
	u.wg.Wait()
	u.cfg.Load().pool.stop()
}

// update gives the route a new configuration: new sessions use it; a
// range's ports that changed open or close (sessions of a port that closes
// end: their answers would have no way back). It reports false, changing
// nothing, if the route would be left with no socket; and the ports that
// failed to open.
func (u *udpRoute) update(rt Route, host string, ports []int, pool *backendPool) (bool, map[int]error) {
	u.mu.Lock()
	gone, missing := portChanges(u.socks, ports)
	socks := make([]*udpSock, 0, len(gone))
	for _, port := range gone {
		socks = append(socks, u.socks[port])
	}
	u.mu.Unlock()
	for _, s := range socks {
		s.drops.lookUp(s.conn) // their last drops, before they close
	}
	old, asked := u.buf.Load(), rcvBufFor(rt)
	failed, buf := u.openSocks(host, missing, asked)
	u.stats.bytesMu.Lock()
	u.mu.Lock()
	if len(u.socks) == len(gone) {
		u.mu.Unlock()
		u.stats.bytesMu.Unlock()
		return false, nil
	}
	u.cfg.Store(newRouteConfig(rt, pool, ports[0]))
	goneSet := make(map[int]bool, len(gone))
	for _, s := range socks {
		goneSet[s.port] = true
		u.retire(s)
	}
	var orphans []*udpSession
	for _, sess := range u.sessions {
		if goneSet[sess.sock.port] {
			orphans = append(orphans, sess)
		}
	}
	kept := make([]*udpSock, 0, len(u.socks))
	for _, s := range u.socks {
		kept = append(kept, s)
	}
	u.mu.Unlock()
	u.stats.bytesMu.Unlock()
	for _, s := range socks {
		s.conn.Close()
	}
	for _, s := range orphans {
		s.end(errStopped)
	}
	switch {
	case asked != old.asked: // rcvbuf= changed: every socket gets the new size
		u.useBuf(resizeSocks(kept, asked))
	case len(missing) > len(failed) && buf.granted < old.granted: // a new port got less
		u.useBuf(buf)
	}
	return true, failed
}

// resizeSocks gives the sockets a receive buffer of asked bytes, and
// returns what they got.
func resizeSocks(socks []*udpSock, asked int) *rcvBuf {
	buf := &rcvBuf{}
	control := rcvBufControl(asked, buf)
	for _, s := range socks {
		if raw, err := s.conn.SyscallConn(); err == nil {
			control("udp", "", raw)
		}
	}
	return buf
}

// closeSocks takes sockets out of the route and closes them.
func (u *udpRoute) closeSocks(socks []*udpSock) {
	for _, s := range socks {
		s.drops.lookUp(s.conn) // their last drops, before they close
	}
	u.stats.bytesMu.Lock()
	u.mu.Lock()
	for _, s := range socks {
		u.retire(s)
	}
	u.mu.Unlock()
	u.stats.bytesMu.Unlock()
	for _, s := range socks {
		s.conn.Close()
	}
}

// retire takes socket s out of the route: its drops move to the route's
// counters in the same step (under the route's byte lock and u.mu, both
// held), so that Status counts them once.
func (u *udpRoute) retire(s *udpSock) {
	if u.socks[s.port] == s {
		delete(u.socks, s.port)
		u.stats.udp.queueDrops.Add(s.drops.total())
	}
}

// status returns the route's live numbers: its sessions, their bytes, and
// the kernel's drops on its sockets and theirs.
func (u *udpRoute) status() (open, sent, received, drops int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.sessions {
		open++
		sent += s.sentBytes.Load()
		received += s.receivedBytes.Load()
		drops += s.drops.total()
	}
	for _, s := range u.socks {
		drops += s.drops.total()
	}
	return open, sent, received, drops
}

// granted is the receive buffer the route's sockets got.
func (u *udpRoute) granted() int { return u.buf.Load().granted }

// updateUDP is Update for a UDP route. r.mu is held.
func (r *Relay) updateUDP(u *udpRoute, rt Route) (bool, error) {
	old := u.cfg.Load()
	host, ports, ok := updatedPorts(old, rt)
	if !ok || rt.Proto != "udp" {
		return false, nil
	}
	rt.ListenAddr = net.JoinHostPort(host, fmt.Sprint(ports[0]))
	pool := newBackendPool(u.id, rt, old.pool, r.emit)
	ok, failed := u.update(rt, host, ports, pool)
	if !ok {
		return false, nil
	}
	old.pool.stop()
	r.pools[u.id] = pool
	u.stats.limits.set(rt.Limits) // limits: open sessions go on under the new figures
	if len(failed) > 0 {
		return true, &ListenError{Failed: failed}
	}
	return true, nil
}

// firstAddr is the address of the route's lowest port.
func (u *udpRoute) firstAddr() net.Addr {
	first := u.firstPort()
	u.mu.Lock()
	defer u.mu.Unlock()
	if s := u.socks[first]; s != nil {
		return s.conn.LocalAddr()
	}
	return nil
}
