package main

// Routes that share a local port by server name (sni=): one listening
// socket per port, whose accept loop reads each client's ClientHello
// (clienthello.go), picks the route whose names match (a route without
// sni= on the port is the default), and hands the client to that route's
// goroutine relay with the ClientHello as its first bytes, relayed exactly
// as they came (after the PROXY header with proxy=). A route with tls=
// as well terminates with its own certificate instead.

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sniGroup is a local port shared by routes by server name.
type sniGroup struct {
	relay *Relay
	key   string // the group's address in Relay.sni
	sock  *listenSock

	mu      sync.Mutex
	members []*tcpRoute // in the order they joined
	closed  bool
	// reading are the clients whose ClientHello is being read: closing
	// the port closes them too.
	reading map[*net.TCPConn]struct{}
}

// sniNamesMatch reports whether a route's sni= names (canonical, comma-
// separated) match server name: a name itself, or "*.example.com" for one
// label more than example.com.
func sniNamesMatch(names, name string) bool {
	if name == "" {
		return false
	}
	for _, n := range strings.Split(names, ",") {
		if n == name {
			return true
		}
		if suffix, ok := strings.CutPrefix(n, "*"); ok {
			if label, found := strings.CutSuffix(name, suffix); found && label != "" && !strings.Contains(label, ".") {
				return true
			}
		}
	}
	return false
}

// pick returns the route for server name: the one whose names match, else
// the default, else nil.
func (g *sniGroup) pick(name string) *tcpRoute {
	g.mu.Lock()
	defer g.mu.Unlock()
	var def *tcpRoute
	for _, l := range g.members {
		names := l.cfg.Load().TLS.SNI
		if names == "" {
			def = l
			continue
		}
		if sniNamesMatch(names, name) {
			return l
		}
	}
	return def
}

// timeoutAndReporter returns how long a client has for its ClientHello
// (the longest handshake= of the routes) and the route that a client no
// route takes is counted and reported on (the first to join).
func (g *sniGroup) timeoutAndReporter() (time.Duration, *tcpRoute) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var d time.Duration
	for _, l := range g.members {
		d = max(d, l.cfg.Load().TLS.handshakeTimeout())
	}
	if len(g.members) == 0 {
		return defaultHandshake, nil
	}
	return d, g.members[0]
}

// startSNI starts route id, one of the routes sharing a local port by
// sni=: it joins the port's group, which listens first if it is the first
// route. r.mu is held.
func (r *Relay) startSNI(id int, rt Route) error {
	if rt.Ports > 1 {
		return errors.New("sni= applies to a single local port")
	}
	rtls, err := newRouteTLS(rt.TLS, r.tlsReporter(id))
	if err != nil {
		return err
	}
	g := r.sni[rt.ListenAddr]
	if g == nil {
		host, ports, err := listenPorts(rt)
		if err != nil {
			return err
		}
		s, err := openSock(host, ports[0], false)
		if err != nil {
			return err
		}
		g = &sniGroup{relay: r, sock: s, key: net.JoinHostPort(host, strconv.Itoa(s.port))}
		if r.sni == nil {
			r.sni = make(map[string]*sniGroup)
		}
		r.sni[g.key] = g
		go g.acceptLoop()
	} else {
		g.mu.Lock()
		if g.closed { // its last route is leaving: the port is not free yet
			g.mu.Unlock()
			return fmt.Errorf("listen on %s: the port's last route is stopping; try again", rt.ListenAddr)
		}
		for _, m := range g.members {
			if other := m.cfg.Load().TLS.SNI; other == rt.TLS.SNI || (other == "" && rt.TLS.SNI == "") {
				g.mu.Unlock()
				return fmt.Errorf("listen on %s: route %d routes the same server names (sni=%s)", rt.ListenAddr, m.id, other)
			}
		}
		g.mu.Unlock()
	}
	rt.ListenAddr = g.key
	l := &tcpRoute{socks: make(map[int]*listenSock), conns: make(map[trackedConn]struct{}), sni: g}
	l.init(r, id, false)
	l.cfg.Store(newRouteConfig(rt, newBackendPool(id, rt, r.pools[id], r.emit), g.sock.port).withTLS(rtls))
	g.mu.Lock()
	g.members = append(g.members, l)
	g.mu.Unlock()
	if r.routes == nil {
		r.routes = make(map[int]runningRoute)
	}
	r.routes[id] = l
	r.pools[id] = l.cfg.Load().pool
	l.cfg.Load().pool.startChecks()
	return nil
}

