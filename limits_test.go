package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLimitOptionForms: the limits' text forms parse, print back in the
// canonical form, and bad values get one line naming them.
func TestLimitOptionForms(t *testing.T) {
	checkSpecForms(t, []specForm{
		{"80 h 8080 clientmaxconn=3", "80 h 8080 clientmaxconn=3", "Route 3 : From local port 80 to IP h port 8080 (clientmaxconn=3)"},
		{"80 h 8080 connrate=524288 rate=10m clientrate=20/s clientprefix6=56 clientprefix4=24 clientmaxconn=3",
			"80 h 8080 clientmaxconn=3 clientprefix4=24 clientprefix6=56 clientrate=20/1s rate=10M connrate=512K",
			"Route 3 : From local port 80 to IP h port 8080 (clientmaxconn=3 clientprefix4=24 clientprefix6=56 clientrate=20/1s rate=10M connrate=512K)"},
		{"80 h 8080 clientrate=100/1m0s rate=1500/s", "80 h 8080 clientrate=100/1m rate=1500",
			"Route 3 : From local port 80 to IP h port 8080 (clientrate=100/1m rate=1500)"},
		{"80 h 8080 clientprefix6=0 rate=2048M", "80 h 8080 clientprefix6=0 rate=2G",
			"Route 3 : From local port 80 to IP h port 8080 (clientprefix6=0 rate=2G)"},
		{"53 h 53 proto=udp clientmaxconn=2 rate=1K", "53 h 53 proto=udp clientmaxconn=2 rate=1K",
			"Route 3 : From local port 53/udp to IP h port 53 (clientmaxconn=2 rate=1K)"},
	}, []specError{
		{"80 h 8080 clientmaxconn=0", "invalid clientmaxconn=0:"},
		{"80 h 8080 clientmaxconn=x", "invalid clientmaxconn=x:"},
		{"80 h 8080 clientprefix4=33", "invalid clientprefix4=33: want a prefix length from 0 to 32"},
		{"80 h 8080 clientprefix6=-1", "invalid clientprefix6=-1:"},
		{"80 h 8080 clientrate=5", "invalid clientrate=5:"},
		{"80 h 8080 clientrate=0/1s", "invalid clientrate=0/1s:"},
		{"80 h 8080 clientrate=5/0s", "invalid clientrate=5/0s:"},
		{"80 h 8080 rate=10X", "invalid rate=10X:"},
		{"80 h 8080 connrate=0", "invalid connrate=0:"},
		{"80 h 8080 connrate=-5K", "invalid connrate=-5K:"},
		{"80 h 8080 rate=2000G", "invalid rate=2000G:"},
		{"80 h 8080 rate=1M rate=2M", "option rate= given twice"},
	})
	for _, bad := range []string{"clientrate=5", "rate=10X"} {
		_, err := ParseRouteSpec("80 h 8080 " + bad)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v; want one line", bad, err)
		}
	}
}

// TestLimitFlags: the command line's flags set the same options.
func TestLimitFlags(t *testing.T) {
	o, err := parseArgs([]string{"8080", "h", "80", "-clientmaxconn", "3", "-clientrate=20/1s", "-rate", "10M", "-connrate", "512K", "-clientprefix6", "48"})
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{ClientMaxConn: 3, ClientRate: 20, ClientPer: time.Second, Rate: 10 << 20, ConnRate: 512 << 10, ClientPrefix6: 48}
	if got := o.routeSpec().Limits; got != want {
		t.Errorf("limits %+v; want %+v", got, want)
	}
	if _, err := parseArgs([]string{"8080", "h", "80", "-connrate", "fast"}); err == nil || !strings.Contains(err.Error(), "connrate=fast") {
		t.Errorf("-connrate fast: %v", err)
	}
}

// TestGlobalClientMaxConnSetting: the config file's clientmaxconn line
// reads, writes back and refuses bad values.
func TestGlobalClientMaxConnSetting(t *testing.T) {
	dir := tempDir(t) // not t.TempDir: its cleanup fails under wine (helpers_test.go)
	path := dir + "/relaytcp.conf"
	write := func(s string) {
		t.Helper()
		if err := writeFileForTest(path, s); err != nil {
			t.Fatal(err)
		}
	}
	write("clientmaxconn 5\nroute 8080 127.0.0.1 80\n")
	cfg, _, err := loadConfigFile(path)
	if err != nil || cfg.ClientMaxConn != 5 {
		t.Fatalf("LoadConfig: %+v, %v", cfg, err)
	}
	if got := cfg.settings()["clientmaxconn"]; got != "5" {
		t.Errorf("settings clientmaxconn %q; want 5", got)
	}
	write("clientmaxconn many\nroute 8080 127.0.0.1 80\n")
	if _, _, err := loadConfigFile(path); err == nil || !strings.Contains(err.Error(), `"many"`) {
		t.Errorf("clientmaxconn many: %v", err)
	}
}

