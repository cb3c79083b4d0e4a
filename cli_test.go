package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBulkBothWays sends 64 MiB of random data each way at the same time and
// checks both arrive unchanged.
func TestBulkBothWays(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 4 << 20
	}
	up, down := randomBytes(1, size), randomBytes(2, size)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	serverGot := make(chan result, 1)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			c.Write(down)
			c.CloseWrite()
		}()
		sum, n, err := hashReader(c)
		serverGot <- result{sum, n, err}
		<-sent // closing before the write is done would cut it short
	})
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(ln.Addr()), "-q")
	c := dialTCP(t, p.addr())
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	go func() {
		c.Write(up)
		c.CloseWrite()
	}()
	sum, n, err := hashReader(c)
	if err != nil || n != int64(size) || sum != sha256.Sum256(down) {
		t.Fatalf("client received %d bytes (err %v), hash match %v; want %d", n, err, sum == sha256.Sum256(down), size)
	}
	select {
	case r := <-serverGot:
		if r.err != nil || r.n != int64(size) || r.sum != sha256.Sum256(up) {
			t.Fatalf("server received %d bytes (err %v), hash match %v; want %d", r.n, r.err, r.sum == sha256.Sum256(up), size)
		}
	case <-time.After(time.Minute):
		t.Fatal("server did not finish")
	}
}

// TestConcurrentConnections runs 500 connections at once, each echoing its
// own data, and checks the connection lines the relay prints.
func TestConcurrentConnections(t *testing.T) {
	const conns = 500
	echo := echoServer(t)
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(echo.Addr()))
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := make(chan struct{})
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := net.DialTimeout("tcp", p.addr(), 20*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			msg := randomBytes(uint64(i)+100, 1000+i)
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- errors.New("connection " + strconv.Itoa(i) + ": echo differs: " + errString(err))
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ok := eventually(20*time.Second, func() bool {
		closed := 0
		for _, l := range p.stdoutLines() {
			if strings.Contains(l, " Closed ") {
				closed++
			}
		}
		return closed == conns
	})
	if !ok {
		t.Fatalf("want %d Closed lines; output:\n%s", conns, p.output())
	}
	opened := 0
	for _, l := range p.stdoutLines() {
		if strings.Contains(l, " Connection from 127.0.0.1:") && strings.HasSuffix(l, " to "+echo.Addr().String()) {
			opened++
		}
	}
	if opened != conns {
		t.Errorf("got %d Connection lines; want %d", opened, conns)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestHalfClose: the client closes its sending side; the server reads to EOF
// and only then replies; the reply must still reach the client.
func TestHalfClose(t *testing.T) {
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		got, _ := io.ReadAll(c)
		time.Sleep(100 * time.Millisecond)
		c.Write([]byte("after EOF: " + string(got)))
		c.CloseWrite()
	})
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(ln.Addr()))
	c := dialTCP(t, p.addr())
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("question"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "after EOF: question" {
		t.Fatalf("got %q, %v; want %q", got, err, "after EOF: question")
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(p.output(), "(client closed)") }) {
		t.Errorf("no Closed line saying the client closed first:\n%s", p.output())
	}
}

// TestRemoteRefuses: a client of a route whose remote refuses is closed at
// once and the failure is reported.
func TestRemoteRefuses(t *testing.T) {
	port := freePort(t) // nothing listens there
	p := startRelay(t, tempDir(t), "127.0.0.1", port)
	start := time.Now()
	// On loopback the relay's reset can even beat the end of the client's
	// connect, which then fails with "connection reset": closed at once too.
	if c, err := net.DialTimeout("tcp", p.addr(), 5*time.Second); err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("read got %d, %v; want the connection closed", n, err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("client closed after %v; want at once", d)
	}
	if !eventually(5*time.Second, func() bool {
		return strings.Contains(strings.Join(p.stderrLines(), "\n"), " Failed 127.0.0.1:")
	}) {
		t.Errorf("no Failed line on stderr:\n%s", p.output())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestRemoteResetsMidStream: when the server resets the connection, the
// client's connection ends at once too, and the relay keeps working.
func TestRemoteResetsMidStream(t *testing.T) {
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			c.Close()
			return
		}
		if string(buf) == "reset" {
			c.Write([]byte("partial"))
			time.Sleep(50 * time.Millisecond)
			c.SetLinger(0)
			c.Close()
			return
		}
		c.Write(buf)
		c.Close()
	})
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(ln.Addr()))
	c := dialTCP(t, p.addr())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("reset"))
	// Keep the client sending so the relay sees the reset on both paths.
	go func() {
		for i := 0; i < 100; i++ {
			if _, err := c.Write(make([]byte, 1024)); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("client connection not closed after the server's reset")
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(p.output(), " Closed ") }) {
		t.Fatalf("no Closed line:\n%s", p.output())
	}
	// The relay still serves new connections.
	c2 := dialTCP(t, p.addr())
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	c2.Write([]byte("hello"))
	got, err := io.ReadAll(c2)
	if string(got) != "hello" {
		t.Fatalf("after a reset, got %q, %v; want %q", got, err, "hello")
	}
}

