package main

import (
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// startRoute starts a route on a free loopback port in r and returns its
// address.
func startRoute(t *testing.T, r *Relay, id int, remote net.Addr) string {
	t.Helper()
	ta := remote.(*net.TCPAddr)
	rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: ta.IP.String(), RemotePort: ta.Port}
	if err := r.Start(id, rt); err != nil {
		t.Fatalf("start route %d: %v", id, err)
	}
	return r.Addr(id).String()
}

// roundTrip sends msg through addr to an echo server and checks the echo.
func roundTrip(t *testing.T, addr, msg string) {
	t.Helper()
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(msg))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("via %s got %q, %v; want %q", addr, got, err, msg)
	}
}

// TestRelayRoutesIndependent: stopping one route leaves the others running,
// including their open connections.
func TestRelayRoutesIndependent(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	a := startRoute(t, r, 0, echo.Addr())
	b := startRoute(t, r, 1, echo.Addr())
	if err := r.Start(1, Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: 1}); err == nil {
		t.Fatal("starting route 1 twice succeeded")
	}

	open := dialTCP(t, a) // a connection on route 0 stays open throughout
	defer open.Close()
	open.SetDeadline(time.Now().Add(10 * time.Second))
	open.Write([]byte("one"))
	io.ReadFull(open, make([]byte, 3))

	r.Stop(context.Background(), 1)
	if c, err := net.DialTimeout("tcp", b, time.Second); err == nil {
		c.Close()
		t.Fatalf("route 1 still accepts after Stop")
	}
	roundTrip(t, a, "route 0 still works")
	open.Write([]byte("two"))
	if _, err := io.ReadFull(open, make([]byte, 3)); err != nil {
		t.Fatalf("open connection on route 0 broken by stopping route 1: %v", err)
	}
	// A stopped route can start again.
	b = startRoute(t, r, 1, echo.Addr())
	roundTrip(t, b, "route 1 again")
}

// TestRelayShutdownDrains: Shutdown lets open connections finish until its
// context ends, then closes them.
func TestRelayShutdownDrains(t *testing.T) {
	echo := echoServer(t)
	var mu sync.Mutex
	var closed []Event
	r := &Relay{Events: func(e Event) {
		if e.Kind == ConnClosed {
			mu.Lock()
			closed = append(closed, e)
			mu.Unlock()
		}
	}}
	addr := startRoute(t, r, 0, echo.Addr())
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		r.Shutdown(ctx)
		close(done)
	}()
	time.Sleep(100 * time.Millisecond)
	c.Write([]byte("y")) // still relayed during the drain
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("no relay during the drain: %v", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("Shutdown returned after %v; want the 300ms drain", d)
	}
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Error("connection still open after Shutdown")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(closed) != 1 || closed[0].Err != errStopped || closed[0].Sent != 2 || closed[0].Received != 2 {
		t.Errorf("closed events %+v; want one, reason %v, 2 bytes each way", closed, errStopped)
	}
}

// openFDs counts the process's open file descriptors (Linux only).
func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(entries)
}

// TestNoLeaksAfterManyConnections: after 10,000 relayed connections, the
// goroutine and file descriptor counts are back where they started.
func TestNoLeaksAfterManyConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts fds through /proc/self/fd, which only Linux has")
	}
	echo := echoServer(t)
	r := &Relay{}
	addr := startRoute(t, r, 0, echo.Addr())
	roundTrip(t, addr, "warm up")
	time.Sleep(50 * time.Millisecond)
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range 10000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := "connection " + strconv.Itoa(i)
			c.Write([]byte(msg))
			if i%2 == 0 {
				c.(*net.TCPConn).CloseWrite()
				io.ReadAll(c)
			} else {
				io.ReadFull(c, make([]byte, len(msg))) // then close without half-close
			}
		}()
	}
	wg.Wait()
	ok := eventually(10*time.Second, func() bool {
		// Go keeps spare splice pipes in a pool until a GC closes them.
		runtime.GC()
		return r.Active() == 0 && runtime.NumGoroutine() <= baseG && openFDs(t) <= baseFD
	})
	if !ok {
		t.Fatalf("after 10,000 connections: %d active, goroutines %d (baseline %d), fds %d (baseline %d)",
			r.Active(), runtime.NumGoroutine(), baseG, openFDs(t), baseFD)
	}
	r.Shutdown(context.Background())
}

