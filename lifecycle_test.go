package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLifecycle runs every rule of a connection's lifecycle (lifecycle.go)
// on the engine and on the goroutine relay, and on a UDP session where the
// rule applies to UDP: the relays share them, so each must show the same.
func TestLifecycle(t *testing.T) {
	for _, rule := range []struct {
		name string
		tcp  func(t *testing.T, kind relayKind)
		udp  func(t *testing.T) // nil: the rule is TCP's alone
	}{
		{"refused by deny=", lifeDeniedTCP, lifeDeniedUDP},
		{"refused at maxconn=", lifeCapTCP, nil},
		{"deny= applies to the client a PROXY header names", lifeHeaderDeniedTCP, nil},
		{"a LOCAL PROXY header keeps the connecting proxy as the client", lifeLocalHeaderTCP, nil},
		{"no valid PROXY header is a refusal", lifeNoHeaderTCP, nil},
		{"the next backend when one does not answer", lifeRetryTCP, nil},
		{"no backend answers: Failed names the last one tried", lifeNoBackendTCP, lifeNoBackendUDP},
		{"every backend disabled: Failed names the route's remote address", lifeAllDisabledTCP, lifeAllDisabledUDP},
		{"opened and closed, with the bytes and why", lifeOpenCloseTCP, lifeOpenCloseUDP},
		{"the idle timeout ends a quiet connection", lifeIdleTCP, lifeIdleUDP},
		{"the PROXY header sent names the client", lifeHeaderSentTCP, nil},
	} {
		t.Run(rule.name, func(t *testing.T) {
			forRelays(t, rule.tcp)
			if rule.udp != nil {
				t.Run("udp", rule.udp)
			}
		})
	}
}

// refusedAtOnce reports whether the relay at addr closes a new client
// without a byte (its reset may come before the connect returns).
func refusedAtOnce(t *testing.T, addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return strings.Contains(err.Error(), "reset")
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 10))
	return n == 0 && err != nil
}

func lifeDeniedTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d deny=127.0.0.0/8", b.port))
	if !refusedAtOnce(t, addr) {
		t.Error("a denied client was not closed at once")
	}
	if !eventually(5*time.Second, func() bool { return rec.count(ConnRefused, "denied by deny=127.0.0.0/8") == 1 }) {
		t.Errorf("no Refused line: %v", rec.events)
	}
	if st := r.Status()[0]; st.RefusedACL != 1 || b.accepted.Load() != 0 {
		t.Errorf("refused by ACL %d, backend accepted %d; want 1 and 0", st.RefusedACL, b.accepted.Load())
	}
}

func lifeDeniedUDP(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	r, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d deny=127.0.0.0/8", srv.port()), "")
	udpClient(t, addr).Write([]byte("let me in"))
	if !eventually(5*time.Second, func() bool { return rec.count(ConnRefused, "denied by deny=127.0.0.0/8") == 1 }) {
		t.Errorf("no Refused line: %v", rec.events)
	}
	if st := r.Status()[0]; st.RefusedACL != 1 {
		t.Errorf("refused by ACL %d; want 1", st.RefusedACL)
	}
}

func lifeCapTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d maxconn=1", b.port))
	first := dialTCP(t, addr)
	defer first.Close()
	first.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(first, make([]byte, 2)); err != nil { // "B\n": it is relayed
		t.Fatalf("the first client: %v", err)
	}
	if !refusedAtOnce(t, addr) {
		t.Error("a client over maxconn=1 was not closed at once")
	}
	if !eventually(5*time.Second, func() bool { return rec.count(ConnRefused, "route has maxconn=1 open connections") == 1 }) {
		t.Errorf("no Refused line: %v", rec.events)
	}
	if st := r.Status()[0]; st.RefusedCap != 1 {
		t.Errorf("refused at the cap %d; want 1", st.RefusedCap)
	}
}

func lifeHeaderDeniedTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d acceptproxy=1 allow=127.0.0.1 deny=203.0.113.0/24", b.port))
	c := dialTCP(t, addr)
	defer c.Close()
	c.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nhello"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, _ := c.Read(make([]byte, 10)); n != 0 {
		t.Errorf("a client its header names as denied got %d bytes", n)
	}
	if !eventually(5*time.Second, func() bool { return rec.countClient(ConnRefused, "203.0.113.7:40000") == 1 }) {
		t.Errorf("no Refused line for the header's client: %v", rec.events)
	}
	if st := r.Status()[0]; st.RefusedACL != 1 || b.accepted.Load() != 0 {
		t.Errorf("refused by ACL %d, backend accepted %d; want 1 and 0", st.RefusedACL, b.accepted.Load())
	}
}

