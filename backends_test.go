package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackendOptions: the backend options' text forms, their errors, and
// the route line that shows them.
func TestBackendOptions(t *testing.T) {
	good := []specForm{
		{"80 web1 8080 also=web2:8080,web3:8080 backup=web9:8080 balance=leastconn check=2s",
			"80 web1 8080 also=web2:8080,web3:8080 backup=web9:8080 balance=leastconn check=2s",
			"Route 3 : From local port 80 to IP web1 port 8080, also web2:8080, web3:8080, backup web9:8080 (leastconn, check 2s)"},
		{"80 10.0.0.1 80 also=[fd00::5]:8080,10.0.0.2:80 rise=5 fall=1 maxconn=10",
			"80 10.0.0.1 80 also=[fd00::5]:8080,10.0.0.2:80 rise=5 fall=1 maxconn=10",
			"Route 3 : From local port 80 to IP 10.0.0.1 port 80, also [fd00::5]:8080, 10.0.0.2:80 (roundrobin, rise 5, fall 1, maxconn=10)"},
		{"80 web1 80 check=1m30s", "80 web1 80 check=1m30s", "Route 3 : From local port 80 to IP web1 port 80 (check 1m30s)"},
		{"80 web1 80 balance=first also=web2:80", "80 web1 80 also=web2:80 balance=first", "Route 3 : From local port 80 to IP web1 port 80, also web2:80 (first)"},
	}
	bad := []specError{
		{"80 web1 80 also=", "invalid also=: empty list"},
		{"80 web1 80 also=web2", `invalid also=web2: "web2" is not HOST:PORT`},
		{"80 web1 80 also=web2:80,,web3:80", `invalid also=web2:80,,web3:80: "" is not HOST:PORT`},
		{"80 web1 80 also=web2:0", `invalid also=web2:0: "web2:0": invalid port "0": must be 1-65535`},
		{"80 web1 80 also=fd00::5:80", `invalid also=fd00::5:80: "fd00::5:80" is not HOST:PORT`},
		{"80 web1 80 backup=bad_host!:80", `invalid backup=bad_host!:80: "bad_host!:80": invalid remote host`},
		{"80 web1 80 also=web1:80", "duplicate backend web1:80"},
		{"80 web1 80 also=web2:80 backup=WEB2:80", "duplicate backend WEB2:80"},
		{"80 web1 80 balance=random", "invalid balance=random: want roundrobin, leastconn, source or first"},
		{"80 web1 80 rise=0", "invalid rise=0: want a number of checks, 1 to 1000"},
		{"80 web1 80 fall=x", "invalid fall=x"},
		{"80 web1 80 check=50ms", "invalid check=50ms: want an interval of 100ms or more"},
		{"80 web1 80 check=0", "invalid check=0"},
		{"80 web1 80 also=a:1 also=b:1", "option also= given twice"},
	}
	checkSpecForms(t, good, bad)
	var many []string
	for i := range maxBackends {
		many = append(many, "10.0.0.1:"+strconv.Itoa(i+1))
	}
	if _, err := ParseRouteSpec("80 web 80 also=" + strings.Join(many, ",")); err == nil || !strings.Contains(err.Error(), "too many backends (65)") {
		t.Errorf("65 backends: %v", err)
	}
}

// testBackend is a server behind a route that says its name when a client
// connects, then echoes; it can be killed and brought back on its port.
type testBackend struct {
	t        *testing.T
	name     string
	port     int
	accepted atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// newTestBackend starts a named backend on a free loopback port.
func newTestBackend(t *testing.T, name string) *testBackend {
	b := &testBackend{t: t, name: name, conns: map[net.Conn]bool{}}
	ln := newLocalListener(t)
	b.port = portOf(ln.Addr())
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *testBackend) addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

func (b *testBackend) serve(ln net.Listener) {
	b.mu.Lock()
	b.ln = ln
	b.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			go func() {
				defer func() {
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
					c.Close()
				}()
				if _, err := io.WriteString(c, b.name+"\n"); err != nil {
					return
				}
				io.Copy(c, c)
			}()
		}
	}()
}

// kill closes the listener and resets every open connection.
func (b *testBackend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	for c := range b.conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// revive listens on the backend's port again.
func (b *testBackend) revive() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", b.addr()); err == nil {
			b.serve(ln)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("revive %s on %s: %v", b.name, b.addr(), err)
}

// open returns the connections the backend has open.
func (b *testBackend) open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// backendConn is a client connection through the relay that has read the
// name of the backend it reached.
type backendConn struct {
	*net.TCPConn
	backend string
	r       *bufio.Reader
}