// startReading records a client whose ClientHello is read; false when
// the port is closing.
func (g *sniGroup) startReading(c *net.TCPConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	if g.reading == nil {
		g.reading = make(map[*net.TCPConn]struct{})
	}
	g.reading[c] = struct{}{}
	return true
}

func (g *sniGroup) doneReading(c *net.TCPConn) {
	g.mu.Lock()
	delete(g.reading, c)
	g.mu.Unlock()
}

// leaveSNI takes a stopping route out of its group; the last one out
// closes the port.
func (l *tcpRoute) leaveSNI() {
	g := l.sni
	if g == nil {
		return
	}
	g.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(m *tcpRoute) bool { return m == l })
	last := len(g.members) == 0 && !g.closed
	if last {
		g.closed = true
	}
	var reading []*net.TCPConn
	for c := range g.reading {
		reading = append(reading, c)
	}
	g.mu.Unlock()
	if !last {
		return
	}
	for _, c := range reading {
		c.Close()
	}
	r := g.relay
	r.mu.Lock()
	if r.sni[g.key] == g {
		delete(r.sni, g.key)
	}
	r.mu.Unlock()
	g.sock.ln.Close()
}

// acceptLoop accepts the port's clients until its socket is closed; each
// is routed in a goroutine of its own, since its ClientHello may be slow.
func (g *sniGroup) acceptLoop() {
	var backoff time.Duration
	for {
		client, err := g.sock.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: the routes' own accept loops back
			// off the same way.
			backoff = nextAcceptBackoff(backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go g.route(client)
	}
}

// route reads client's ClientHello and hands it to the route of its server
// name; a client no route takes is closed, and reported with the name.
func (g *sniGroup) route(client *net.TCPConn) {
	timeout, reporter := g.timeoutAndReporter()
	if reporter == nil {
		client.Close()
		return
	}
	if why := g.relay.atGlobalCap(); why != "" {
		// Before the ClientHello: at the cap, a client may not hold a
		// descriptor for the handshake timeout.
		client.SetLinger(0)
		client.Close()
		reporter.turnAway(reporter.cfg.Load(), &reporter.stats.slots[goroutineSlot], client.RemoteAddr().String(), why, refusedByCap, true)
		return
	}
	if !g.startReading(client) {
		client.Close()
		return
	}
	hello, name, err := readClientHello(client, timeout)
	g.doneReading(client)
	l := reporter
	if err == nil {
		if l = g.pick(name); l == nil {
			l = reporter
			err = fmt.Errorf("unknown server name %q", name)
			if name == "" {
				err = errors.New("no server name, and no route without sni= on the port")
			}
		}
	}
	cfg := l.cfg.Load()
	if err != nil {
		l.stats.tls.failed.Add(1)
		client.SetLinger(0)
		client.Close()
		l.relay.emit(Event{Kind: TLSFailed, Time: time.Now(), Route: l.id, Client: client.RemoteAddr().String(),
			Remote: cfg.RemoteAddr(), Err: err})
		return
	}
	c := l.accepted(client, cfg, 0)
	if c == nil {
		return
	}
	c.sniName, c.peeked = name, hello
	c.serve()
}

// sharedBySNI reports whether route id runs on a port shared by sni=.
func (r *Relay) sharedBySNI(id int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.routes[id].(*tcpRoute)
	return ok && l.sni != nil
}