// TestClientKey: a client is its address masked to its family's prefix.
func TestClientKey(t *testing.T) {
	for _, tt := range []struct {
		addr         string
		bits4, bits6 int
		want         string
	}{
		{"127.0.0.2", 32, 64, "127.0.0.2/32"},
		{"192.168.7.9", 24, 64, "192.168.7.0/24"},
		{"::ffff:10.1.2.3", 32, 64, "10.1.2.3/32"},
		{"2001:db8:1:2:aaaa::1", 32, 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::7", 32, 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 32, 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:3::1", 32, 48, "2001:db8:1::/48"},
		{"::1", 32, 128, "::1/128"},
		{"10.0.0.1", 0, 64, "0.0.0.0/0"},
	} {
		if got := clientKey(netip.MustParseAddr(tt.addr), tt.bits4, tt.bits6).String(); got != tt.want {
			t.Errorf("clientKey(%s, %d, %d) = %s; want %s", tt.addr, tt.bits4, tt.bits6, got, tt.want)
		}
	}
}

// TestAdmitCountsAndReleases: clientmaxconn= counts each client's open
// connections, the hold gives its place back once, and a client in
// another /64 is another client.
func TestAdmitCountsAndReleases(t *testing.T) {
	var lim routeLimiter
	var global globalClients
	lim.set(Limits{ClientMaxConn: 2})
	now := time.Unix(1000, 0)
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	other := netip.MustParseAddr("2001:db8:0:1::1")
	h1, r1 := lim.admit(&global, a, now)
	h2, r2 := lim.admit(&global, b, now) // the same /64
	if r1 != nil || r2 != nil || h1 == nil || h2 == nil {
		t.Fatalf("first two refused: %v %v", r1, r2)
	}
	if _, r := lim.admit(&global, a, now); r == nil || r.kind != byClientMaxConn || !r.report {
		t.Fatalf("third of the /64: %+v; want refused by clientmaxconn, reported", r)
	}
	if _, r := lim.admit(&global, other, now); r != nil {
		t.Fatalf("another /64 refused: %v", r.why)
	}
	h1.release()
	h1.release() // once only
	h3, r := lim.admit(&global, a, now)
	if r != nil {
		t.Fatalf("after a release: refused: %s", r.why)
	}
	if _, r := lim.admit(&global, a, now); r == nil {
		t.Fatal("a second release gave a place back twice")
	}
	h2.release()
	h3.release()
	if got := lim.refusedBy()[byClientMaxConn]; got != 2 {
		t.Errorf("refused by clientmaxconn %d; want 2", got)
	}
}

// TestAdmitGlobalClientMaxConn: the global cap counts a client across
// routes.
func TestAdmitGlobalClientMaxConn(t *testing.T) {
	var r1, r2 routeLimiter
	var global globalClients
	global.max.Store(2)
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("10.0.0.1")
	h1, _ := r1.admit(&global, a, now)
	h2, _ := r2.admit(&global, a, now)
	if h1 == nil || h2 == nil {
		t.Fatal("the first two were not counted")
	}
	if _, r := r2.admit(&global, a, now); r == nil || r.kind != byGlobalClient {
		t.Fatalf("third across routes: %+v; want refused by the global clientmaxconn", r)
	}
	if _, r := r1.admit(&global, netip.MustParseAddr("10.0.0.2"), now); r != nil {
		t.Fatal("another client refused")
	}
	h1.release()
	if _, r := r2.admit(&global, a, now); r != nil {
		t.Fatalf("after a release: %s", r.why)
	}
	h2.release()
}

// TestClientRateBucket: clientrate=5/1s lets a burst of 5 through, then
// one every 200 ms; a client that keeps under the rate is never refused.
func TestClientRateBucket(t *testing.T) {
	var lim routeLimiter
	var global globalClients
	lim.set(Limits{ClientRate: 5, ClientPer: time.Second})
	start := time.Unix(1000, 0)
	now := start
	lim.clock = func() time.Time { return now }
	flood, calm := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	admitted := 0
	for i := range 50 { // 50 in a second, every 20 ms
		now = start.Add(time.Duration(i) * 20 * time.Millisecond)
		if h, r := lim.admit(&global, flood, now); r == nil {
			admitted++
			h.release()
		}
	}
	// The burst, then one per 200 ms of the 980 ms that followed.
	if admitted < 9 || admitted > 10 {
		t.Errorf("%d of 50 admitted in a second; want 5 + about 5", admitted)
	}
	for i := range 100 { // 4 a second for 25 s
		now = start.Add(time.Duration(i) * 250 * time.Millisecond)
		h, r := lim.admit(&global, calm, now)
		if r != nil {
			t.Fatalf("a client under the rate was refused at its connection %d: %s", i, r.why)
		}
		h.release()
	}
}