// dialBackend connects to addr (from src, when not empty) and reads the
// backend's name.
func dialBackend(addr, src string) (*backendConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read the backend's name: %w", err)
	}
	c.SetDeadline(time.Time{})
	return &backendConn{TCPConn: c.(*net.TCPConn), backend: strings.TrimSpace(name), r: r}, nil
}

// whichBackend makes one connection to addr and says which backend took it.
func whichBackend(addr, src string) (string, error) {
	c, err := dialBackend(addr, src)
	if err != nil {
		return "", err
	}
	c.Close()
	return c.backend, nil
}

// startBackendRoute starts route 0 of a new relay from a route's text
// form, given after "LOCALPORT" (the relay listens on 127.0.0.1:0), on
// the relay kind, and records its events. It returns the relay's address.
func startBackendRoute(t *testing.T, kind relayKind, text string) (*Relay, string, *eventRecorder) {
	t.Helper()
	return startRouteOn(t, kind, "127.0.0.1:0", text)
}

// startRouteOn is startBackendRoute listening on listen.
func startRouteOn(t *testing.T, kind relayKind, listen, text string) (*Relay, string, *eventRecorder) {
	t.Helper()
	spec, err := ParseRouteSpec("1 " + text)
	if err != nil {
		t.Fatal(err)
	}
	rt := spec.Route()
	rt.ListenAddr = listen
	rec := &eventRecorder{}
	r := kind.newRelay(rec.record)
	if err := r.Start(0, rt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r, r.Addr(0).String(), rec
}

// countBackends makes n connections, workers at a time, and counts which
// backend took each; a failed connection is an error.
func countBackends(addr string, n, workers int) (map[string]int, error) {
	var mu sync.Mutex
	counts := map[string]int{}
	var firstErr error
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				name, err := whichBackend(addr, "")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				counts[name]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts, firstErr
}

// TestRoundRobinSpreads: 3,000 connections over 3 backends, each within 5%
// of a third.
func TestRoundRobinSpreads(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
		_, addr, _ := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s,%s", a.port, b.addr(), c.addr()))
		total := 3000
		if runtime.GOOS == "windows" {
			total = 600 // a connection costs 5 ms under wine
		}
		counts, err := countBackends(addr, total, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"A", "B", "C"} {
			if n := counts[name]; n < total/3*95/100 || n > total/3*105/100 {
				t.Errorf("backend %s took %d of %d connections; want a third within 5%% (%v)", name, n, total, counts)
			}
		}
	})
}

// TestLeastConnAvoidsBusyBackend: a backend that holds long connections
// gets no new clients until the others have as many.
func TestLeastConnAvoidsBusyBackend(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
		_, addr, _ := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s balance=leastconn", a.port, b.addr()))
		var held []*backendConn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		// Six long connections spread three and three; the three on B end.
		for range 6 {
			c, err := dialBackend(addr, "")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		onA := 0
		for _, c := range held {
			if c.backend == "B" {
				c.Close()
			} else {
				onA++
			}
		}
		if onA != 3 {
			t.Fatalf("6 connections put %d on A; want 3", onA)
		}
		if !eventually(5*time.Second, func() bool { return b.open() == 0 }) {
			t.Fatal("B's connections did not end")
		}
		// A holds three: the next three clients all go to B.
		for i := range 3 {
			c, err := dialBackend(addr, "")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			if c.backend != "B" {
				t.Errorf("new client %d went to %s while A held %d connections and B %d; want B", i, c.backend, 3, i)
			}
		}
	})
}

