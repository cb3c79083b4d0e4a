package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestEngineSocketOptions: both of the relay's sockets of a connection have
// TCP_NODELAY and keepalive (first probe after keepAlive.Idle): the remote
// one set at dial, the client one inherited from the listener.
func TestEngineSocketOptions(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	addr := startRoute(t, r, 0, echo.Addr())
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	relayPort, echoPort := portOf(r.Addr(0)), portOf(echo.Addr())
	clientPort := portOf(c.LocalAddr())

	// The relay runs in this process: find its two sockets among ours.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		local, err1 := unix.Getsockname(fd)
		peer, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil {
			continue
		}
		var side string
		switch {
		case sockPort(local) == relayPort && sockPort(peer) == clientPort:
			side = "client side"
		case sockPort(peer) == echoPort: // the echo server's sockets have it as local port
			side = "remote side"
		default:
			continue
		}
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAlive.Idle / time.Second)},
		} {
			got, err := unix.GetsockoptInt(fd, o.level, o.opt)
			if err != nil || got != o.want {
				t.Errorf("%s socket: %s = %d (%v), want %d", side, o.name, got, err, o.want)
			}
		}
		found[side] = true
	}
	if !found["client side"] || !found["remote side"] {
		t.Fatalf("relay sockets not found: %v", found)
	}
}

// sockPort returns the port of an IP socket address, or 0.
func sockPort(sa unix.Sockaddr) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

// TestEngineDataAndEndTogether: a short message and the client's FIN that
// arrive together are both passed on (the engine skips the read after a
// short one only until the peer's end has been reported), in many rounds.
func TestEngineDataAndEndTogether(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	addr := startRoute(t, r, 0, echo.Addr())
	for i := range 200 {
		c := dialTCP(t, addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := randomBytes(uint64(i), 1+i*7)
		// One write and the FIN right after: they often arrive together.
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round %d: got %d bytes (%v), want the %d sent, then EOF", i, len(got), err, len(msg))
		}
	}
}

// TestEngineReportsAddresses: the engine reads the client's address from
// the kernel's socket address itself (rawAccept4) and connects with one it
// builds (rawConnect). A route on all interfaces reports an IPv4 client
// unmapped and an IPv6 client as such, an IPv4 route its clients, and both
// the remote side as dialled.
func TestEngineReportsAddresses(t *testing.T) {
	ln6 := echoServer6(t)
	opened := make(chan Event, 4)
	r := &Relay{Events: func(e Event) {
		if e.Kind == ConnOpened {
			opened <- e
		}
	}}
	defer r.Shutdown(context.Background())
	for id, listen := range []string{":0", "127.0.0.1:0"} {
		rt := Route{ListenAddr: listen, RemoteHost: "::1", RemotePort: portOf(ln6.Addr())}
		if err := r.Start(id, rt); err != nil {
			t.Fatal(err)
		}
	}
	dualPort, v4Port := strconv.Itoa(portOf(r.Addr(0))), strconv.Itoa(portOf(r.Addr(1)))
	for _, addr := range []string{
		net.JoinHostPort("127.0.0.1", dualPort),
		net.JoinHostPort("::1", dualPort),
		net.JoinHostPort("127.0.0.1", v4Port),
	} {
		c := dialTCP(t, addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("via %s: %v", addr, err)
		}
		select {
		case e := <-opened:
			if e.Client != c.LocalAddr().String() {
				t.Errorf("client reported as %q; it is %q", e.Client, c.LocalAddr())
			}
			if e.Remote != ln6.Addr().String() {
				t.Errorf("remote reported as %q; it is %q", e.Remote, ln6.Addr())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no opened event for the client via %s", addr)
		}
		c.Close()
	}
}

// TestNetworkPort: ports go to and from network byte order.
func TestNetworkPort(t *testing.T) {
	for _, p := range []uint16{0, 1, 80, 0x1234, 65535} {
		b := (*[2]byte)(unsafe.Pointer(new(uint16)))
		*(*uint16)(unsafe.Pointer(b)) = networkPort(p)
		if got := uint16(b[0])<<8 | uint16(b[1]); got != p {
			t.Errorf("networkPort(%d) is stored as %d in network order", p, got)
		}
		if back := networkPort(networkPort(p)); back != p {
			t.Errorf("networkPort twice turns %d into %d", p, back)
		}
	}
}

// TestEnginesLeaveAProcessor: busy engines keep their Ps, so a relay with
// engines runs with one P more than it has engines for everything else,
// even when GOMAXPROCS was set back to the engines' count since the first
// relay (as go test does between a benchmark's runs).
func TestEnginesLeaveAProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(engineCount()))
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	startRoute(t, r, 0, echo.Addr())
	r.mu.Lock()
	n := len(r.engines)
	r.mu.Unlock()
	if n == 0 {
		t.Fatal("no engines on Linux")
	}
	if procs := runtime.GOMAXPROCS(0); procs <= n {
		t.Errorf("GOMAXPROCS %d with %d engines; want at least %d", procs, n, n+1)
	}
}