// lifeLocalHeaderTCP: a LOCAL header (a proxy's health check) names no
// client: the connecting proxy is the client, which allow= and deny=
// admitted when it was accepted, and deny= is not asked again.
func lifeLocalHeaderTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d acceptproxy=1 allow=127.0.0.1 deny=203.0.113.0/24", b.port))
	local := append(append([]byte(nil), proxyV2Signature...), 0x20, 0x00, 0x00, 0x00)
	c := dialTCP(t, addr)
	defer c.Close()
	c.Write(append(local, "ping\n"...))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "B\nping\n" {
		t.Errorf("after a LOCAL header: %q, %v", buf, err)
	}
	peer := c.LocalAddr().String()
	if !eventually(5*time.Second, func() bool { return rec.countClient(ConnOpened, peer) == 1 }) {
		t.Errorf("the connecting proxy %s is not the client logged: %v", peer, rec.events)
	}
}

func lifeNoHeaderTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d acceptproxy=1", b.port))
	c := dialTCP(t, addr)
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, _ := c.Read(make([]byte, 10)); n != 0 {
		t.Errorf("a client without a header got %d bytes", n)
	}
	if !eventually(5*time.Second, func() bool { return rec.count(ConnRefused, "no PROXY header") == 1 }) {
		t.Errorf("no Refused line: %v", rec.events)
	}
	if st := r.Status()[0]; st.RefusedProxy != 1 {
		t.Errorf("refused for the header %d; want 1", st.RefusedProxy)
	}
}

// deadPort is a loopback port nothing listens on (a moment ago).
func deadPort(t *testing.T) int {
	ln := newLocalListener(t)
	port := portOf(ln.Addr())
	ln.Close()
	return port
}

func lifeRetryTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	dead := deadPort(t)
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s balance=first", dead, b.addr()))
	if name, err := whichBackend(addr, ""); err != nil || name != "B" {
		t.Fatalf("through a dead first backend: %q, %v", name, err)
	}
	if !eventually(5*time.Second, func() bool { return rec.countTo(ConnOpened, b.addr()) == 1 }) {
		t.Errorf("Opened does not name the backend that answered: %v", rec.events)
	}
	st := r.Status()[0]
	if st.Failed != 0 || st.Backends[0].Failed != 1 || st.Backends[1].Total != 1 {
		t.Errorf("failed %d, first backend's failed %d, second's total %d; want 0, 1, 1", st.Failed, st.Backends[0].Failed, st.Backends[1].Total)
	}
}

func lifeNoBackendTCP(t *testing.T, kind relayKind) {
	dead1, dead2 := deadPort(t), deadPort(t)
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=127.0.0.1:%d balance=first", dead1, dead2))
	if !refusedAtOnce(t, addr) {
		t.Error("a client no backend answered for was not closed")
	}
	last := fmt.Sprintf("127.0.0.1:%d", dead2)
	if !eventually(5*time.Second, func() bool { return rec.countTo(ConnFailed, last) == 1 }) {
		t.Errorf("no Failed line naming %s: %v", last, rec.events)
	}
	if rec.count(ConnFailed, "no backend answered (2 tried)") != 1 {
		t.Errorf("the Failed line does not count the backends tried: %v", rec.events)
	}
	if st := r.Status()[0]; st.Failed != 1 {
		t.Errorf("failed %d; want 1", st.Failed)
	}
}

func lifeNoBackendUDP(t *testing.T) {
	needUDP(t)
	// A link-local address without its interface cannot be connected to.
	r, addr, rec := startUDPRoute(t, "fe80::1 9 also=[fe80::1]:10 balance=first", "")
	udpClient(t, addr).Write([]byte("anyone?"))
	if !eventually(5*time.Second, func() bool { return rec.countTo(ConnFailed, "[fe80::1]:10/udp") == 1 }) {
		t.Errorf("no Failed line naming [fe80::1]:10/udp: %v", rec.events)
	}
	if st := r.Status()[0]; st.Failed != 1 {
		t.Errorf("failed %d; want 1", st.Failed)
	}
}

func lifeAllDisabledTCP(t *testing.T, kind relayKind) {
	b := newTestBackend(t, "B")
	r, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d", b.port))
	if _, _, err := r.SetBackendDisabled(0, b.addr(), true); err != nil {
		t.Fatal(err)
	}
	if !refusedAtOnce(t, addr) {
		t.Error("a client with every backend disabled was not closed")
	}
	if !eventually(5*time.Second, func() bool { return rec.countTo(ConnFailed, b.addr()) == 1 }) {
		t.Errorf("no Failed line naming the route's remote address %s: %v", b.addr(), rec.events)
	}
	if rec.count(ConnFailed, "every one is disabled") != 1 {
		t.Errorf("the Failed line does not say why: %v", rec.events)
	}
}