// TestPortInUse: the manual's "Not bound" error, exit code 3.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(portOf(ln.Addr()))
	p := startProc(t, tempDir(t), port, "127.0.0.1", "80")
	if code := p.wait(t, 20*time.Second); code != exitBind {
		t.Fatalf("exit code %d; want %d\n%s", code, exitBind, p.output())
	}
	want := "Not bound to port " + port + " ! (address already in use)"
	if got := p.stderrLines(); len(got) != 1 || got[0] != want {
		t.Fatalf("stderr %q; want %q", got, want)
	}
}

// TestMetricsPortInUse: a metrics listener that cannot bind stops the
// command-line relay with the same error form, naming the address once.
func TestMetricsPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startProc(t, tempDir(t), strconv.Itoa(freePort(t)), "127.0.0.1", "80", "-metrics", ln.Addr().String())
	if code := p.wait(t, 20*time.Second); code != exitBind {
		t.Fatalf("exit code %d; want %d\n%s", code, exitBind, p.output())
	}
	want := "Not bound to " + ln.Addr().String() + " ! (metrics: address already in use)"
	if got := p.stderrLines(); len(got) != 1 || got[0] != want {
		t.Fatalf("stderr %q; want %q", got, want)
	}
}

// TestUnresolvableHost: the manual's "I can't resolve" error, exit code 4.
func TestUnresolvableHost(t *testing.T) {
	p := startProc(t, tempDir(t), strconv.Itoa(freePort(t)), "no-such-host.invalid", "80")
	if code := p.wait(t, 30*time.Second); code != exitResolve {
		t.Fatalf("exit code %d; want %d\n%s", code, exitResolve, p.output())
	}
	got := p.stderrLines()
	if len(got) != 1 || !strings.HasPrefix(got[0], "I can't resolve no-such-host.invalid") {
		t.Fatalf("stderr %q; want one line \"I can't resolve no-such-host.invalid ...\"", got)
	}
}

// TestArgumentErrors: each bad command line is refused with exit code 2, a
// message naming the bad value, and the usage line.
func TestArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"1000"}, "missing remoteHost, remotePort"},
		{[]string{"1000", "host"}, "missing remotePort"},
		{[]string{"1000", "host", "80", "extra"}, `unexpected argument "extra"`},
		{[]string{"1a", "host", "80"}, `invalid listen port "1a"`},
		{[]string{"1000", "host", "8x0"}, `invalid remote port "8x0"`},
		{[]string{"0", "host", "80"}, `invalid listen port "0": must be 1-65535`},
		{[]string{"1000", "host", "0"}, `invalid remote port "0": must be 1-65535`},
		{[]string{"65536", "host", "80"}, `invalid listen port "65536": must be 1-65535`},
		{[]string{"1000", "host", "99999"}, `invalid remote port "99999": must be 1-65535`},
		{[]string{"-5", "host", "80"}, `invalid listen port "-5"`},
		{[]string{"1000", "", "80"}, `invalid remote host "": empty`},
		{[]string{"1000", "bad host", "80"}, `invalid remote host "bad host"`},
		{[]string{"1000", "host", "80", "-x"}, "unknown option -x"},
		{[]string{"1000", "host", "80", "-drain", "soon"}, `invalid duration "soon" for -drain`},
		{[]string{"1000", "host", "80", "-connect"}, "option -connect needs a duration"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			p := startProc(t, tempDir(t), tt.args...)
			if code := p.wait(t, 20*time.Second); code != exitUsage {
				t.Fatalf("exit code %d; want %d", code, exitUsage)
			}
			got := p.stderrLines()
			if len(got) != 2 || !strings.Contains(got[0], tt.want) || got[1] != usageLine {
				t.Fatalf("stderr %q; want a line containing %q, then the usage line", got, tt.want)
			}
		})
	}
}