// TestRefusalLogOnceAMinute: under a flood of 10,000 refused connections
// over 130 s, a client is logged three times, each line with the
// refusals since the line before.
func TestRefusalLogOnceAMinute(t *testing.T) {
	var lim routeLimiter
	var global globalClients
	lim.set(Limits{ClientMaxConn: 1})
	start := time.Unix(1000, 0)
	client := netip.MustParseAddr("127.0.0.2")
	hold, _ := lim.admit(&global, client, start)
	var reports []int
	for i := range 10000 {
		now := start.Add(time.Duration(i) * 13 * time.Millisecond) // 0 to 129.987 s
		if _, r := lim.admit(&global, client, now); r == nil {
			t.Fatal("admitted over clientmaxconn=1")
		} else if r.report {
			reports = append(reports, r.count)
		}
	}
	if fmt.Sprint(reports) != "[1 4616 4616]" {
		t.Errorf("reports with their counts %v; want [1 4616 4616] (at 0, 60.008 and 120.016 s)", reports)
	}
	hold.release()
	if got := lim.refusedBy()[byClientMaxConn]; got != 10000 {
		t.Errorf("counted %d refusals; want 10000", got)
	}
}

// TestClientTableBounded: the table of clients forgets those that no
// longer matter, and never grows past maxClients.
func TestClientTableBounded(t *testing.T) {
	var lim routeLimiter
	var global globalClients
	lim.set(Limits{ClientMaxConn: 1})
	now := time.Unix(1000, 0)
	for i := range maxClients + 100 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		h, r := lim.admit(&global, a, now)
		if r != nil {
			t.Fatalf("client %s refused: %s", a, r.why)
		}
		h.release()
	}
	if n := len(lim.clients); n != 0 {
		t.Errorf("%d clients kept after they all closed; want 0", n)
	}
}

// limitRelays runs test once per TCP relay: the engine (where there is
// one) and the goroutine relay.
func limitRelays(t *testing.T, test func(t *testing.T, r *Relay)) {
	t.Run("engine", func(t *testing.T) { test(t, &Relay{}) })
	t.Run("goroutines", func(t *testing.T) { test(t, &Relay{noEngine: true}) })
}

// dialFrom connects to addr from local address from; nil when the
// connect itself was reset (a refusal can come that fast).
func dialFrom(t *testing.T, from, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	return c.(*net.TCPConn)
}

// isAdmitted reports whether c echoes a message (the relay admitted it),
// or the relay closed it (refused; or c is nil: reset at once).
func isAdmitted(t *testing.T, c *net.TCPConn) bool {
	t.Helper()
	if c == nil {
		return false
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	buf := make([]byte, 4)
	_, err := io.ReadFull(c, buf)
	if err != nil && isTimeout(err) {
		t.Fatal("neither echoed nor closed within 10 s")
	}
	return err == nil && string(buf) == "ping"
}

// TestClientMaxConnRefusesFourth: with clientmaxconn=3, the 4th
// connection from 127.0.0.2 is refused at once while 127.0.0.3 still gets
// in; a closed connection frees its place; refusals are counted and
// logged once.
func TestClientMaxConnRefusesFourth(t *testing.T) {
	needLoopbackAliases(t)
	limitRelays(t, func(t *testing.T, r *Relay) {
		echo := echoServer(t)
		var mu sync.Mutex
		var refusedLines []string
		r.Events = func(e Event) {
			if e.Kind == ConnRefused {
				mu.Lock()
				refusedLines = append(refusedLines, e.Err.Error())
				mu.Unlock()
			}
		}
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr()), Limits: Limits{ClientMaxConn: 3}}
		if err := r.Start(1, rt); err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(t.Context())
		addr := r.Addr(1).String()
		var open []*net.TCPConn
		for i := range 3 {
			c := dialFrom(t, "127.0.0.2", addr)
			defer c.Close()
			if !isAdmitted(t, c) {
				t.Fatalf("connection %d from 127.0.0.2 refused", i+1)
			}
			open = append(open, c)
		}
		for range 3 {
			c := dialFrom(t, "127.0.0.2", addr)
			if isAdmitted(t, c) {
				t.Fatal("a 4th connection from 127.0.0.2 got through clientmaxconn=3")
			}
			closeConn(c)
		}
		c := dialFrom(t, "127.0.0.3", addr)
		defer c.Close()
		if !isAdmitted(t, c) {
			t.Fatal("127.0.0.3 refused while 127.0.0.2 was at its cap")
		}
		open[0].Close()
		if !eventually(5*time.Second, func() bool {
			c := dialFrom(t, "127.0.0.2", addr)
			defer closeConn(c)
			return isAdmitted(t, c)
		}) {
			t.Fatal("a closed connection did not give its place back")
		}
		rs := r.Status()[1]
		if rs.Limits.refused[byClientMaxConn] < 3 || rs.RefusedCap != 0 || rs.Total < 5 {
			t.Errorf("status: refused by clientmaxconn %d, by maxconn %d, total %d; want at least 3, 0, 5",
				rs.Limits.refused[byClientMaxConn], rs.RefusedCap, rs.Total)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(refusedLines) != 1 || !strings.Contains(refusedLines[0], "client 127.0.0.2/32 has clientmaxconn=3 open connections") {
			t.Errorf("refusal lines %q; want one naming the client and the limit", refusedLines)
		}
	})
}

