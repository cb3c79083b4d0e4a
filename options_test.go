package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRouteSpecOptions(t *testing.T) {
	good := []struct{ in, out string }{
		{"127.0.0.1:155 192.168.1.200 110 allow=10.0.0.0/8 maxconn=100 idle=1h",
			"127.0.0.1:155 192.168.1.200 110 allow=10.0.0.0/8 maxconn=100 idle=1h"},
		{"155 h 1 idle=90m connect=90s", "155 h 1 idle=1h30m connect=1m30s"},
		{"155 h 1 idle=3601s connect=1500ms", "155 h 1 idle=1h1s connect=1.5s"},
		{"[::1]:155 h 1 connect=5s deny=192.168.1.7,10.1.2.3/8", "[::1]:155 h 1 deny=192.168.1.7/32,10.0.0.0/8 connect=5s"},
		{"155 h 1 allow=::ffff:10.0.0.1", "155 h 1 allow=10.0.0.1/32"},
	}
	for _, tt := range good {
		r, err := ParseRouteSpec(tt.in)
		if err != nil || r.String() != tt.out {
			t.Errorf("ParseRouteSpec(%q) = %q, %v; want %q", tt.in, r.String(), err, tt.out)
		}
		if again, err := ParseRouteSpec(r.String()); err != nil || again != r {
			t.Errorf("%q does not parse back: %+v, %v", r.String(), again, err)
		}
	}
	bad := []struct{ in, want string }{
		{"155 h 1 maxconn=0", "invalid maxconn=0"},
		{"155 h 1 idle=soon", "invalid idle=soon"},
		{"155 h 1 allow=10.0.0.0/33", `invalid allow=10.0.0.0/33: "10.0.0.0/33" is not an address`},
		{"155 h 1 speed=fast", `unknown option "speed=" (options: proto, also, backup, balance, check, rise, fall, proxy, acceptproxy, allow, deny, maxconn, idle, connect, rcvbuf, clientmaxconn, clientprefix4, clientprefix6, clientrate, rate, connrate, tls, tlsmin, tlsclientca, handshake, backendtls, backendca, backendsni, backendcert, sni, disabled)`},
		{"155 h 1 maxconn=1 maxconn=2", "option maxconn= given twice"},
		{"155 h 1 extra", `unexpected "extra" after the remote port`},
		{"localhost:155 h 1", `invalid local address "localhost:155": "localhost" is not an IP address`},
		{"1.2.3.4:0 h 1", `invalid local port "0"`},
	}
	for _, tt := range bad {
		if _, err := ParseRouteSpec(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRouteSpec(%q) error %v; want %q", tt.in, err, tt.want)
		}
	}
}

// TestShortDuration: durations print without their zero units (1h, not
// 1h0m0s, as idle=1h was listed back), and parse back to themselves.
func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 2 * time.Second: "2s",
		time.Hour + time.Second: "1h1s", 10 * time.Minute: "10m", 1500 * time.Millisecond: "1.5s",
		100 * time.Millisecond: "100ms", 61*time.Second + 500*time.Millisecond: "1m1.5s", 25 * time.Hour: "25h",
	} {
		got := shortDuration(d)
		if got != want {
			t.Errorf("shortDuration(%v) = %q; want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("%q parses back to %v, %v; want %v", got, back, err, d)
		}
	}
}

// eventRecorder collects a relay's events.
type eventRecorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *eventRecorder) record(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *eventRecorder) count(kind EventKind, errText string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && (errText == "" || e.Err != nil && strings.Contains(e.Err.Error(), errText)) {
			n++
		}
	}
	return n
}

// startSpec starts a route from its text form in front of the echo server.
func startSpec(t *testing.T, r *Relay, text string) {
	t.Helper()
	spec, err := ParseRouteSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(0, spec.Route()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
}

// echoes reports whether a message sent on c comes back.
func echoes(c *net.TCPConn) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	_, err := io.ReadFull(c, make([]byte, 4))
	return err == nil
}