// TestHelpAndVersion: -h prints usage and exits 0; version prints it.
func TestHelpAndVersion(t *testing.T) {
	p := startProc(t, tempDir(t), "-h")
	if code := p.wait(t, 20*time.Second); code != 0 || !strings.Contains(p.output(), usageLine) {
		t.Fatalf("-h: exit %d, output %s", code, p.output())
	}
	// The help lists every command, each with its own usage.
	for _, name := range []string{"service", "admin", "route", "start", "stop", "status", "install", "uninstall", "version"} {
		if !regexp.MustCompile(`(?m)^  relaytcp ` + name + ` +\S.*$`).MatchString(p.output()) {
			t.Errorf("-h does not list %q with a description:\n%s", name, p.output())
		}
	}
	for _, name := range []string{"service", "admin", "route", "start", "stop", "status"} {
		for _, flag := range []string{"-h", "--help"} {
			p := startProc(t, tempDir(t), name, flag)
			if code := p.wait(t, 20*time.Second); code != 0 || !strings.HasPrefix(p.output(), "stdout:\nusage: relaytcp "+name) {
				t.Errorf("%s %s: exit %d, output %s", name, flag, code, p.output())
			}
		}
	}
	p = startProc(t, tempDir(t), "route", "-config", "x.conf", "-h")
	if code := p.wait(t, 20*time.Second); code != 0 || !strings.Contains(p.output(), "delete :PORT | ADDR:PORT") {
		t.Errorf("route -config x -h: exit %d, output %s", code, p.output())
	}
	p = startProc(t, tempDir(t), "version")
	if code := p.wait(t, 20*time.Second); code != 0 || !strings.HasPrefix(p.stdoutLines()[0], "relaytcp ") {
		t.Fatalf("version: exit %d, output %s", code, p.output())
	}
}

// TestDataLogRoundTrip relays data both ways with -d and parses the data log
// back: every byte must be there, in order, for each direction.
func TestDataLogRoundTrip(t *testing.T) {
	up := randomBytes(3, 300_000)
	down := append([]byte("HTTP/1.0 200 OK\r\n\r\n"), randomBytes(4, 200_000)...)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		io.Copy(io.Discard, c)
		c.Write(down)
		c.CloseWrite()
	})
	dir := tempDir(t)
	p := startRelay(t, dir, "127.0.0.1", portOf(ln.Addr()), "-d")
	c := dialTCP(t, p.addr())
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	clientAddr := c.LocalAddr().String()
	for i := 0; i < len(up); i += 7000 { // many chunks, many packets
		c.Write(up[i:min(i+7000, len(up))])
	}
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, down) {
		t.Fatalf("client got %d bytes (%v); want %d", len(got), err, len(down))
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(p.output(), " Closed ") }) {
		t.Fatalf("no Closed line:\n%s", p.output())
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "RL*.LOG"))
	if len(logs) != 1 {
		t.Fatalf("data logs %v; want exactly one", logs)
	}
	name := filepath.Base(logs[0])
	if len(name) != len("RL0601021504nn.LOG") {
		t.Errorf("data log name %q; want RLyymmddhhttnn.LOG", name)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(logs[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("data log mode %v (%v); want 0600", fi.Mode().Perm(), err)
		}
	}
	f, err := os.Open(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	packets, err := parseDataLog(f)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string][]byte{}
	for _, pk := range packets {
		streams[pk.from+">"+pk.to] = append(streams[pk.from+">"+pk.to], pk.data...)
	}
	server := ln.Addr().String()
	if !bytes.Equal(streams[clientAddr+">"+server], up) {
		t.Errorf("logged client->server stream: %d bytes, equal %v; want %d", len(streams[clientAddr+">"+server]), false, len(up))
	}
	if !bytes.Equal(streams[server+">"+clientAddr], down) {
		t.Errorf("logged server->client stream: %d bytes; want %d", len(streams[server+">"+clientAddr]), len(down))
	}
	if len(streams) != 2 {
		t.Errorf("log has %d directions; want 2", len(streams))
	}
}

// TestStopWithActiveConnections: SIGTERM with a connection open prints the
// manual's closing lines, lets the connection drain for -drain, then exits 0.
func TestStopWithActiveConnections(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no SIGTERM to send; the core's drain is tested by TestRelayShutdownDrains")
	}
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		io.Copy(c, c)
	})
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(ln.Addr()), "-drain", "1s")
	busy := dialTCP(t, p.addr())
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	busy.Write([]byte("ping"))
	if _, err := io.ReadFull(busy, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	// During the drain the open connection still relays.
	if err := p.waitLine("Closing connections...", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	busy.Write([]byte("pong"))
	if _, err := io.ReadFull(busy, make([]byte, 4)); err != nil {
		t.Fatalf("connection stopped relaying during the drain: %v", err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d; want 0\n%s", code, p.output())
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("stopped after %v; want about the 1s drain", d)
	}
	out := p.stdoutLines()
	if out[len(out)-1] != "It's all !" {
		t.Errorf("last line %q; want %q", out[len(out)-1], "It's all !")
	}
	if _, err := io.ReadAll(busy); isTimeout(err) {
		t.Errorf("connection still open after the drain")
	}
}