// TestClientMaxConnIPv6: IPv6 clients are counted per /64: ::1 is one.
func TestClientMaxConnIPv6(t *testing.T) {
	limitRelays(t, func(t *testing.T, r *Relay) {
		echo := echoServer6(t)
		rt := Route{ListenAddr: "[::1]:0", RemoteHost: "::1", RemotePort: portOf(echo.Addr()), Limits: Limits{ClientMaxConn: 1}}
		if err := r.Start(1, rt); err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(t.Context())
		addr := r.Addr(1).String()
		c := dialFrom(t, "::1", addr)
		defer c.Close()
		if !isAdmitted(t, c) {
			t.Fatal("the first connection from ::1 was refused")
		}
		c2 := dialFrom(t, "::1", addr)
		defer closeConn(c2)
		if isAdmitted(t, c2) {
			t.Fatal("a second connection from ::1 got through clientmaxconn=1")
		}
	})
}

// TestClientRateRefusesFlood: clientrate=5/1s over real sockets: of 50
// connections opened as fast as possible, about the burst (5) plus the
// rate for the time they took get through.
func TestClientRateRefusesFlood(t *testing.T) {
	needLoopbackAliases(t)
	limitRelays(t, func(t *testing.T, r *Relay) {
		echo := echoServer(t)
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr()),
			Limits: Limits{ClientRate: 5, ClientPer: time.Second}}
		if err := r.Start(1, rt); err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(t.Context())
		addr := r.Addr(1).String()
		start := time.Now()
		admitted := 0
		for range 50 {
			c := dialFrom(t, "127.0.0.2", addr)
			if isAdmitted(t, c) {
				admitted++
			}
			closeConn(c)
		}
		took := time.Since(start)
		most := 5 + int(took/(200*time.Millisecond)) + 1
		if admitted < 5 || admitted > most {
			t.Errorf("%d of 50 admitted in %v; want from 5 to %d", admitted, took, most)
		}
		if got := r.Status()[1].Limits.refused[byClientRate]; got != int64(50-admitted) {
			t.Errorf("refused by clientrate %d; want %d", got, 50-admitted)
		}
	})
}

// TestRefusalLogUnderFlood: a flood of refused connections over real
// sockets is logged once, not once per refusal.
func TestRefusalLogUnderFlood(t *testing.T) {
	needLoopbackAliases(t)
	limitRelays(t, func(t *testing.T, r *Relay) {
		echo := echoServer(t)
		var mu sync.Mutex
		refused := 0
		r.Events = func(e Event) {
			if e.Kind == ConnRefused {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr()),
			Limits: Limits{ClientRate: 1, ClientPer: time.Hour}}
		if err := r.Start(1, rt); err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(t.Context())
		addr := r.Addr(1).String()
		const flood = 500
		for range flood {
			closeConn(dialFrom(t, "127.0.0.2", addr))
		}
		if !eventually(10*time.Second, func() bool { return r.Status()[1].Limits.refused[byClientRate] == flood-1 }) {
			t.Fatalf("refused by clientrate %d; want %d", r.Status()[1].Limits.refused[byClientRate], flood-1)
		}
		mu.Lock()
		defer mu.Unlock()
		if refused != 1 {
			t.Errorf("%d refusal lines for %d refused connections; want 1", refused, flood-1)
		}
	})
}

// closeConn closes c, if there is one.
func closeConn(c *net.TCPConn) {
	if c != nil {
		c.Close()
	}
}

// sinkServer reads and discards whatever each client sends, then closes.
func sinkServer(t *testing.T) *net.TCPListener {
	t.Helper()
	ln := newLocalListener(t)
	go serveEach(ln, func(c *net.TCPConn) {
		io.Copy(io.Discard, c)
		c.Close()
	})
	return ln
}

// sendThrough sends n bytes through addr to a sink and returns how long
// it took until the relay had taken them all and the sink closed.
func sendThrough(t *testing.T, addr string, n int) time.Duration {
	t.Helper()
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	buf := make([]byte, 32<<10)
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("write after %d bytes: %v", sent, err)
		}
	}
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("waiting for the end: %v", err)
	}
	return time.Since(start)
}