func lifeAllDisabledUDP(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	backend := fmt.Sprintf("127.0.0.1:%d", srv.port())
	r, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d", srv.port()), "")
	if _, _, err := r.SetBackendDisabled(0, backend, true); err != nil {
		t.Fatal(err)
	}
	udpClient(t, addr).Write([]byte("anyone?"))
	if !eventually(5*time.Second, func() bool { return rec.countTo(ConnFailed, backend+"/udp") == 1 }) {
		t.Errorf("no Failed line naming %s/udp: %v", backend, rec.events)
	}
}

func lifeOpenCloseTCP(t *testing.T, kind relayKind) {
	echo := echoServer(t)
	rec := &eventRecorder{}
	r := kind.newRelay(rec.record)
	t.Cleanup(func() { r.Shutdown(t.Context()) })
	addr := startRoute(t, r, 0, echo.Addr())
	roundTrip(t, addr, "hello")
	if !eventually(5*time.Second, func() bool { return rec.count(ConnClosed, "client closed") == 1 }) {
		t.Fatalf("no Closed line (client closed): %v", rec.events)
	}
	opened, closed := rec.first(ConnOpened), rec.first(ConnClosed)
	if opened.Remote != echo.Addr().String() || closed.Remote != opened.Remote || closed.Client != opened.Client {
		t.Errorf("opened %q, closed %q", opened.Message(), closed.Message())
	}
	if closed.Sent != 5 || closed.Received != 5 {
		t.Errorf("closed: %q; want 5 bytes each way", closed.Message())
	}
	if st := r.Status()[0]; st.Total != 1 || st.Open != 0 || st.Backends[0].Open != 0 {
		t.Errorf("total %d, open %d, backend's open %d; want 1, 0, 0", st.Total, st.Open, st.Backends[0].Open)
	}
}

func lifeOpenCloseUDP(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	r, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d idle=200ms", srv.port()), "")
	if got, err := exchangeDatagram(udpClient(t, addr), []byte("hello")); err != nil || string(got) != "hello" {
		t.Fatalf("exchange: %q, %v", got, err)
	}
	if !eventually(5*time.Second, func() bool { return rec.count(SessionClosed, "idle") == 1 }) {
		t.Fatalf("no session Closed line: %v", rec.events)
	}
	opened, closed := rec.first(SessionOpened), rec.first(SessionClosed)
	if opened.Remote != fmt.Sprintf("127.0.0.1:%d", srv.port()) || closed.Remote != opened.Remote || closed.Client != opened.Client {
		t.Errorf("opened %q, closed %q", opened.Message(), closed.Message())
	}
	if closed.Sent != 5 || closed.Received != 5 || closed.SentDatagrams != 1 {
		t.Errorf("closed: %q; want 1 datagram of 5 bytes each way", closed.Message())
	}
	if st := r.Status()[0]; st.Total != 1 || st.Open != 0 || st.Backends[0].Open != 0 {
		t.Errorf("total %d, open %d, backend's open %d; want 1, 0, 0", st.Total, st.Open, st.Backends[0].Open)
	}
}

func lifeIdleTCP(t *testing.T, kind relayKind) {
	echo := echoServer(t)
	_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d idle=300ms", portOf(echo.Addr())))
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err == nil {
		// A reset: the relay cut it.
	} else if !strings.Contains(err.Error(), "reset") {
		t.Errorf("the quiet connection ended with %v; want a reset", err)
	}
	if !eventually(5*time.Second, func() bool { return rec.count(ConnClosed, "idle timeout") == 1 }) {
		t.Errorf("no Closed line (idle timeout): %v", rec.events)
	}
}

func lifeIdleUDP(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	_, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d idle=200ms", srv.port()), "")
	udpClient(t, addr).Write([]byte("once"))
	if !eventually(5*time.Second, func() bool { return rec.count(SessionClosed, "idle") == 1 }) {
		t.Errorf("no session Closed line (idle): %v", rec.events)
	}
}

func lifeHeaderSentTCP(t *testing.T, kind relayKind) {
	b := newProxyBackend(t)
	_, addr, _ := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d proxy=v2", portOf(b.ln.Addr())))
	c := dialTCP(t, addr)
	defer c.Close()
	c.Write([]byte("hi"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatalf("echo after the header: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	client := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if len(b.parsed) != 1 || b.parsed[0].src != client || b.parsed[0].dst != c.RemoteAddr().(*net.TCPAddr).AddrPort() {
		t.Errorf("headers %+v; want one naming %v to %v", b.parsed, client, c.RemoteAddr())
	}
}