// TestStoppedRoutesCloseTheirSockets: when Stop or Retire returns, the
// route's listening socket is closed: the port can be bound again even
// without SO_REUSEADDR, and no descriptor is left.
func TestStoppedRoutesCloseTheirSockets(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	startRoute(t, r, 0, echo.Addr()) // the engines' own descriptors
	r.Stop(context.Background(), 0)
	// Earlier tests' descriptors may still be closing: the count to come
	// back to is the settled one.
	base := openFDs(t)
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		n := openFDs(t)
		if n == base {
			break
		}
		base = n
	}
	addrs := make([]string, 20)
	for i := range addrs {
		addrs[i] = startRoute(t, r, i, echo.Addr())
	}
	for i, addr := range addrs {
		if i%2 == 0 {
			r.Stop(context.Background(), i)
		} else {
			r.Retire(i)
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: portOf(mustResolve(t, addr)), Addr: [4]byte{127, 0, 0, 1}})
		unix.Close(fd)
		if err != nil {
			t.Fatalf("binding route %d's port, without SO_REUSEADDR, right after it stopped: %v", i, err)
		}
	}
	if n := openFDs(t); n > base {
		t.Fatalf("%d descriptors open after the routes stopped; %d before they started", n, base)
	}
}

// mustResolve parses a literal ip:port.
func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestFlowRecordSize: an idle connection on the engine holds its flow
// record and two sockets; the record stays in the 320-byte size class
// (what it needs while connecting is a separate connAttempt, dropped once
// connected).
func TestFlowRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(flow{}); n > 320 {
		t.Errorf("the flow record is %d bytes; it was 312 (idle memory per connection: docs/performance.md)", n)
	}
}

// pacedFlows counts the flows the relay's engines pace, each in its own
// loop's turn.
func pacedFlows(t *testing.T, r *Relay) int {
	t.Helper()
	r.mu.Lock()
	engines := r.engines
	r.mu.Unlock()
	total := 0
	for _, e := range engines {
		n := make(chan int, 1)
		if !e.submit(func() { n <- len(e.paces) }) {
			t.Fatal("an engine refused the count")
		}
		select {
		case c := <-n:
			total += c
		case <-time.After(5 * time.Second):
			t.Fatal("an engine did not count its paced flows in 5 s")
		}
	}
	return total
}

// TestEnginePacingEndsWithFlows: the engine paces a capped route's flows
// itself (none goes to the goroutine relay) and forgets their pacing when
// they end. The clients reset their connections while most flows wait for
// a chunk: what they sent before is still delivered, at the route's rate,
// then the flows end.
func TestEnginePacingEndsWithFlows(t *testing.T) {
	sink, got := countingSink(t)
	r := &Relay{}
	rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(sink.Addr()), Limits: Limits{Rate: 64 << 10}}
	if err := r.Start(1, rt); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(t.Context())
	const each = 8 << 10 // 20 of them: 2.5 s at 64K, 12 times the route's burst
	var conns []*net.TCPConn
	for range 20 {
		c := dialTCP(t, r.Addr(1).String())
		defer c.Close()
		if _, err := c.Write(make([]byte, each)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if !eventually(5*time.Second, func() bool { return pacedFlows(t, r) == 20 }) {
		t.Fatalf("%d flows paced by the engines; want the 20 connections", pacedFlows(t, r))
	}
	if got.Load() >= 20*each {
		t.Errorf("the sink got all %d bytes at once under rate=64K", got.Load())
	}
	for _, c := range conns {
		c.SetLinger(0)
		c.Close()
	}
	if !eventually(15*time.Second, func() bool { return pacedFlows(t, r) == 0 && r.Status()[1].Open == 0 }) {
		t.Errorf("%d flows still paced, %d open, 15 s after every connection was reset", pacedFlows(t, r), r.Status()[1].Open)
	}
	if n := got.Load(); n != 20*each {
		t.Errorf("the sink got %d bytes; want all %d the clients sent before their reset", n, 20*each)
	}
}