// TestRateSlowsDown: a route with rate=1M takes at least about 2 s to move
// 3 MiB (it slows down rather than dropping: every byte arrives), and so
// does a connection under connrate=1M; bounds only from below, which load
// cannot break.
func TestRateSlowsDown(t *testing.T) {
	for _, lim := range []Limits{{Rate: 1 << 20}, {ConnRate: 1 << 20}} {
		t.Run(lim.text()[0], func(t *testing.T) {
			limitRelays(t, func(t *testing.T, r *Relay) {
				sink := sinkServer(t)
				rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr()), Limits: lim}
				if err := r.Start(1, rt); err != nil {
					t.Fatal(err)
				}
				defer r.Shutdown(t.Context())
				if took := sendThrough(t, r.Addr(1).String(), 3<<20); took < 1800*time.Millisecond {
					t.Errorf("3 MiB took %v under %s; want at least about 2 s", took, lim.text()[0])
				}
				if !eventually(5*time.Second, func() bool { return r.Status()[1].Sent == 3<<20 }) {
					t.Errorf("sent %d bytes; want all of %d", r.Status()[1].Sent, 3<<20)
				}
			})
		})
	}
}

// TestRateLiveReload: an open connection under rate=64K goes on at the new
// figure once a reload lifts it: 4 MiB, which would take a minute at 64K,
// arrive soon after.
func TestRateLiveReload(t *testing.T) {
	r := &Relay{}
	sink := sinkServer(t)
	rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr()), Limits: Limits{Rate: 64 << 10}}
	if err := r.Start(1, rt); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(t.Context())
	addr := r.Addr(1).String()
	done := make(chan time.Duration, 1)
	go func() { done <- sendThrough(t, addr, 4<<20) }()
	time.Sleep(500 * time.Millisecond)
	if sent := r.Status()[1].Sent; sent > 1<<20 {
		t.Fatalf("%d bytes in 0.5 s under rate=64K", sent)
	}
	rt.ListenAddr = addr
	rt.Limits.Rate = 1 << 30
	if ok, err := r.Update(1, rt); !ok || err != nil {
		t.Fatalf("Update: %v, %v", ok, err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the open connection did not take the new rate: 4 MiB not through in 30 s")
	}
}

// writeFileForTest writes a file for a test.
func writeFileForTest(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// readFileForTest reads a file for a test.
func readFileForTest(path string) ([]byte, error) { return os.ReadFile(path) }

// TestClientMaxConnBehindProxy: on an acceptproxy=1 route the per-client
// limits count the client each PROXY header names, not the proxy.
func TestClientMaxConnBehindProxy(t *testing.T) {
	limitRelays(t, func(t *testing.T, r *Relay) {
		echo := echoServer(t)
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr()), AcceptProxy: true,
			Limits: Limits{ClientMaxConn: 1}}
		if err := r.Start(1, rt); err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(t.Context())
		addr := r.Addr(1).String()
		dst := netip.MustParseAddrPort(addr)
		via := func(client string) *net.TCPConn {
			c := dialTCP(t, addr)
			c.Write(proxyHeaderBytes(proxyV1, netip.MustParseAddrPort(client), dst))
			return c
		}
		first := via("10.0.0.5:1000")
		defer first.Close()
		if !isAdmitted(t, first) {
			t.Fatal("the first client behind the proxy was refused")
		}
		second := via("10.0.0.5:1001")
		defer second.Close()
		if isAdmitted(t, second) {
			t.Fatal("a second connection of 10.0.0.5 got through clientmaxconn=1")
		}
		other := via("10.0.0.6:1000")
		defer other.Close()
		if !isAdmitted(t, other) {
			t.Fatal("another client behind the same proxy was refused")
		}
	})
}

// TestByteBucketReservesInOrder: reservations of a bucket in debt are
// due one after another, in the order they were made (a route's
// connections share rate= in turn); bytes given back bring the next one
// forward; a full bucket lets its burst through at once.
func TestByteBucketReservesInOrder(t *testing.T) {
	var b byteBucket
	now := time.Now()
	const rate, burst = 1000, 200 // 100 bytes: 0.1 s
	var got []time.Duration
	for range 4 {
		got = append(got, b.reserve(100, now, rate, burst).Sub(now).Round(time.Millisecond))
	}
	if fmt.Sprint(got) != "[0s 0s 0s 100ms]" {
		t.Errorf("four reservations of 100 bytes at 1,000 B/s with a burst of 200 are due at %v; want [0s 0s 0s 100ms]", got)
	}
	b.refund(100, rate) // the last one moved nothing
	if at := b.reserve(100, now, rate, burst).Sub(now).Round(time.Millisecond); at != 100*time.Millisecond {
		t.Errorf("after a refund the next reservation is due at %v; want 100ms", at)
	}
	if at := b.reserve(100, now.Add(time.Second), rate, burst).Sub(now).Round(time.Millisecond); at != time.Second {
		t.Errorf("a reservation for later is due at %v; want 1s (the bucket is out of debt by then)", at)
	}
}

