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

// udpKey names a session: the client, and the route's port it sends to.
type udpKey struct {
	client netip.AddrPort
	port   int
}

// udpRoute is a running UDP route.
type udpRoute struct {
	routeCore

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
}

// udpSock is one listening socket of a UDP route.
type udpSock struct {
	port  int
	conn  *net.UDPConn
	drops socketDrops // the kernel's, on this socket
}

// udpSession is one client's session: its lifecycle (lifecycle.go), and
// its socket.
type udpSession struct {
	connLife
	u           *udpRoute
	dial        connAttempt // connLife.attempt while a backend is tried
	key         udpKey
	sock        *udpSock
	backendConn *net.UDPConn // connected to the backend
	last        atomic.Int64 // Unix nanoseconds of the last datagram either way
	dlog        *dataLog
	up, down    *dataLogDirection
	drops       socketDrops             // the kernel's, on backendConn
	pace        atomic.Pointer[udpPace] // rate= and connrate= (bandwidth.go); nil until a datagram meets a cap

	sentDatagrams, sentBytes         atomic.Int64
	receivedDatagrams, receivedBytes atomic.Int64
	// countMu orders a relayed datagram's byte count with end: once the
	// session has left its route (left), a datagram still in flight adds
	// its bytes to the route's counters itself, as end moved the others.
	countMu sync.Mutex
	left    bool

	closeOnce sync.Once

	// While the backend is being connected: dialing, and the client's
	// datagrams meanwhile; over once the session has ended, failed when
	// no backend could be connected.
	dialMu  sync.Mutex
	dialing bool
	queued  [][]byte
	over    bool
	failed  bool
}