// TestSourceKeepsClients: balance=source keeps each client on its backend,
// and when one backend dies only its own clients move.
func TestSourceKeepsClients(t *testing.T) {
	needLoopbackAliases(t)
	forRelays(t, func(t *testing.T, kind relayKind) {
		backends := []*testBackend{newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")}
		_, addr, _ := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s,%s balance=source", backends[0].port, backends[1].addr(), backends[2].addr()))
		clients := make([]string, 40)
		before := map[string]string{}
		for i := range clients {
			clients[i] = fmt.Sprintf("127.0.%d.%d", 1+i/200, 2+i%200)
			for range 3 {
				name, err := whichBackend(addr, clients[i])
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := before[clients[i]]; ok && prev != name {
					t.Fatalf("client %s went to %s, then %s", clients[i], prev, name)
				}
				before[clients[i]] = name
			}
		}
		used := map[string]int{}
		for _, name := range before {
			used[name]++
		}
		if len(used) != 3 {
			t.Fatalf("40 clients used backends %v; want all 3", used)
		}
		backends[1].kill()
		for _, c := range clients {
			for range 2 {
				name, err := whichBackend(addr, c)
				if err != nil {
					t.Fatalf("client %s after B died: %v", c, err)
				}
				switch {
				case name == "B":
					t.Errorf("client %s reached dead B", c)
				case before[c] != "B" && name != before[c]:
					t.Errorf("client %s moved from %s to %s though %s is alive", c, before[c], name, before[c])
				}
			}
		}
	})
}

// TestFirstSticksUntilItDies: balance=first sends everything to the first
// backend, to the second while it is down, and back once checks see it up.
func TestFirstSticksUntilItDies(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
		_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s balance=first check=100ms rise=2 fall=2", a.port, b.addr()))
		for range 20 {
			if name, err := whichBackend(addr, ""); err != nil || name != "A" {
				t.Fatalf("with A up: %s, %v; want A", name, err)
			}
		}
		a.kill()
		for range 20 {
			if name, err := whichBackend(addr, ""); err != nil || name != "B" {
				t.Fatalf("with A dead: %s, %v; want B", name, err)
			}
		}
		if !eventually(5*time.Second, func() bool { return rec.count(BackendDown, "") == 1 }) {
			t.Fatalf("no down event for A: %v", rec.events)
		}
		a.revive()
		if !eventually(5*time.Second, func() bool { return rec.count(BackendUp, "") == 1 }) {
			t.Fatalf("no up event for A: %v", rec.events)
		}
		if name, err := whichBackend(addr, ""); err != nil || name != "A" {
			t.Fatalf("with A back: %s, %v; want A", name, err)
		}
	})
}

// TestBackendDiesUnderLoad: while clients keep connecting, a backend dies:
// no new client fails (retry), only connections it held are cut; fall
// checks later it is down, and rise checks after it returns it is up and
// takes clients again.
func TestBackendDiesUnderLoad(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
		const interval, fall, rise = 200 * time.Millisecond, 3, 2
		_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s,%s check=%v fall=%d rise=%d", a.port, b.addr(), c.addr(), interval, fall, rise))
		stop := make(chan struct{})
		var connectFailures, cutOnB, cutElsewhere atomic.Int64
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					conn, err := dialBackend(addr, "")
					if err != nil {
						connectFailures.Add(1)
						continue
					}
					// A short exchange; a cut here is only allowed on B.
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					_, werr := conn.Write([]byte("ping\n"))
					line, rerr := conn.r.ReadString('\n')
					if werr != nil || rerr != nil || line != "ping\n" {
						if conn.backend == "B" {
							cutOnB.Add(1)
						} else {
							cutElsewhere.Add(1)
						}
					}
					conn.Close()
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		killed := time.Now()
		b.kill()
		if !eventually(10*time.Second, func() bool { return rec.count(BackendDown, "") == 1 }) {
			t.Fatalf("B not marked down: %v", rec.events)
		}
		if took := time.Since(killed); took > 2*fall*interval+time.Second {
			t.Errorf("B marked down after %v; want about %v", took, fall*interval)
		}
		time.Sleep(300 * time.Millisecond)
		acceptedWhileDown := b.accepted.Load()
		b.revive()
		revived := time.Now()
		if !eventually(10*time.Second, func() bool { return rec.count(BackendUp, "") == 1 }) {
			t.Fatalf("B not marked up again: %v", rec.events)
		}
		if took := time.Since(revived); took > 2*rise*interval+time.Second {
			t.Errorf("B marked up after %v; want about %v", took, rise*interval)
		}
		if !eventually(5*time.Second, func() bool { return b.accepted.Load() > acceptedWhileDown+rise+5 }) {
			t.Errorf("B takes no clients after it is up again")
		}
		close(stop)
		wg.Wait()
		// A client fails only if the relay had connected it to B when B
		// died (it was in B's accept queue, say): no client is refused
		// for want of a backend.
		if n := rec.count(ConnFailed, ""); n > 0 {
			t.Errorf("%d clients failed while a backend died; want none", n)
		}
		if n, toB := connectFailures.Load(), rec.countTo(ConnOpened, b.addr()); n > toB {
			t.Errorf("%d clients failed while a backend died, more than the %d relayed to it", n, toB)
		}
		if n := cutElsewhere.Load(); n > 0 {
			t.Errorf("%d connections to A or C were cut; want none", n)
		}
		t.Logf("connections on B cut when it died: %d", cutOnB.Load())
		down := rec.first(BackendDown)
		if down.Remote != b.addr() || down.Checks != fall || !regexp.MustCompile(`of route 0 is down: `+refusedRE+` \(3 failed checks\)$`).MatchString(down.Message()) {
			t.Errorf("down event: %q", down.Message())
		}
		if up := rec.first(BackendUp); up.Remote != b.addr() || up.Message() != "Backend "+b.addr()+" of route 0 is up (2 good checks)" {
			t.Errorf("up event: %q", up.Message())
		}
	})
}