// TestPacerStepsAndRefunds: a pacer reserves in its connection's bucket
// first and in the route's only once that is due; a reservation given up
// (settle with less than reserved) goes back to both buckets; with the
// cap lifted, reserve says so (0 bytes).
func TestPacerStepsAndRefunds(t *testing.T) {
	lim := &routeLimiter{}
	lim.set(Limits{Rate: 20 << 10, ConnRate: 10 << 10}) // chunks of 2 KiB (1/20 s of 10K is under the minimum), a burst of 4
	p := lim.pacer(dirSent)
	now := time.Now()
	atOnce := 0
	var at time.Time
	for range 10 {
		var n int
		n, at = p.reserve(now, 0)
		if n != minChunk {
			t.Fatalf("a chunk of %d bytes; want %d", n, minChunk)
		}
		if at.After(now) {
			break
		}
		atOnce++
		p.settle(n)
	}
	if atOnce != 5 {
		t.Fatalf("%d chunks due at once; want 5 (a full bucket of 4, and the one that empties it)", atOnce)
	}
	if p.step != 1 {
		t.Fatalf("waiting for its own bucket, the pacer is at step %d; want 1 (the route's bucket not yet asked)", p.step)
	}
	routeTat := lim.band.bucket[dirSent].tat
	p.settle(0) // aborted while waiting
	if lim.band.bucket[dirSent].tat != routeTat {
		t.Errorf("giving up at step 1 changed the route's bucket")
	}
	lim.set(Limits{})
	if n, _ := p.reserve(now, 0); n != 0 {
		t.Errorf("with the cap lifted, reserve gives %d bytes; want 0", n)
	}
}

// TestRateWithDataLog: a data-logged route (which copies chunk by chunk,
// as on Windows) honours rate= too.
func TestRateWithDataLog(t *testing.T) {
	r := &Relay{}
	sink := sinkServer(t)
	dir := tempDir(t)
	rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr()), DataLogDir: dir, Limits: Limits{Rate: 1 << 20}}
	if err := r.Start(1, rt); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(t.Context())
	if took := sendThrough(t, r.Addr(1).String(), 3<<20); took < 1800*time.Millisecond {
		t.Errorf("3 MiB took %v under rate=1M with a data log; want at least about 2 s", took)
	}
	if !eventually(5*time.Second, func() bool { return r.Status()[1].Sent == 3<<20 }) {
		t.Errorf("sent %d bytes; want all of %d", r.Status()[1].Sent, 3<<20)
	}
}

// countingSink counts what each client sends it, and discards it.
func countingSink(t *testing.T) (*net.TCPListener, *atomic.Int64) {
	t.Helper()
	ln := newLocalListener(t)
	var got atomic.Int64
	go serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	return ln, &got
}

// TestRateGivenToOpenConnection: a reload that gives a route rate= slows
// the connection already open on it (the issue: open connections go on
// under the new figures), on both relays, without breaking it or moving
// the route off its relay; a reload that lifts the cap lets it run again.
func TestRateGivenToOpenConnection(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		sink, got := countingSink(t)
		r := kind.newRelay(nil)
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr())}
		if err := r.Start(1, rt); err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(t.Context())
		rt.ListenAddr = r.Addr(1).String()
		c := dialTCP(t, rt.ListenAddr)
		defer c.Close()
		checkCapGivenToOpen(t, r, rt, c, got)
		if kind == engineRelay {
			r.mu.Lock()
			engines := r.routes[1].(*tcpRoute).engines
			r.mu.Unlock()
			if engines == nil {
				t.Errorf("the route left the engine when given a cap")
			}
		}
	})
}

// TestRateGivenToOpenTLSConnection: the same for a TLS-terminating route,
// whose open connection's copy reads through TLS: the read deadline that
// wakes it to take the cap leaves the TLS stream intact.
func TestRateGivenToOpenTLSConnection(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "ecdsa", certSpec{cn: "relay", names: []string{"relay.example.com"}, keyType: "ecdsa"})
	sink, got := countingSink(t)
	spec, err := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s", portOf(sink.Addr()), cert, key))
	if err != nil {
		t.Fatal(err)
	}
	rt := spec.Route()
	rt.ListenAddr = "127.0.0.1:0"
	r := &Relay{}
	if err := r.Start(1, rt); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(t.Context())
	rt.ListenAddr = r.Addr(1).String()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", rt.ListenAddr, &tls.Config{RootCAs: ca.pool(), ServerName: "relay.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkCapGivenToOpen(t, r, rt, c, got)
}