// TestRelayIPv6 relays to an IPv6 remote (::1) from a route listening on all
// interfaces, reached over IPv6 and IPv4.
func TestRelayIPv6(t *testing.T) {
	ln6 := echoServer6(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	rt := Route{ListenAddr: ":0", RemoteHost: "::1", RemotePort: portOf(ln6.Addr())}
	if err := r.Start(0, rt); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(portOf(r.Addr(0)))
	roundTrip(t, net.JoinHostPort("::1", port), "over IPv6")
	roundTrip(t, net.JoinHostPort("127.0.0.1", port), "over IPv4")
}

// TestRelayDialsByName: a route whose remote is a name dials that name.
func TestRelayDialsByName(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: "localhost", RemotePort: portOf(echo.Addr())}
	if err := r.Start(0, rt); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, r.Addr(0).String(), "by name")
}

// TestIdleConnectionsHoldNoPipes: an idle relayed connection costs the relay
// its two sockets only, no splice pipes (Linux, where the engine relays it).
func TestIdleConnectionsHoldNoPipes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the relay engine is Linux only; counts fds through /proc/self/fd")
	}
	// An echo server that does not splice, so that only the relay could
	// hold pipes.
	echo := newLocalListener(t)
	serveEach(echo, func(c *net.TCPConn) {
		defer c.Close()
		io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 32<<10))
	})
	r := &Relay{}
	defer r.Shutdown(context.Background())
	addr := startRoute(t, r, 0, echo.Addr())
	roundTrip(t, addr, "warm up")
	time.Sleep(50 * time.Millisecond)
	base := openFDs(t)
	const n = 100
	for i := range n {
		c := dialTCP(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// A large message makes the direction take the bulk (splice) path
		// before it goes idle, so pipes would show if they were kept.
		msg := randomBytes(uint64(i), 100_000)
		go c.Write(msg)
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	// Wait out the splice grace period, and let the GC close the pipes that
	// Go's splice keeps in its pool once no connection holds them.
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	// Per connection: the test's client and server sockets, and the relay's two.
	if got := openFDs(t) - base; got > 4*n+10 {
		t.Fatalf("%d idle connections hold %d fds; want at most %d (4 per connection, no pipes)", n, got, 4*n+10)
	}
}

// TestRelayRetireLetsConnectionsFinish: a retired route stops accepting at
// once and frees its port, while its open connections go on until
// Shutdown.
func TestRelayRetireLetsConnectionsFinish(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	addr := startRoute(t, r, 0, echo.Addr())
	open := dialTCP(t, addr)
	defer open.Close()
	open.SetDeadline(time.Now().Add(10 * time.Second))
	open.Write([]byte("a"))
	io.ReadFull(open, make([]byte, 1))

	r.Retire(0)
	// The same port can be listened on again at once.
	ta := echo.Addr().(*net.TCPAddr)
	if err := r.Start(0, Route{ListenAddr: addr, RemoteHost: "127.0.0.1", RemotePort: ta.Port}); err != nil {
		t.Fatalf("restart on the retired port: %v", err)
	}
	roundTrip(t, addr, "new listener")
	open.Write([]byte("b"))
	if _, err := io.ReadFull(open, make([]byte, 1)); err != nil {
		t.Fatalf("connection of the retired route broken: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r.Shutdown(ctx)
	if _, err := io.ReadAll(open); isTimeout(err) {
		t.Fatal("Shutdown left the retired route's connection open")
	}
}

// TestRetireFromEvents: an Events callback hands a Retire of the route it
// reports on to another goroutine (it may not call the Relay itself); the
// route stops accepting, its port can be listened on again, and the
// connection goes on.
func TestRetireFromEvents(t *testing.T) {
	echo := echoServer(t)
	retired := make(chan struct{})
	r := &Relay{}
	r.Events = func(e Event) {
		if e.Kind == ConnOpened && e.Route == 0 {
			go func() {
				r.Retire(0)
				close(retired)
			}()
		}
	}
	defer r.Shutdown(context.Background())
	addr := startRoute(t, r, 0, echo.Addr())
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	select {
	case <-retired:
	case <-time.After(10 * time.Second):
		t.Fatal("Retire did not return")
	}
	if !echoes(c) {
		t.Fatal("the connection stopped being relayed when its route was retired")
	}
	if c2, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c2.Close()
		t.Fatalf("%s still accepts after Retire", addr)
	}
	rt := Route{ListenAddr: addr, RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr())}
	if err := r.Start(1, rt); err != nil {
		t.Fatalf("listening again on the retired route's port: %v", err)
	}
	roundTrip(t, addr, "on the port again")
}