// relays reports whether a new connection to addr is relayed (an echo comes
// back). A refused client may see the reset even before its connect ends.
func relays(addr string) bool { return relaysFrom("", addr) }

// relaysFrom is relays for a client on loopback source address src.
func relaysFrom(src, addr string) bool {
	d := net.Dialer{Timeout: 3 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	return echoes(c.(*net.TCPConn))
}

// needLoopbackAliases skips where 127.0.0.2 is not a local address.
func needLoopbackAliases(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.0.0.2 and 127.0.0.3 as local addresses, as Linux has")
	}
}

func TestAllowDeny(t *testing.T) {
	needLoopbackAliases(t)
	echo := echoServer(t)
	port := freePort(t)
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	startSpec(t, r, strconv.Itoa(port)+" 127.0.0.1 "+strconv.Itoa(portOf(echo.Addr()))+" allow=127.0.0.0/30 deny=127.0.0.3")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !relaysFrom("127.0.0.2", addr) {
		t.Error("client 127.0.0.2 (allowed) not relayed")
	}
	if relaysFrom("127.0.0.3", addr) {
		t.Error("client 127.0.0.3 (denied) relayed")
	}
	if relaysFrom("127.0.0.5", addr) {
		t.Error("client 127.0.0.5 (not in allow) relayed")
	}
	if !eventually(3*time.Second, func() bool { return rec.count(ConnRefused, "") == 2 }) {
		t.Errorf("%d Refused events; want 2", rec.count(ConnRefused, ""))
	}
	if rec.count(ConnRefused, "denied by deny=127.0.0.3/32") != 1 || rec.count(ConnRefused, "not in allow=127.0.0.0/30") != 1 {
		t.Errorf("refusal reasons: %+v", rec.events)
	}
}

func TestBindAddress(t *testing.T) {
	needLoopbackAliases(t)
	echo := echoServer(t)
	port := freePort(t)
	r := &Relay{}
	startSpec(t, r, "127.0.0.1:"+strconv.Itoa(port)+" 127.0.0.1 "+strconv.Itoa(portOf(echo.Addr())))
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(port), "bound address")
	if c, err := net.DialTimeout("tcp", "127.0.0.2:"+strconv.Itoa(port), time.Second); err == nil {
		c.Close()
		t.Fatal("a route bound to 127.0.0.1 accepted a connection to 127.0.0.2")
	}
}

func TestMaxConn(t *testing.T) {
	echo := echoServer(t)
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	startSpec(t, r, "127.0.0.1:"+strconv.Itoa(freePort(t))+" 127.0.0.1 "+strconv.Itoa(portOf(echo.Addr()))+" maxconn=2")
	addr := r.Addr(0).String()
	a, b := dialTCP(t, addr), dialTCP(t, addr)
	defer a.Close()
	defer b.Close()
	if !echoes(a) || !echoes(b) {
		t.Fatal("the first two connections are not relayed")
	}
	if relays(addr) {
		t.Fatal("a third connection was relayed with maxconn=2")
	}
	if !echoes(a) || !echoes(b) {
		t.Fatal("the open connections were disturbed by the refusal")
	}
	if rec.count(ConnRefused, "maxconn=2") != 1 {
		t.Errorf("want one Refused event naming maxconn=2: %+v", rec.events)
	}
	a.Close()
	if !eventually(3*time.Second, func() bool { return r.Active() == 1 }) {
		t.Fatal("closed connection still counted")
	}
	if !relays(addr) {
		t.Error("a connection was refused after one of the two closed")
	}
}

func TestGlobalMaxConns(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	r.SetMaxConns(1)
	startSpec(t, r, "127.0.0.1:"+strconv.Itoa(freePort(t))+" 127.0.0.1 "+strconv.Itoa(portOf(echo.Addr())))
	addr := r.Addr(0).String()
	a := dialTCP(t, addr)
	defer a.Close()
	if !echoes(a) {
		t.Fatal("first connection not relayed")
	}
	if relays(addr) {
		t.Fatal("second connection relayed over the global cap of 1")
	}
}