// checkCapGivenToOpen sends through c, open on route 1 of r (rt, with its
// listening address), as fast as it can to a sink that counts in got;
// gives the route rate=256K by Update and checks that c slows down to it,
// then lifts the cap and checks that c runs fast again, unbroken.
func checkCapGivenToOpen(t *testing.T, r *Relay, rt Route, c net.Conn, got *atomic.Int64) {
	t.Helper()
	stop := make(chan struct{})
	defer close(stop)
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// No write deadline: one that expires breaks a TLS stream. The
			// caller's close ends a write that blocks.
			if _, err := c.Write(buf); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	if !eventually(10*time.Second, func() bool { return got.Load() >= 8<<20 }) {
		t.Fatalf("only %d bytes through without a cap in 10 s", got.Load())
	}
	rt.Limits = Limits{Rate: 256 << 10}
	if ok, err := r.Update(1, rt); !ok || err != nil {
		t.Fatalf("Update with rate=256K: %v, %v", ok, err)
	}
	time.Sleep(time.Second) // what was under way before the cap arrives
	before := got.Load()
	time.Sleep(2 * time.Second)
	moved := got.Load() - before
	t.Logf("%d bytes in 2 s under rate=256K (%.2f of the cap)", moved, float64(moved)/float64(512<<10))
	// 2 s at 256K is 512K, and a full bucket (4 chunks of 12.8K); half
	// again for a loaded machine; unpaced it would be gigabytes.
	if moved > 800<<10 || moved < 128<<10 {
		t.Errorf("%d bytes in 2 s once the open connection was given rate=256K; want about 512K", moved)
	}
	rt.Limits = Limits{}
	if ok, err := r.Update(1, rt); !ok || err != nil {
		t.Fatalf("Update without the cap: %v, %v", ok, err)
	}
	lifted := got.Load()
	if !eventually(10*time.Second, func() bool { return got.Load()-lifted >= 8<<20 }) {
		t.Errorf("only %d bytes in 10 s once the cap was lifted", got.Load()-lifted)
	}
	select {
	case err := <-writeErr:
		t.Fatalf("the connection broke: %v", err)
	default:
	}
}

// TestConnRateDoesNotDelayOthers: under connrate=16K a connection that
// sends as fast as it can waits 1/8 s between chunks of 2 KiB; another
// connection of the route, under its cap, is not held up by that: 20
// round trips of a few bytes take well under the 2.5 s they would if it
// waited behind the first one's chunks. On both relays.
func TestConnRateDoesNotDelayOthers(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		echo := echoServer(t)
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr()), Limits: Limits{ConnRate: 16 << 10}}
		r := startLimited(t, kind, nil, rt)
		addr := r.Addr(1).String()
		hog := dialTCP(t, addr)
		defer hog.Close()
		hog.SetLinger(0) // closed with a reset: what it queued is not relayed at 16K a second
		go io.Copy(io.Discard, hog)
		go func() {
			buf := make([]byte, 32<<10)
			for {
				hog.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := hog.Write(buf); err != nil {
					return
				}
			}
		}()
		if !eventually(5*time.Second, func() bool { return r.Status()[1].Limits.throughput[dirSent] > 0 }) {
			t.Fatal("the first connection moved nothing in 5 s")
		}
		c := dialTCP(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		buf := make([]byte, 4)
		for i := range 20 {
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatalf("round trip %d: %v", i, err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatalf("round trip %d: %v", i, err)
			}
		}
		took := time.Since(start)
		t.Logf("20 round trips: %v", took)
		if took > time.Second {
			t.Errorf("20 round trips took %v beside a connection over its connrate=16K; want well under 1 s", took)
		}
	})
}

// TestCapLiftReachesQueuedConnections: 100 connections wait in turn under
// rate=16K (a chunk each, 2 KiB: 12.5 s for all); a reload that lifts the
// cap, or raises it to 64M, reaches those already waiting for their turn,
// not only the next ones: all their bytes arrive soon after, on both
// relays.
func TestCapLiftReachesQueuedConnections(t *testing.T) {
	for _, after := range []Limits{{}, {Rate: 64 << 20}} {
		name := "lifted"
		if after.paced() {
			name = "raised"
		}
		t.Run(name, func(t *testing.T) {
			forRelays(t, func(t *testing.T, kind relayKind) {
				sink, got := countingSink(t)
				r := kind.newRelay(nil)
				rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr()), Limits: Limits{Rate: 16 << 10}}
				if err := r.Start(1, rt); err != nil {
					t.Fatal(err)
				}
				defer r.Shutdown(t.Context())
				rt.ListenAddr = r.Addr(1).String()
				const n, each = 100, 16 << 10
				for range n {
					c := dialTCP(t, rt.ListenAddr)
					defer c.Close()
					c.Write(make([]byte, each))
					c.CloseWrite()
				}
				time.Sleep(500 * time.Millisecond)
				rt.Limits = after
				if ok, err := r.Update(1, rt); !ok || err != nil {
					t.Fatalf("Update: %v, %v", ok, err)
				}
				changed := time.Now()
				if !eventually(10*time.Second, func() bool { return got.Load() == n*each }) {
					t.Fatalf("%d of %d bytes 10 s after the cap was %s", got.Load(), n*each, name)
				}
				if took := time.Since(changed); took > 3*time.Second {
					t.Errorf("the queued connections took %v to deliver once the cap was %s; want well under 3 s", took, name)
				}
			})
		})
	}
}