// countTo counts the events of a kind whose remote side is remote.
func (r *eventRecorder) countTo(kind EventKind, remote string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, e := range r.events {
		if e.Kind == kind && e.Remote == remote {
			n++
		}
	}
	return n
}

// refusedRE matches the reason of a connect refused (or reset while the
// server's listener closes) in the system's words: Linux says "connect:
// connection refused", Windows "connectex: No connection could be made
// ..." (wine: "connectex: Connection refused.").
const refusedRE = `connect(ex)?: ([Cc]onnection (refused|reset by peer)|No connection could be made[^(]*)\.?`

// first returns the first event of a kind.
func (r *eventRecorder) first(kind EventKind) Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == kind {
			return e
		}
	}
	return Event{}
}

// TestBackupsOnlyWhenAllDown: backups take no client while a primary is
// up, all of them when every primary is down, and give them back.
func TestBackupsOnlyWhenAllDown(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b, spare := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "S")
		_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s backup=%s check=100ms fall=1 rise=1", a.port, b.addr(), spare.addr()))
		counts, err := countBackends(addr, 100, 4)
		if err != nil || counts["S"] != 0 || counts["A"] != 50 || counts["B"] != 50 {
			t.Fatalf("with both primaries up: %v, %v; want A and B 50 each", counts, err)
		}
		a.kill()
		counts, err = countBackends(addr, 50, 4)
		if err != nil || counts["B"] != 50 {
			t.Fatalf("with A dead: %v, %v; want all on B\n%v", counts, err, rec.events)
		}
		b.kill()
		counts, err = countBackends(addr, 50, 4)
		if err != nil || counts["S"] != 50 {
			t.Fatalf("with A and B dead: %v, %v; want all on the backup", counts, err)
		}
		a.revive()
		if !eventually(5*time.Second, func() bool { return rec.count(BackendUp, "") >= 1 }) {
			t.Fatal("A not seen up again")
		}
		counts, err = countBackends(addr, 50, 4)
		if err != nil || counts["A"] != 50 {
			t.Fatalf("with A back: %v, %v; want all on A", counts, err)
		}
	})
}

// TestAllBackendsDown: with every backend marked down, connections still
// try them all (a check can be wrong), and a client fails only when none
// answers.
func TestAllBackendsDown(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
		_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d backup=%s fall=1", a.port, b.addr()))
		a.kill()
		b.kill()
		if _, err := whichBackend(addr, ""); err == nil {
			t.Fatal("a connection succeeded with every backend dead")
		}
		if !eventually(5*time.Second, func() bool {
			return rec.count(BackendDown, "") == 2 && rec.count(ConnFailed, "no backend answered (2 tried)") == 1
		}) {
			t.Fatalf("events: %v", rec.events)
		}
		b.revive() // down as far as the relay knows: tried anyway
		if name, err := whichBackend(addr, ""); err != nil || name != "B" {
			t.Fatalf("with only the backup back: %s, %v; want B", name, err)
		}
	})
}

// TestRetryDeliversEarlyBytes: a client that speaks first, before its
// first backend refused, is relayed to the second backend with those bytes.
func TestRetryDeliversEarlyBytes(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		dead := freePort(t)
		ln := newLocalListener(t)
		serveEach(ln, echo)
		_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=127.0.0.1:%d balance=first", dead, portOf(ln.Addr())))
		c := dialTCP(t, addr)
		defer c.Close()
		msg := []byte("EHLO early.example\r\n")
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != string(msg) {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
		if n := rec.count(ConnFailed, ""); n != 0 {
			t.Errorf("%d Failed events; want none: the second backend answered", n)
		}
	})
}