func TestIdleTimeout(t *testing.T) {
	echo := echoServer(t)
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	startSpec(t, r, "127.0.0.1:"+strconv.Itoa(freePort(t))+" 127.0.0.1 "+strconv.Itoa(portOf(echo.Addr()))+" idle=300ms")
	addr := r.Addr(0).String()
	quiet, busy := dialTCP(t, addr), dialTCP(t, addr)
	defer quiet.Close()
	defer busy.Close()
	if !echoes(quiet) {
		t.Fatal("not relayed")
	}
	start := time.Now()
	for time.Since(start) < time.Second { // busy talks every 100 ms
		if !echoes(busy) {
			t.Fatalf("an active connection was closed after %v", time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	quiet.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(quiet); isTimeout(err) {
		t.Fatal("an idle connection was not closed")
	}
	if rec.count(ConnClosed, "idle timeout") != 1 {
		t.Errorf("want one Closed event with reason idle timeout: %+v", rec.events)
	}
}

// TestCommandLineLimits: the options as command-line flags.
func TestCommandLineLimits(t *testing.T) {
	needLoopbackAliases(t)
	echo := echoServer(t)
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(echo.Addr()), "-allow", "127.0.0.2", "-maxconn=5", "-idle", "1h")
	if !relaysFrom("127.0.0.2", p.addr()) {
		t.Error("allowed client not relayed")
	}
	if relaysFrom("127.0.0.1", p.addr()) {
		t.Error("client outside -allow relayed")
	}
	if !eventually(3*time.Second, func() bool {
		return strings.Contains(strings.Join(p.stderrLines(), "\n"), " Refused 127.0.0.1:")
	}) {
		t.Errorf("no Refused line:\n%s", p.output())
	}
}

// TestSamePortTwoAddresses: two routes on one port, each bound to
// its own address, each reach their own server.
func TestSamePortTwoAddresses(t *testing.T) {
	needLoopbackAliases(t)
	one, two := echoServer(t), newLocalListener(t)
	serveEach(two, func(c *net.TCPConn) { // answers "two" to anything
		defer c.Close()
		c.Read(make([]byte, 16))
		c.Write([]byte("two!"))
	})
	port := freePort(t)
	r := &Relay{}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	for id, text := range []string{
		"127.0.0.1:" + strconv.Itoa(port) + " 127.0.0.1 " + strconv.Itoa(portOf(one.Addr())),
		"127.0.0.2:" + strconv.Itoa(port) + " 127.0.0.1 " + strconv.Itoa(portOf(two.Addr())),
	} {
		spec, _ := ParseRouteSpec(text)
		if err := r.Start(id, spec.Route()); err != nil {
			t.Fatalf("route %d: %v", id, err)
		}
	}
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(port), "one!")
	c := dialTCP(t, "127.0.0.2:"+strconv.Itoa(port))
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	got, _ := io.ReadAll(c)
	if string(got) != "two!" {
		t.Fatalf("127.0.0.2 route answered %q; want %q", got, "two!")
	}
}

// TestAllowOnDualStackListener: a route on every interface sees an IPv4
// client as an IPv4-mapped IPv6 address; allow= and deny= match it by its
// IPv4 address, in both relays.
func TestAllowOnDualStackListener(t *testing.T) {
	ln := newLocalListener(t)
	serveEach(ln, echo)
	forRelays(t, func(t *testing.T, kind relayKind) {
		for _, opt := range []string{"allow=127.0.0.1", "deny=127.0.0.2"} {
			r, _, _ := startRouteOn(t, kind, ":0", fmt.Sprintf("127.0.0.1 %d %s", portOf(ln.Addr()), opt))
			if addr := "127.0.0.1:" + strconv.Itoa(portOf(r.Addr(0))); !relays(addr) {
				t.Errorf("%s on every interface refuses 127.0.0.1", opt)
			}
		}
	})
}
