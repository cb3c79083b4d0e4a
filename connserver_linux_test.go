package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// floodFDLimit is the descriptor limit the flood tests run the relay
// under, and floodConns how many idle connections they open to its metrics
// listener or control channel: more than the limit.
const (
	floodFDLimit = 100
	floodConns   = 150
)

// withFDLimit returns a startProcWith setup that runs the command under
// prlimit with a descriptor limit of n, soft and hard (Go raises the soft
// limit to the hard one at start). The test is skipped without prlimit.
func withFDLimit(t *testing.T, n int) func(*exec.Cmd) {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux) to run the relay under a descriptor limit")
	}
	return func(cmd *exec.Cmd) {
		cmd.Args = append([]string{prlimit, fmt.Sprintf("--nofile=%d:%d", n, n), cmd.Path}, cmd.Args[1:]...)
		cmd.Path = prlimit
	}
}

// flood opens n connections with dial and sends nothing on them; they are
// closed when the test ends.
func flood(t *testing.T, n int, dial func() (net.Conn, error)) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := dial()
		if err != nil {
			t.Fatalf("flood: connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	return conns
}

// relaysPromptly checks that a client of the relay at addr gets its bytes
// echoed within two seconds.
func relaysPromptly(t *testing.T, addr string) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("relay client: %v", err)
	}
	defer c.Close()
	c.SetDeadline(start.Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatalf("relay client: write: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("relay client: not relayed within 2 s: %q, %v", got, err)
	}
}

// scrapes checks that GET /metrics at addr answers 200 within five seconds.
func scrapes(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		t.Fatalf("scrape: %q, %v", line, err)
	}
}

// oldestClosed checks that the first of the flood's connections, opened
// at start, has been closed by the server to make room before its header
// timeout would have closed it.
func oldestClosed(t *testing.T, conns []net.Conn, start time.Time, headerTimeout time.Duration) {
	t.Helper()
	conns[0].SetReadDeadline(start.Add(headerTimeout - time.Second))
	if n, err := conns[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the oldest idle connection of the flood: read %d, %v; want EOF", n, err)
	}
}

// TestMetricsFloodUnderDescriptorLimit: idle connections to the metrics
// listener, more than the relay has descriptors, do not stop its route
// accepting, nor /metrics answering: the listener holds metricsMaxConns of
// them at most.
func TestMetricsFloodUnderDescriptorLimit(t *testing.T) {
	echo := echoServer(t)
	setup := withFDLimit(t, floodFDLimit)
	port, metricsAddr := freePort(t), "127.0.0.1:"+strconv.Itoa(freePort(t))
	p := startProcWith(t, tempDir(t), setup, strconv.Itoa(port), "127.0.0.1", strconv.Itoa(portOf(echo.Addr())), "-metrics", metricsAddr)
	if err := p.waitLine("Ready to relay data to ", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.output())
	}
	start := time.Now()
	conns := flood(t, floodConns, func() (net.Conn, error) { return net.DialTimeout("tcp", metricsAddr, 5*time.Second) })
	relaysPromptly(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	scrapes(t, metricsAddr)
	oldestClosed(t, conns, start, metricsHeaderTimeout)
}

// TestControlFloodUnderDescriptorLimit: idle connections to the service's
// control channel, more than it has descriptors, do not stop its route
// accepting, nor the control channel answering.
func TestControlFloodUnderDescriptorLimit(t *testing.T) {
	echo := echoServer(t)
	setup := withFDLimit(t, floodFDLimit)
	dir := tempDir(t)
	port, conf := freePort(t), filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf("logdir %s\nroute 127.0.0.1:%d 127.0.0.1 %d\n", filepath.Join(dir, "logs"), port, portOf(echo.Addr()))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcWith(t, dir, setup, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	start := time.Now()
	conns := flood(t, floodConns, func() (net.Conn, error) { return net.DialTimeout("unix", conf+".sock", 5*time.Second) })
	relaysPromptly(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	c, err := net.DialTimeout("unix", conf+".sock", 5*time.Second)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, `{"cmd":"status"}`+"\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, `{"ok":true`) {
		t.Fatalf("control status: %.80q, %v", line, err)
	}
	oldestClosed(t, conns, start, controlHeaderTimeout)
}
