package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rmemMax is Linux's cap on SO_RCVBUF, net.core.rmem_max.
func rmemMax(t *testing.T) int {
	data, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	n, err2 := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || err2 != nil {
		t.Fatalf("net.core.rmem_max: %v %v", err, err2)
	}
	return n
}

// sockRcvBuf is the receive buffer socket c has, as set.
func sockRcvBuf(t *testing.T, c *net.UDPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	raw.Control(func(fd uintptr) {
		n, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n / 2 // Linux reports double what was set
}

// TestUDPRcvBufSet: a UDP route's listening socket and its sessions'
// sockets get rcvbuf= (4 MiB by default), past net.core.rmem_max when the
// relay may (root); else the route runs with what it got and says so once,
// on the command line's error output (TestUDPRcvBufCapped).
func TestUDPRcvBufSet(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	capped := 2 * rmemMax(t)
	capped = (capped + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB, over the cap
	for _, tt := range []struct {
		opts string
		want int
	}{{"", defaultRcvBuf}, {"rcvbuf=64K", 64 << 10}, {"rcvbuf=" + formatRcvBuf(capped), capped}} {
		r, addr, rec := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d %s", srv.port(), tt.opts), "")
		if _, err := exchangeDatagram(udpClient(t, addr), []byte("hi")); err != nil {
			t.Fatal(err)
		}
		listening, session := routeSockets(r)
		got, want := sockRcvBuf(t, listening), tt.want
		if want > rmemMax(t) && os.Geteuid() != 0 {
			want = rmemMax(t) // not root: the cap (TestUDPRcvBufCapped checks the message)
			if rec.count(BufferCapped, "") != 1 {
				t.Errorf("%q: no BufferCapped event: %v", tt.opts, rec.events)
			}
		} else if n := rec.count(BufferCapped, ""); n != 0 {
			t.Errorf("%q: %d BufferCapped events; want none: %v", tt.opts, n, rec.events)
		}
		if got != want || sockRcvBuf(t, session) != want || r.Status()[0].RcvBuf != want {
			t.Errorf("%q: listening socket's buffer %d, session's %d, status %d; want %d", tt.opts, got,
				sockRcvBuf(t, session), r.Status()[0].RcvBuf, want)
		}
	}
}

// TestUDPRcvBufCapped: where net.core.rmem_max caps the buffer and the
// relay may not go past it (not root), the route runs with what it got
// and says so once, naming the setting.
func TestUDPRcvBufCapped(t *testing.T) {
	max := rmemMax(t)
	asked := (2*max + 1<<20 - 1) &^ (1<<20 - 1)
	dir := tempDir(t)
	setup := func(*exec.Cmd) {}
	if os.Geteuid() == 0 {
		// Root goes past the cap: run the relay as nobody, from a copy of
		// the test binary that nobody may run (go test's is in a private
		// directory).
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "relaytcp.test")
		copyFile(t, os.Args[0], bin)
		setup = func(cmd *exec.Cmd) {
			cmd.Path = bin
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
	}
	srv := newUDPEchoServer(t, "")
	port := freePort(t)
	p := startProcWith(t, dir, setup, strconv.Itoa(port), "127.0.0.1", strconv.Itoa(srv.port()), "-udp", "-rcvbuf", formatRcvBuf(asked))
	if err := p.waitLine("Ready to relay data to ", 20*time.Second); err != nil {
		t.Fatalf("relay did not start: %v\n%s", err, p.output())
	}
	want := fmt.Sprintf("Route 0: receive buffer %s asked, %s granted (net.core.rmem_max); run as root or raise net.core.rmem_max",
		bufferSize(asked), bufferSize(max))
	if !eventually(5*time.Second, func() bool { return strings.Contains(strings.Join(p.stderrLines(), "\n"), want) }) {
		t.Errorf("stderr lacks %q:\n%s", want, p.output())
	}
	if got, err := exchangeDatagram(udpClient(t, "127.0.0.1:"+strconv.Itoa(port)), []byte("still relays")); err != nil || string(got) != "still relays" {
		t.Errorf("through the capped route: %q, %v", got, err)
	}
	if n := strings.Count(p.output(), "receive buffer"); n != 1 {
		t.Errorf("the cap was reported %d times; want once:\n%s", n, p.output())
	}
}

// copyFile copies an executable file.
func copyFile(t *testing.T, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUDPRcvBufUpdate: a route whose rcvbuf= changes in place resizes its
// socket, and its new sessions get the new size.
func TestUDPRcvBufUpdate(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	r, addr, _ := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d rcvbuf=64K", srv.port()), "")
	spec, _ := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d proto=udp rcvbuf=128K", srv.port()))
	rt := spec.Route()
	rt.ListenAddr = "127.0.0.1:0"
	if ok, err := r.Update(0, rt); !ok || err != nil {
		t.Fatalf("update: %v, %v", ok, err)
	}
	if _, err := exchangeDatagram(udpClient(t, addr), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	listening, session := routeSockets(r)
	if got, sgot := sockRcvBuf(t, listening), sockRcvBuf(t, session); got != 128<<10 || sgot != 128<<10 {
		t.Errorf("after rcvbuf=128K: listening socket %d, new session %d", got, sgot)
	}
}

// routeSockets returns the listening socket of UDP route 0 and the socket
// of one of its sessions (nil if none is connected).
func routeSockets(r *Relay) (listening, session *net.UDPConn) {
	r.mu.Lock()
	u := r.routes[0].(*udpRoute)
	r.mu.Unlock()
	u.mu.Lock()
	listening = u.socks[firstKey(u.socks)].conn
	var sess *udpSession
	for _, s := range u.sessions {
		sess = s
	}
	u.mu.Unlock()
	if sess != nil {
		sess.dialMu.Lock()
		session = sess.backendConn
		sess.dialMu.Unlock()
	}
	return listening, session
}

// firstKey is the smallest key of m.
func firstKey[V any](m map[int]V) int {
	first := -1
	for k := range m {
		if first < 0 || k < first {
			first = k
		}
	}
	return first
}
