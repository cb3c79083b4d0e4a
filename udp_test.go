package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUDPSpecs: proto=udp in the route text form, the options that do not
// apply to it, and a TCP and a UDP route on one port.
func TestUDPSpecs(t *testing.T) {
	good := []specForm{
		{"53 10.0.0.2 53 proto=udp", "53 10.0.0.2 53 proto=udp", "Route 3 : From local port 53/udp to IP 10.0.0.2 port 53"},
		{"53 10.0.0.2 53 proto=tcp", "53 10.0.0.2 53", "Route 3 : From local port 53 to IP 10.0.0.2 port 53"},
		{"127.0.0.1:5000-5001 h 6000-6001 proto=udp idle=5s maxconn=100 also=h2:6000 balance=source",
			"127.0.0.1:5000-5001 h 6000-6001 proto=udp also=h2:6000 balance=source maxconn=100 idle=5s",
			"Route 3 : From local address 127.0.0.1 ports 5000-5001/udp to IP h ports 6000-6001, also h2:6000 (source, maxconn=100 idle=5s)"},
	}
	checkSpecForms(t, good, []specError{
		{"53 h 53 proto=udp proxy=v1", "option proxy= does not apply to proto=udp routes"},
		{"53 h 53 acceptproxy=1 proto=udp", "option acceptproxy= does not apply to proto=udp routes"},
		{"53 h 53 proto=udp connect=2s", "option connect= does not apply to proto=udp routes"},
		{"53 h 53 proto=udp check=2s", "option check= does not apply to proto=udp routes"},
		{"53 h 53 proto=sctp", "invalid proto=sctp: want tcp or udp"},
	})
	var cfg Config
	for _, s := range []string{"53 a 53", "53 b 53 proto=udp"} {
		r, _ := ParseRouteSpec(s)
		if err := cfg.AddRoute(r); err != nil {
			t.Errorf("add %q: %v", s, err)
		}
	}
	r, _ := ParseRouteSpec("127.0.0.1:53 c 53 proto=udp")
	if err := cfg.AddRoute(r); err == nil || err.Error() != "local port 127.0.0.1:53/udp overlaps route 1 on 53/udp" {
		t.Errorf("a second UDP route on 53: %v", err)
	}
	for in, want := range map[string]int{":53/udp": 1, ":53/tcp": 0} {
		if n, err := cfg.findRoute(in); err != nil || n != want {
			t.Errorf("findRoute(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	if _, err := cfg.findRoute(":53"); err == nil || !strings.Contains(err.Error(), "say :53/tcp or :53/udp") {
		t.Errorf("findRoute(:53) with TCP and UDP: %v", err)
	}
}

// udpEchoServer answers every datagram with the same bytes, prefixed by
// prefix, from its own address; it counts what it got.
type udpEchoServer struct {
	conn     *net.UDPConn
	got      atomic.Int64
	mu       sync.Mutex
	byClient map[string]int
}

func newUDPEchoServer(t testing.TB, prefix string) *udpEchoServer {
	c := listenUDPOrSkip(t)
	// A burst of 1,000 clients must not overflow the test's own server:
	// the relay passes it on at once (the system caps this at
	// net.core.rmem_max).
	c.SetReadBuffer(4 << 20)
	s := &udpEchoServer{conn: c, byClient: map[string]int{}}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.got.Add(1)
			s.mu.Lock()
			s.byClient[from.String()]++
			s.mu.Unlock()
			c.WriteToUDPAddrPort(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	return s
}

func (s *udpEchoServer) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// startUDPRoute starts UDP route 0 of a new relay, from the text after
// LOCALPORT, on 127.0.0.1:0, recording its events.
func startUDPRoute(t testing.TB, text string, dataLogDir string) (*Relay, string, *eventRecorder) {
	spec, err := ParseRouteSpec("1 " + text + " proto=udp")
	if err != nil {
		t.Fatal(err)
	}
	rt := spec.Route()
	rt.ListenAddr, rt.DataLogDir = "127.0.0.1:0", dataLogDir
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	if err := r.Start(0, rt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, r.Addr(0).String(), rec
}

// listenUDPOrSkip listens on a loopback UDP port, or skips the test where
// Go programs have no UDP sockets.
func listenUDPOrSkip(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil && runtime.GOOS == "windows" && strings.Contains(err.Error(), "wsaioctl") {
		// Go's net package turns off SIO_UDP_CONNRESET and SIO_UDP_NETRESET
		// on every UDP socket; wine 8 does not implement the second
		// (WSAEOPNOTSUPP), so no Go program has UDP under wine 8.
		t.Skipf("no UDP sockets for Go programs here (wine 8 lacks SIO_UDP_NETRESET): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// needUDP skips the test where Go programs have no UDP sockets.
func needUDP(t testing.TB) { listenUDPOrSkip(t).Close() }

// udpClient is a client socket that sends to addr.
func udpClient(t testing.TB, addr string) *net.UDPConn {
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// exchangeDatagram sends msg and reads one answer.
func exchangeDatagram(c *net.UDPConn, msg []byte) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<16)
	n, err := c.Read(buf)
	return buf[:n], err
}

// TestUDPRelaysDatagramsWhole: small and 65,000-byte datagrams go through
// whole, both ways, the answers from the route's address; the session is
// logged when it opens and when it ends, with its counts.
func TestUDPRelaysDatagramsWhole(t *testing.T) {
	srv := newUDPEchoServer(t, "A:")
	r, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d", srv.port()), "")
	c := udpClient(t, addr)
	for _, size := range []int{1, 100, 4097, 20000, 65000} {
		msg := randomBytes(uint64(size), size)
		got, err := exchangeDatagram(c, msg)
		if err != nil || !bytes.Equal(got, append([]byte("A:"), msg...)) {
			t.Fatalf("datagram of %d bytes: %d bytes back, %v", size, len(got), err)
		}
	}
	// A datagram the size of the largest IPv4 UDP payload reaches the
	// server whole (its answer would be 2 bytes too long).
	if _, err := c.Write(make([]byte, maxDatagram)); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return srv.got.Load() == 6 }) {
		t.Errorf("the server got %d datagrams; want 6", srv.got.Load())
	}
	if n := rec.count(SessionOpened, ""); n != 1 {
		t.Errorf("%d sessions opened; want 1: %v", n, rec.events)
	}
	r.Shutdown(context.Background())
	closed := rec.first(SessionClosed)
	if closed.SentDatagrams != 6 || closed.ReceivedDatagrams != 5 || closed.Sent != 1+100+4097+20000+65000+maxDatagram ||
		!strings.HasSuffix(closed.Message(), "(relay stopped)") {
		t.Errorf("closed session: %q", closed.Message())
	}
}

// TestUDPThousandClients: 1,000 clients at once each get their own
// answers and nothing else.
func TestUDPThousandClients(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	_, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d", srv.port()), "")
	const clients, each = 1000, 3
	// Every client keeps its socket until all are done: a port closed
	// early could go to a later client, which would then (rightly) share
	// the first one's session.
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		conns[i] = udpClient(t, addr)
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				msg := fmt.Sprintf("client %d message %d", i, j)
				got, err := exchangeDatagramRetry(c, []byte(msg))
				if err != nil || string(got) != msg {
					if bad.Add(1) == 1 {
						t.Logf("client %d: %q, %v", i, got, err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d clients got a wrong answer or none", n, clients)
	}
	if n := rec.count(SessionOpened, ""); n != clients {
		t.Errorf("%d sessions; want %d", n, clients)
	}
}

// exchangeDatagramRetry is exchangeDatagram, sending again up to 3 times
// when no answer comes in 3 seconds (loopback drops datagrams when a socket
// buffer overflows, as a network does; and 1,000 new sessions take seconds
// under -race on a loaded machine), and reading past stale answers.
func exchangeDatagramRetry(c *net.UDPConn, msg []byte) ([]byte, error) {
	buf := make([]byte, 1<<16)
	var err error
	for range 3 {
		if _, err = c.Write(msg); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			c.SetReadDeadline(deadline)
			var n int
			if n, err = c.Read(buf); err != nil {
				break
			}
			if bytes.Equal(buf[:n], msg) {
				return buf[:n], nil
			}
			if !bytes.HasPrefix(buf[:n], msg[:bytes.LastIndexByte(msg, ' ')]) {
				return buf[:n], fmt.Errorf("another client's answer: %q", buf[:n])
			}
		}
	}
	return nil, err
}

// TestUDPIdleAndEviction: a quiet session ends after idle=; at maxconn=
// sessions the least recently used ends for a new client, reported once
// per incident.
func TestUDPIdleAndEviction(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	_, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d idle=300ms", srv.port()), "")
	c := udpClient(t, addr)
	if _, err := exchangeDatagram(c, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if !eventually(3*time.Second, func() bool { return rec.count(SessionClosed, "idle") == 1 }) {
		t.Fatalf("the quiet session did not end: %v", rec.events)
	}
	if got, err := exchangeDatagram(c, []byte("two")); err != nil || string(got) != "two" {
		t.Fatalf("after the idle end: %q, %v", got, err)
	}
	if n := rec.count(SessionOpened, ""); n != 2 {
		t.Errorf("%d sessions; want 2 (a new one after the idle end)", n)
	}

	_, addr, rec = startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d maxconn=3", srv.port()), "")
	var cs []*net.UDPConn
	for i := range 5 {
		c := udpClient(t, addr)
		if _, err := exchangeDatagram(c, []byte("hi")); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		cs = append(cs, c)
		time.Sleep(10 * time.Millisecond)
	}
	if !eventually(3*time.Second, func() bool { return rec.count(SessionClosed, "evicted") == 2 }) {
		t.Fatalf("want the 2 least recently used sessions evicted: %v", rec.events)
	}
	evicted := map[string]bool{}
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Kind == SessionClosed {
			evicted[e.Client] = true
		}
	}
	rec.mu.Unlock()
	for i, c := range cs {
		if was := evicted[c.LocalAddr().String()]; was != (i < 2) {
			t.Errorf("client %d (%s) evicted: %v", i, c.LocalAddr(), was)
		}
	}
	if n := rec.count(SessionsEvicting, ""); n != 1 {
		t.Errorf("%d eviction reports; want 1 for the incident", n)
	}
}

// TestUDPDenied: a denied client's datagrams are dropped and counted,
// and logged once a minute at most.
func TestUDPDenied(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	r, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d deny=127.0.0.1", srv.port()), "")
	c := udpClient(t, addr)
	for range 5 {
		c.Write([]byte("let me in"))
	}
	if !eventually(3*time.Second, func() bool { return r.Status()[0].RefusedACL == 5 }) {
		t.Errorf("refused: %+v; want 5", r.Status()[0])
	}
	if n := rec.count(ConnRefused, "denied by deny=127.0.0.1/32"); n != 1 {
		t.Errorf("%d refusal lines; want 1 for 5 datagrams", n)
	}
	if srv.got.Load() != 0 || rec.count(SessionOpened, "") != 0 {
		t.Error("a denied datagram reached the server")
	}
}

// TestUDPDataLog: with a data log, every datagram is an entry of its own,
// "Datagram from A to B", in the manual's hex format.
func TestUDPDataLog(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	dir := tempDir(t)
	r, addr, _ := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d", srv.port()), dir)
	c := udpClient(t, addr)
	for _, m := range []string{"first", "second"} {
		if _, err := exchangeDatagram(c, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	r.Shutdown(context.Background())
	logs, _ := filepath.Glob(filepath.Join(dir, "RL*.LOG"))
	if len(logs) != 1 {
		t.Fatalf("data logs: %v", logs)
	}
	data, _ := os.ReadFile(logs[0])
	text := string(data)
	client, server := c.LocalAddr().String(), srv.conn.LocalAddr().String()
	for want, n := range map[string]int{
		" Datagram from " + client + " to " + server + "\n": 2,
		" Datagram from " + server + " to " + client + "\n": 2,
		" 66 69 72 73 74 ":    2, // "first", out and back
		" 73 65 63 6F 6E 64 ": 2, // "second"
	} {
		if got := strings.Count(strings.ReplaceAll(text, "\r\n", "\n"), want); got != n {
			t.Errorf("data log has %q %d times; want %d:\n%s", want, got, n, text)
		}
	}
	if n := strings.Count(text, " Datagram from "); n != 4 {
		t.Errorf("%d entries; want 4 (2 datagrams each way):\n%s", n, text)
	}
}

// TestTCPAndUDPOnOnePort: a TCP route and a UDP route share a port.
func TestTCPAndUDPOnOnePort(t *testing.T) {
	srv := newUDPEchoServer(t, "udp:")
	tcpEcho := echoServer(t)
	port := freePort(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	for id, text := range []string{fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d", port, portOf(tcpEcho.Addr())),
		fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d proto=udp", port, srv.port())} {
		spec, err := ParseRouteSpec(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(id, spec.Route()); err != nil {
			t.Fatalf("start %q: %v", text, err)
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	roundTrip(t, addr, "over tcp")
	if got, err := exchangeDatagram(udpClient(t, addr), []byte("over udp")); err != nil || string(got) != "udp:over udp" {
		t.Errorf("over udp: %q, %v", got, err)
	}
}

// TestUDPUpdate: a UDP route changed in place keeps its socket and its
// sessions (they go on with their backend); new sessions use the change.
func TestUDPUpdate(t *testing.T) {
	a, b := newUDPEchoServer(t, "A:"), newUDPEchoServer(t, "B:")
	r, addr, _ := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d", a.port()), "")
	old := udpClient(t, addr)
	if got, err := exchangeDatagram(old, []byte("x")); err != nil || string(got) != "A:x" {
		t.Fatalf("before: %q, %v", got, err)
	}
	spec, _ := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d proto=udp", b.port()))
	rt := spec.Route()
	rt.ListenAddr = "127.0.0.1:0"
	if ok, err := r.Update(0, rt); !ok || err != nil {
		t.Fatalf("update: %v, %v", ok, err)
	}
	if r.Addr(0).String() != addr {
		t.Errorf("the route moved to %s from %s", r.Addr(0), addr)
	}
	if got, err := exchangeDatagram(old, []byte("y")); err != nil || string(got) != "A:y" {
		t.Errorf("the open session after the update: %q, %v; want its backend A", got, err)
	}
	if got, err := exchangeDatagram(udpClient(t, addr), []byte("z")); err != nil || string(got) != "B:z" {
		t.Errorf("a new session after the update: %q, %v; want B", got, err)
	}
}

// TestUDPFailureNamesLastBackend: a session for which no backend could be
// connected is logged with the last backend tried, as TCP's Failed line
// is, not the route's first backend.
func TestUDPFailureNamesLastBackend(t *testing.T) {
	needUDP(t)
	// A link-local address without its interface cannot be connected to:
	// both backends fail at once, in the written order.
	r, addr, rec := startUDPRoute(t, "fe80::1 9 also=[fe80::1]:10 balance=first", "")
	udpClient(t, addr).Write([]byte("anyone?"))
	if !eventually(3*time.Second, func() bool { return r.Status()[0].Failed == 1 }) {
		t.Fatalf("failed: %+v; want 1", r.Status()[0])
	}
	if n := rec.countTo(ConnFailed, "[fe80::1]:10/udp"); n != 1 {
		t.Errorf("%d Failed lines naming [fe80::1]:10/udp; want 1 (events %v)", n, rec.events)
	}
}
