package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"
)

// busyEnv, set in a child's environment, makes TestBusyLoopHelper spin
// until killed: a process that keeps a core busy.
const busyEnv = "RELAYTCP_TEST_BUSY"

// TestBusyLoopHelper is not a test: it is the busy process of keepCoresBusy.
func TestBusyLoopHelper(t *testing.T) {
	if os.Getenv(busyEnv) != "1" {
		t.Skip("the busy process of other tests (runs with " + busyEnv + "=1)")
	}
	deadline := time.Now().Add(5 * time.Minute) // bounded, in case nobody kills it
	for time.Now().Before(deadline) {
	}
}

// keepCoresBusy starts one busy process per core (the test binary again,
// as TestBusyLoopHelper), killed when the test ends.
func keepCoresBusy(t *testing.T) {
	for range runtime.NumCPU() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBusyLoopHelper$")
		cmd.Env = append(os.Environ(), busyEnv+"=1")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a busy process: %v", err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
}

// burstResult is what the clients of a burst got back.
type burstResult struct {
	answered, crossed int
}

// udpBurst makes n clients, each with a socket of its own, send one
// datagram of their own to addr at the same moment (all released by
// closing one channel), and wait up to wait for its answer.
func udpBurst(t *testing.T, addr string, n int, wait time.Duration) burstResult {
	conns := make([]*net.UDPConn, n)
	for i := range conns {
		conns[i] = udpClient(t, addr)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var res burstResult
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("burst client %d", i)
			<-start
			if _, err := c.Write([]byte(msg)); err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(wait))
			buf := make([]byte, 256)
			got, err := c.Read(buf)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
			case string(buf[:got]) == msg:
				res.answered++
			default:
				res.crossed++
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // every client waits at the barrier
	close(start)
	wg.Wait()
	return res
}

// bigRcvBuf gives a test's own socket c a receive buffer of n bytes, so
// that it is not the one that drops; or skips the test where the system
// will not.
func bigRcvBuf(t *testing.T, c *net.UDPConn, n int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var granted int
	raw.Control(func(fd uintptr) { granted, _, err = setRcvBuf(fd, n) })
	if err != nil || granted < n {
		t.Skipf("the test's server cannot get a receive buffer of %s (%s granted, %v): run as root", bufferSize(n), bufferSize(granted), err)
	}
}

// TestUDPBurst: 1,000 clients each send one datagram at the same moment
// while other processes keep every core busy: with the default receive
// buffer each gets its own answer and the route drops nothing; with
// rcvbuf=4K the route's socket overflows, and its drop count is exactly
// the datagrams that did not reach the server.
func TestUDPBurst(t *testing.T) {
	const clients = 1000
	keepCoresBusy(t)
	for _, tt := range []struct {
		opts  string
		drops bool
		wait  time.Duration
	}{{"", false, 30 * time.Second}, {"rcvbuf=4K", true, 10 * time.Second}} {
		srv := newUDPEchoServer(t, "")
		bigRcvBuf(t, srv.conn, 4<<20)
		r, addr, _ := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d %s", srv.port(), tt.opts), "")
		res := udpBurst(t, addr, clients, tt.wait)
		got := srv.got.Load()
		rs := r.Status()[0]
		lost := clients - got
		if res.crossed != 0 || int64(res.answered) != got {
			t.Errorf("%q: %d clients got their own answer, %d another's; the server got %d datagrams", tt.opts, res.answered, res.crossed, got)
		}
		if n := dropsOf(srv.conn); n != 0 {
			t.Fatalf("%q: the test's server dropped %d datagrams: the counts below mean nothing", tt.opts, n)
		}
		if rs.QueueDrops != lost || rs.BackendDrops != 0 || rs.CapDrops != 0 {
			t.Errorf("%q: the route counts %d queue drops (%d backend, %d maxconn); %d datagrams did not reach the server",
				tt.opts, rs.QueueDrops, rs.BackendDrops, rs.CapDrops, lost)
		}
		if tt.drops != (lost > 0) {
			t.Errorf("%q: %d of %d datagrams lost", tt.opts, lost, clients)
		}
		t.Logf("%q: %d of %d answered, %d dropped", tt.opts, res.answered, clients, rs.QueueDrops)
	}
}