// startUDP starts UDP route id on host's ports (Start); it returns nil
// when no port could be listened on, and the ports that failed.
func startUDP(r *Relay, id int, rt Route, host string, ports []int) (runningRoute, map[int]error) {
	u := &udpRoute{socks: make(map[int]*udpSock), sessions: make(map[udpKey]*udpSession),
		deniedLogged: make(map[netip.Addr]time.Time), stopJanitor: make(chan struct{})}
	u.init(r, id, true)
	u.cfg.Store(newRouteConfig(rt, newBackendPool(id, rt, r.pools[id], r.emit), ports[0]))
	failed, buf := u.openSocks(host, ports, rcvBufFor(rt))
	if len(u.socks) == 0 {
		u.stopDials()
		return nil, failed
	}
	if ports[0] == 0 {
		u.cfg.Store(newRouteConfig(rt, u.cfg.Load().pool, u.firstPort())) // port 0: the one the system chose
	}
	u.useBuf(buf)
	u.wg.Add(1)
	go u.janitor()
	return u, failed
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
	if !sess.u.stats.limits.passDatagram(&sess.pace, dirSent, len(data)) { // limits: over rate= or connrate=, dropped (bandwidth.go)
		return
	}
	if sess.up != nil {
		sess.up.packet(data)
	}
	n, err := sess.backendConn.Write(data)
	switch {
	case err == nil:
		sess.sentDatagrams.Add(1)
		sess.count(&sess.sentBytes, &sess.slot.sent, n)
	case errors.Is(err, syscall.ECONNREFUSED):
		sess.u.stats.udp.backendDrops.Add(2)
	default:
		sess.u.stats.udp.backendDrops.Add(1)
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
	case sess.over && sess.failed:
		// No backend could be connected: the datagram goes where the
		// ones it held went, not to a new session that would fail again.
		sess.u.dropHeld(1, sess.reason)
		return held
	case sess.over:
		return ended
	case !sess.dialing:
		return connected
	case len(sess.queued) < maxQueued:
		sess.queued = append(sess.queued, append([]byte(nil), data...))
	default:
		sess.u.stats.udp.queueDrops.Add(1)
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
	cfg, slot := u.cfg.Load(), &u.stats.slots[goroutineSlot]
	if why := cfg.admits(key.client.Addr()); why != "" {
		u.refuseQuietly(cfg, slot, key.client, why, "its datagrams are dropped", refusedByACL, u.shouldLogDenied(key.client.Addr()))
		return nil
	}
	hold, ok := u.admit(cfg, key.client) // limits: per client (clientlimits.go)
	if !ok {
		return nil
	}
	now := time.Now()
	sess := &udpSession{u: u, key: key, sock: s, dialing: true}
	sess.begin(&u.routeCore, cfg, slot, key.client, now, cfg.remoteOffset(s.port), hold, &sess.dial)
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
		u.refuseQuietly(cfg, slot, key.client, why, "new clients' datagrams are dropped", refusedByCap, report)
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
	go sess.run()
	return sess
}

// refuseQuietly counts a client's datagram refused (why), and reports it
// when report says so: a UDP route logs each client once a minute, as
// the line says (what, the datagrams' fate).
func (u *udpRoute) refuseQuietly(cfg *routeConfig, slot *statSlot, client netip.AddrPort, why, what string, kind int, report bool) {
	line := ""
	if report { // the line is made only when it is written: this is a flood's path
		line = fmt.Sprintf("%s (%s; logged once a minute)", why, what)
	}
	u.turnAway(cfg, slot, client.String(), line, kind, report)
}

// run connects the session to a backend, sends what the client sent
// meanwhile, and relays the backend's answers until the session ends. A
// session no backend could be reached for ends, reported as failed.
func (sess *udpSession) run() {
	u := sess.u
	remote, err := sess.dialBackend()
	if err != nil {
		sess.dialMu.Lock()
		sess.failed = true
		sess.dialMu.Unlock()
		sess.fail(err)
		if u.dials.Err() != nil {
			err = errStopped
		}
		sess.end(err)
		u.wg.Done()
		return
	}
	sess.connected(remote.RemoteAddr().String())
	sess.dialMu.Lock()
	if sess.over {
		sess.dialMu.Unlock()
		remote.Close()
		sess.abandoned()
		u.wg.Done()
		return
	}
	sess.backendConn = remote
	sess.openLog()
	sess.opened(sess.start, sess.dlog, "")
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
	if sess.dlog = sess.openDataLog(sess.start); sess.dlog != nil {
		sess.up = sess.dlog.datagrams(sess.client, sess.remote)
		sess.down = sess.dlog.datagrams(sess.remote, sess.client)
	}
}

// dialBackend opens a socket connected to a backend for a new session, as
// the lifecycle picks them; a backend that cannot be reached (its name
// does not resolve, no route to it) is left for the next one. A backend
// that does not answer is not a failure: UDP cannot tell.
func (sess *udpSession) dialBackend() (*net.UDPConn, error) {
	u := sess.u
	for {
		if _, err := sess.nextBackend(); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(u.dials, DefaultConnectTimeout)
		c, err := u.buf.Load().dial.DialContext(ctx, "udp", sess.remote)
		cancel()
		if err == nil {
			return c.(*net.UDPConn), nil
		}
		if err := sess.attemptFailed(err); err != nil {
			return nil, err
		}
	}
}

// readReplies relays the backend's datagrams to the client until the
// session ends.
func (sess *udpSession) readReplies() {
	defer sess.u.wg.Done()
	client := sess.key.client
	// An ICMP port unreachable the socket reports is a datagram the
	// backend's host refused.
	readDatagrams(sess.backendConn, &sess.drops, &sess.u.stats.udp.backendDrops, func(data []byte, _ netip.AddrPort) {
		sess.last.Store(time.Now().UnixNano())
		if !sess.u.stats.limits.passDatagram(&sess.pace, dirReceived, len(data)) { // limits: over rate= or connrate=, dropped (bandwidth.go)
			return
		}
		if sess.down != nil {
			sess.down.packet(data)
		}
		if n, err := sess.sock.conn.WriteToUDPAddrPort(data, client); err == nil {
			sess.receivedDatagrams.Add(1)
			sess.count(&sess.receivedBytes, &sess.slot.received, n)
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
	u := sess.u
	sess.dialMu.Lock()
	remote := sess.backendConn
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
		slot := sess.slot
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
		sess.dialMu.Lock()
		sess.over, sess.reason = true, reason
		opened := !sess.dialing
		held := len(sess.queued)
		sess.queued = nil
		sess.dialMu.Unlock()
		if !opened {
			sess.u.dropHeld(held, reason)
			return
		}
		sess.backendConn.Close()
		if sess.dlog != nil {
			if reason == errEvicted {
				// Evicted by the route's reader, which must not wait
				// for the log's queue to reach the disk.
				go sess.dlog.Close()
			} else {
				sess.dlog.Close()
			}
		}
		sess.closed(traffic{sent: sess.sentBytes.Load(), received: sess.receivedBytes.Load(),
			sentDatagrams: sess.sentDatagrams.Load(), receivedDatagrams: sess.receivedDatagrams.Load()})
	})
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
		u.relay.emit(Event{Kind: SessionsEvicting, Time: now, Route: u.id, Cap: max})
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
// stopped") at once, whatever ctx: a session's answers go out by its
// route's socket. It waits for the route's goroutines.
func (u *udpRoute) stop(context.Context) {
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
		u.retireSock(s)
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
		u.retireSock(s)
	}
	u.mu.Unlock()
	u.stats.bytesMu.Unlock()
	for _, s := range socks {
		s.conn.Close()
	}
}

// retireSock takes socket s out of the route: its drops move to the route's
// counters in the same step (under the route's byte lock and u.mu, both
// held), so that Status counts them once.
func (u *udpRoute) retireSock(s *udpSock) {
	if u.socks[s.port] == s {
		delete(u.socks, s.port)
		u.stats.udp.queueDrops.Add(s.drops.total())
	}
}

// live returns the route's live numbers: its sessions, their bytes, and
// the kernel's drops on its sockets and theirs.
func (u *udpRoute) live() (open, sent, received, drops int64) {
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

// rcvBuf is the receive buffer the route's sockets got.
func (u *udpRoute) rcvBuf() int { return u.buf.Load().granted }

func (u *udpRoute) core() *routeCore { return &u.routeCore }

// active is the route's sessions.
func (u *udpRoute) active() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.sessions)
}

// repaceOpen does nothing: a UDP session looks at its route's caps for
// each datagram (routeLimiter.passDatagram).
func (u *udpRoute) repaceOpen(bool) {}

// retire stops the route: its sessions cannot outlive its sockets, as
// their answers go out by them.
func (u *udpRoute) retire(done func()) (cut func()) {
	u.stop(context.Background())
	done()
	return nil
}

// awaitRetired has nothing to wait for: retire ended every session.
func (u *udpRoute) awaitRetired(context.Context) {}

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