// TestUpdateKeepsConnectionsAndHealth: Relay.Update changes a route's
// backends while a connection is open: the connection goes on with its
// backend, new ones go to the new set, and a backend both sets share keeps
// its health.
func TestUpdateKeepsConnectionsAndHealth(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
		dead := freePort(t)
		r, addr, _ := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=127.0.0.1:%d balance=first fall=1", a.port, dead))
		held, err := dialBackend(addr, "")
		if err != nil || held.backend != "A" {
			t.Fatalf("first connection: %v, %v", held, err)
		}
		defer func() { held.Close() }()
		a.kill()
		a.revive() // A's open connection is gone; A is up again
		held.Close()
		held, err = dialBackend(addr, "")
		if err != nil || held.backend != "A" {
			t.Fatalf("connection before the update: %v, %v", held, err)
		}
		// Mark the dead backend down: the connection that tries it first.
		pool := r.routes[0].core().cfg.Load().pool
		pool.connectFailed(pool.entries[1].b, errors.New("test: refused"))
		if pool.entries[1].b.up.Load() {
			t.Fatal("the dead backend is not down")
		}

		spec, err := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d also=127.0.0.1:%d,%s balance=first", b.port, dead, c.addr()))
		if err != nil {
			t.Fatal(err)
		}
		rt := spec.Route()
		rt.ListenAddr = r.routes[0].core().cfg.Load().ListenAddr
		rt.DataLogDir = r.routes[0].core().cfg.Load().DataLogDir
		if ok, err := r.Update(0, rt); !ok || err != nil {
			t.Fatal("Update refused a change of backends")
		}
		newPool := r.routes[0].core().cfg.Load().pool
		if newPool.entries[1].b != pool.entries[1].b || newPool.entries[1].b.up.Load() {
			t.Error("the backend both configurations share lost its state")
		}
		if r.Addr(0).String() != addr {
			t.Errorf("the route listens on %s after the update; want %s", r.Addr(0), addr)
		}
		for range 5 {
			if name, err := whichBackend(addr, ""); err != nil || name != "B" {
				t.Fatalf("after the update: %s, %v; want B", name, err)
			}
		}
		// The open connection still reaches A.
		held.SetDeadline(time.Now().Add(5 * time.Second))
		held.Write([]byte("still there\n"))
		if line, err := held.r.ReadString('\n'); err != nil || line != "still there\n" {
			t.Fatalf("open connection after the update: %q, %v", line, err)
		}
		if a.open() != 1 {
			t.Errorf("A has %d open connections; want the 1 from before the update", a.open())
		}
	})
}

// TestCommandLineBackends: the command line's backend flags; the start-up
// line names the backends; a backend that goes down is reported, its
// clients relayed to the other.
func TestCommandLineBackends(t *testing.T) {
	a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
	p := startRelay(t, tempDir(t), "127.0.0.1", a.port, "-also", b.addr(), "-balance", "first", "-check=100ms", "-fall", "2", "-rise", "1")
	want := fmt.Sprintf("Ready to relay data to 127.0.0.1:%d, also %s (first, check 100ms, rise 1, fall 2)", a.port, b.addr())
	if lines := p.stdoutLines(); !strings.Contains(strings.Join(lines, "\n"), want) {
		t.Errorf("start-up lines %q; want %q", lines, want)
	}
	if name, err := whichBackend(p.addr(), ""); err != nil || name != "A" {
		t.Fatalf("%s, %v; want A", name, err)
	}
	a.kill()
	if name, err := whichBackend(p.addr(), ""); err != nil || name != "B" {
		t.Fatalf("with A dead: %s, %v; want B", name, err)
	}
	down := regexp.MustCompile(regexp.QuoteMeta("Backend "+a.addr()+" of route 0 is down: ") + refusedRE + regexp.QuoteMeta(" (2 failed checks)"))
	if !eventually(5*time.Second, func() bool { return down.MatchString(strings.Join(p.stderrLines(), "\n")) }) {
		t.Errorf("no %q line:\n%s", down, p.output())
	}
	a.revive()
	up := fmt.Sprintf("Backend %s of route 0 is up (1 good check)", a.addr())
	if !eventually(5*time.Second, func() bool { return strings.Contains(strings.Join(p.stdoutLines(), "\n"), up) }) {
		t.Errorf("no %q line:\n%s", up, p.output())
	}
	// Flag errors name the value, exit code 2.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"1000", "h", "80", "-balance", "random"}, "invalid balance=random"},
		{[]string{"1000", "h", "80", "-also", "h:80"}, "duplicate backend h:80"},
		{[]string{"1000", "h", "80", "-check", "10ms"}, "invalid check=10ms"},
		{[]string{"1000", "h", "80", "-rise", "0"}, "invalid rise=0"},
	} {
		p := startProc(t, tempDir(t), tt.args...)
		if code := p.wait(t, 20*time.Second); code != exitUsage || !strings.Contains(p.output(), tt.want) {
			t.Errorf("%v: exit %d, output %s; want %d and %q", tt.args, code, p.output(), exitUsage, tt.want)
		}
	}
}