// TestCapEndNotQueued: a client's end (FIN) that comes with its last bytes
// reaches the backend with them, on a route whose cap 20 busy connections
// keep full: it does not wait for a turn of its own.
func TestCapEndNotQueued(t *testing.T) {
	// With idle=, the goroutine relay copies chunk by chunk through a
	// reader (as on Windows, and for TLS or a data log) rather than by
	// io.CopyN.
	for _, idle := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprintf("idle=%v", idle), func(t *testing.T) { testCapEndNotQueued(t, idle) })
	}
}

func testCapEndNotQueued(t *testing.T, idle time.Duration) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		ln := newLocalListener(t)
		type arrival struct{ data, end time.Time }
		arrived := make(chan arrival, 1)
		go serveEach(ln, func(c *net.TCPConn) {
			defer c.Close()
			buf := make([]byte, 64<<10)
			if n, _ := io.ReadFull(c, buf[:100]); n != 100 || buf[0] != 'x' {
				io.Copy(io.Discard, c)
				return
			}
			a := arrival{data: time.Now()}
			io.Copy(io.Discard, c)
			a.end = time.Now()
			arrived <- a
		})
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(ln.Addr()), IdleTimeout: idle, Limits: Limits{Rate: 64 << 10}}
		r := startLimited(t, kind, nil, rt)
		stop := make(chan struct{})
		defer close(stop)
		for range 20 {
			h := dialTCP(t, r.Addr(1).String())
			h.SetLinger(0)
			defer h.Close()
			go func() {
				buf := make([]byte, 200)
				for {
					select {
					case <-stop:
						return
					default:
					}
					h.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := h.Write(buf); err != nil && !isTimeout(err) {
						return
					}
				}
			}()
		}
		time.Sleep(time.Second)
		c := dialTCP(t, r.Addr(1).String())
		defer c.Close()
		c.Write(bytes.Repeat([]byte("x"), 100))
		c.CloseWrite()
		select {
		case a := <-arrived:
			if gap := a.end.Sub(a.data); gap > 500*time.Millisecond {
				t.Errorf("the end came %v after the last bytes; want it with them (a turn in the queue is about 1 s)", gap)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the bytes and the end did not arrive in 15 s")
		}
	})
}

// TestCapNotIdle: connections waiting for their turn under a cap are busy,
// not idle: with idle=1s, 30 connections whose turns are about 4 s apart
// under rate=16K are not closed as idle, on both relays.
func TestCapNotIdle(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		sink, _ := countingSink(t)
		var idled atomic.Int64
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr()), IdleTimeout: time.Second, Limits: Limits{Rate: 16 << 10}}
		r := startLimited(t, kind, func(ev Event) {
			if ev.Kind == ConnClosed && errors.Is(ev.Err, errIdle) {
				idled.Add(1)
			}
		}, rt)
		for range 30 {
			c := dialTCP(t, r.Addr(1).String())
			defer c.Close()
			c.Write(make([]byte, 16<<10))
		}
		time.Sleep(4 * time.Second)
		if n := idled.Load(); n != 0 {
			t.Errorf("%d of 30 connections waiting for their turn under rate=16K were closed as idle (idle=1s)", n)
		}
	})
}

// TestCapGivenByRestartReachesDrainingConnections: a route restarted with
// a cap (Retire, then Start: what the service does when a route's data
// log, TLS or sni= change) holds the connections its old instance still
// drains to the cap too, on both relays.
func TestCapGivenByRestartReachesDrainingConnections(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		sink, got := countingSink(t)
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr())}
		r := startLimited(t, kind, nil, rt)
		rt.ListenAddr = r.Addr(1).String()
		c := dialTCP(t, rt.ListenAddr)
		defer c.Close()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		if !eventually(10*time.Second, func() bool { return got.Load() >= 8<<20 }) {
			t.Fatalf("only %d bytes through without a cap in 10 s", got.Load())
		}
		r.Retire(1)
		rt.Limits = Limits{Rate: 256 << 10}
		if err := r.Start(1, rt); err != nil {
			t.Fatalf("restart with rate=256K: %v", err)
		}
		time.Sleep(time.Second)
		before := got.Load()
		time.Sleep(2 * time.Second)
		if moved := got.Load() - before; moved > 800<<10 {
			t.Errorf("%d bytes in 2 s on the old instance's connection once the route restarted with rate=256K; want about 512K", moved)
		}
	})
}

// startLimited starts rt as route 1 on a relay of kind reporting to events
// (nil: nowhere), and shuts it down when the test ends, its connections
// forced closed after 100 ms: what their clients queued would otherwise
// drain at the cap's pace.
func startLimited(t *testing.T, kind relayKind, events func(Event), rt Route) *Relay {
	t.Helper()
	r := kind.newRelay(events)
	if err := r.Start(1, rt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r
}
