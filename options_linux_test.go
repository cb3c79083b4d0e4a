package main

import (
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unansweringServer returns a loopback port whose listener never accepts and
// whose accept queue is full, so that a connect there hangs.
func unansweringServer(t *testing.T) int {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for range 4 { // fill the accept queue; later SYNs are dropped
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel still accepts connections on a full queue")
	}
	return port
}

// TestConnectTimeout: connect= bounds the dial to a remote side that does
// not answer; the client is closed and the failure reported.
func TestConnectTimeout(t *testing.T) {
	port := unansweringServer(t)
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	startSpec(t, r, "127.0.0.1:"+strconv.Itoa(freePort(t))+" 127.0.0.1 "+strconv.Itoa(port)+" connect=300ms")
	c := dialTCP(t, r.Addr(0).String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatal("client not closed after the connect timeout")
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("client closed after %v; want about the 300ms connect timeout", d)
	}
	if !eventually(2*time.Second, func() bool { return rec.count(ConnFailed, "i/o timeout") == 1 }) {
		t.Errorf("want one Failed event with a timeout: %+v", rec.events)
	}
}

// TestDescriptorExhaustion: with the descriptor limit below the load,
// accepting fails, is reported once, backs off, and recovers when
// connections close; the relay never dies.
func TestDescriptorExhaustion(t *testing.T) {
	echo := echoServer(t)
	port := freePort(t)
	p := startProcWith(t, tempDir(t), func(cmd *exec.Cmd) {
		// dash's ulimit sets the hard limit too, so Go cannot raise it.
		cmd.Args = append([]string{"sh", "-c", `ulimit -n 40 && exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = "/bin/sh"
	}, strconv.Itoa(port), "127.0.0.1", strconv.Itoa(portOf(echo.Addr())), "-q")
	if err := p.waitLine("Ready to relay data to ", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.output())
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var conns []net.Conn
	for range 40 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	incident := func() int {
		return strings.Count(strings.Join(p.stderrLines(), "\n"), "Accept error on route 0, backing off")
	}
	if !eventually(5*time.Second, func() bool { return incident() == 1 }) {
		t.Fatalf("want one accept error line; output:\n%s", p.output())
	}
	for _, c := range conns {
		c.Close()
	}
	if !eventually(10*time.Second, func() bool {
		return strings.Contains(strings.Join(p.stderrLines(), "\n"), "Accept recovered on route 0 after")
	}) {
		t.Fatalf("no recovery line:\n%s", p.output())
	}
	roundTrip(t, addr, "after the storm")
	if n := incident(); n != 1 {
		t.Errorf("%d accept error lines for one incident; want 1", n)
	}
	select {
	case <-p.done:
		t.Fatalf("relay exited:\n%s", p.output())
	default:
	}
}
