package main

import (
	"fmt"
	"io"
	"net"
	"os"
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

// TestConnectTimeoutMovesToNextBackend: a backend that does not answer
// within connect= counts as failed, and the client goes on to the next one,
// its early bytes with it; in both relays.
func TestConnectTimeoutMovesToNextBackend(t *testing.T) {
	hang := unansweringServer(t)
	ln := newLocalListener(t)
	serveEach(ln, echo)
	forRelays(t, func(t *testing.T, kind relayKind) {
		_, addr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d also=%s balance=first connect=300ms fall=1", hang, ln.Addr()))
		for i := range 2 {
			c := dialTCP(t, addr)
			c.Write([]byte("early"))
			c.CloseWrite()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			got, err := io.ReadAll(c)
			c.Close()
			if err != nil || string(got) != "early" {
				t.Fatalf("connection %d: %q, %v; want the echo from the second backend", i, got, err)
			}
			took := time.Since(start)
			if i == 0 && (took < 250*time.Millisecond || took > 3*time.Second) {
				t.Errorf("first connection answered after %v; want about the 300ms connect timeout", took)
			}
			if i == 1 && took > 200*time.Millisecond {
				t.Errorf("second connection took %v: the backend that timed out should be down (fall=1)", took)
			}
		}
		down := rec.first(BackendDown)
		if down.Remote != "127.0.0.1:"+strconv.Itoa(hang) || down.Err == nil || down.Err.Error() != "connect: timed out" {
			t.Errorf("down event: %q", down.Message())
		}
	})
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
		return strings.Count(strings.Join(p.stderrLines(), "\n"), "Error on route 0, backing off")
	}
	if !eventually(5*time.Second, func() bool { return incident() >= 1 }) {
		t.Fatalf("want one error line for the incident; output:\n%s", p.output())
	}
	for _, c := range conns {
		c.Close()
	}
	// Once the errors have stopped for the quiet period, a relayed
	// connection ends the incident.
	time.Sleep(incidentQuiet + 200*time.Millisecond)
	roundTrip(t, addr, "after the storm")
	if !eventually(10*time.Second, func() bool {
		return strings.Contains(strings.Join(p.stderrLines(), "\n"), "Recovered on route 0 after")
	}) {
		t.Fatalf("no recovery line:\n%s", p.output())
	}
	// One Error line per incident, and each incident ended by one
	// Recovered line (a loaded machine may see more than one incident).
	recoveries := func() int {
		return strings.Count(strings.Join(p.stderrLines(), "\n"), "Recovered on route 0 after")
	}
	if !eventually(5*time.Second, func() bool { return incident() == recoveries() }) {
		t.Errorf("%d Error lines and %d Recovered lines; want one of each per incident", incident(), recoveries())
	}
	if n := strings.Count(strings.Join(p.stderrLines(), "\n"), " Failed "); n != 0 {
		t.Errorf("%d Failed lines during the incident; want none (one line per incident)", n)
	}
	select {
	case <-p.done:
		t.Fatalf("relay exited:\n%s", p.output())
	default:
	}
}

// vmRSS returns a process's resident memory in KiB.
func vmRSS(t *testing.T, pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestSlowReaderBoundedMemory: a server that does not read makes the relay
// push back on the client; the relay's memory does not grow with what the
// client tries to send.
func TestSlowReaderBoundedMemory(t *testing.T) {
	stalled := newLocalListener(t)
	done := make(chan struct{})
	defer close(done)
	serveEach(stalled, func(c *net.TCPConn) { // never reads
		<-done
		c.Close()
	})
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(stalled.Addr()), "-q")
	before := vmRSS(t, p.cmd.Process.Pid)
	c := dialTCP(t, p.addr())
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	chunk := make([]byte, 1<<20)
	sent := 0
	for sent < 512<<20 {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			break // the deadline: the relay stopped taking data
		}
	}
	growth := vmRSS(t, p.cmd.Process.Pid) - before
	if sent >= 512<<20 {
		t.Fatalf("the relay took all %d MiB from the client while the server read nothing", sent>>20)
	}
	if growth > 16<<10 {
		t.Fatalf("relay memory grew by %d KiB after the client pushed %d MiB at a server that reads nothing", growth, sent>>20)
	}
	t.Logf("client got %d MiB into the socket buffers; relay memory grew by %d KiB", sent>>20, growth)
}

// TestClientVanishes: a client that resets mid-stream makes the relay close
// the server's side at once.
func TestClientVanishes(t *testing.T) {
	ended := make(chan error, 1)
	server := newLocalListener(t)
	serveEach(server, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go c.Write(make([]byte, 1<<20)) // keep the down direction busy too
		_, err := io.Copy(io.Discard, c)
		ended <- err
	})
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(server.Addr()), "-q")
	c := dialTCP(t, p.addr())
	c.Write(make([]byte, 64<<10))
	time.Sleep(100 * time.Millisecond)
	c.SetLinger(0)
	c.Close() // RST
	select {
	case err := <-ended:
		if isTimeout(err) {
			t.Fatal("server side still open 10 s after the client vanished")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server side never closed")
	}
}

// TestStopWithThousandConnections: SIGTERM with 1,000 open connections ends
// within the drain time and closes every one of them.
func TestStopWithThousandConnections(t *testing.T) {
	echo := echoServer(t)
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(echo.Addr()), "-q", "-drain", "1s")
	var conns []*net.TCPConn
	for range 1000 {
		c := dialTCP(t, p.addr())
		defer c.Close()
		conns = append(conns, c)
	}
	for _, c := range conns[:10] {
		if !echoes(c) {
			t.Fatal("not relayed")
		}
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.output())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v with a 1s drain", d)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); isTimeout(err) {
			t.Fatalf("connection %d still open after the relay stopped", i)
		}
	}
}
