package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A side that stops taking data after the other side has ended (stall.go),
// through both relays, each a relaytcp subprocess whose descriptors the
// tests count in /proc: the engine (a plain route) and the goroutine relay
// (a route with a data log). Linux only: /proc, and the relay's sockets
// seen with sock_diag.

// TestStall runs each scenario through both relays, in front of a backend
// that never reads unless the scenario makes it. Each waits out the stall
// time, so they all run at once (subtests started together, which
// -parallel does not limit).
func TestStall(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, p *relayProc, accepted chan *net.TCPConn)
	}{
		{"clients reset", stallAfterClientsReset},
		{"client half-closes", stallAfterClientHalfCloses},
		{"backend closes", stallAfterBackendCloses},
		{"slow backend", slowBackendNotCut},
		{"nobody ended", stallNeedsAnEnd},
	}
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		for _, mode := range []string{"engine", "goroutine"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(sc.name+"/"+mode, func(t *testing.T) {
					backend, accepted := stallBackend(t)
					opts := []string{"-bind", "127.0.0.1"}
					if mode == "goroutine" {
						opts = append(opts, "-d") // a data log: the goroutine relay
					}
					p := startRelay(t, tempDir(t), "127.0.0.1", portOf(backend.Addr()), opts...)
					sc.run(t, p, accepted)
				})
			}()
		}
	}
	wg.Wait()
}

// smallSegments makes a socket use 1400-byte segments, as on an Ethernet
// path: on loopback (64 KiB segments) the kernel would give the relay's
// sockets buffers of several MiB, and filling them would take the tests
// hundreds of MiB (and their data logs gigabytes).
func smallSegments(fd uintptr) {
	unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, 1400)
}

// stallBackend is a backend that accepts and never reads, with a 4 KiB
// receive buffer so that the relay's socket to it fills fast. Its
// connections come on the channel; they are closed at the end of the test.
func stallBackend(t *testing.T) (net.Listener, chan *net.TCPConn) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
			smallSegments(fd)
		})
		return nil
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *net.TCPConn, 100)
	var mu sync.Mutex
	var all []*net.TCPConn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			c.Close()
		}
	})
	serveEach(ln, func(c *net.TCPConn) {
		mu.Lock()
		all = append(all, c)
		mu.Unlock()
		conns <- c
	})
	return ln, conns
}

// dialStall connects a client to the relay with small segments and a
// 4 KiB receive buffer (a slow reader's, when it does not read).
func dialStall(t *testing.T, addr string) *net.TCPConn {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
			smallSegments(fd)
		})
		return nil
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// acceptOne returns the backend's next connection.
func acceptOne(t *testing.T, conns chan *net.TCPConn) *net.TCPConn {
	select {
	case c := <-conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no connection")
		return nil
	}
}

// procFDs counts the open descriptors of process pid, and those that are
// sockets.
func procFDs(t *testing.T, pid int) (total, sockets int) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
		total++
	}
	return total, sockets
}

// pushUntilBlocked writes to c until a write has waited 300 ms: every
// buffer between c and a peer that does not read is full. It returns what
// was written.
func pushUntilBlocked(c *net.TCPConn) (int, error) {
	chunk := make([]byte, 64<<10)
	total := 0
	for range 4096 { // 256 MiB at most
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Write(chunk)
		total += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.SetWriteDeadline(time.Time{})
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	return total, fmt.Errorf("%d bytes written and never blocked", total)
}

// feedUntilHeld writes to w, 8 KiB at a time, until the relay holds what
// it reads from w: its socket from w keeps unread data (stillUnread),
// because the other side takes nothing more. All that was written has reached the relay's
// socket then (w's send queue is empty), so the end that follows (a FIN)
// reaches it too. It returns what was written.
func feedUntilHeld(t *testing.T, w *net.TCPConn) int {
	chunk := make([]byte, 8<<10)
	total := 0
	for range 8192 { // 64 MiB at most
		w.SetWriteDeadline(time.Now().Add(5 * time.Second))
		n, err := w.Write(chunk)
		total += n
		if err != nil {
			t.Fatalf("writing to the relay after %d bytes: %v", total, err)
		}
		if !eventually(5*time.Second, func() bool { return sendQueue(t, w) == 0 }) {
			t.Fatalf("the relay's socket took only part of %d bytes", total)
		}
		if sock, _ := peerSocket(t, w); sock.unread > 0 && stillUnread(t, w, sock.unread) {
			w.SetWriteDeadline(time.Time{})
			return total
		}
	}
	t.Fatalf("the relay read all of %d bytes", total)
	return 0
}

// stillUnread reports whether the relay's socket at the other end of w
// still has unread unread bytes, no more and no less, for half a second: the
// relay is not slow to read them (a data log written under the race
// detector is, now and then), it has stopped reading.
func stillUnread(t *testing.T, w *net.TCPConn, unread uint32) bool {
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if now, _ := peerSocket(t, w); now.unread != unread {
			return false
		}
	}
	return true
}

// stillQueued waits, 30 s at most, until the relay's socket at the other
// end of r, a peer that does not read, has the same bytes queued to send
// for a second: the relay has stopped writing to it. It reports whether
// that happened.
func stillQueued(t *testing.T, r *net.TCPConn) bool {
	var last uint32
	same := 0
	for range 300 {
		time.Sleep(100 * time.Millisecond)
		now, _ := peerSocket(t, r)
		if now.unsent > 0 && now.unsent == last {
			if same++; same == 10 {
				return true
			}
			continue
		}
		last, same = now.unsent, 0
	}
	return false
}

// diagSocket is what sock_diag says of a TCP socket.
type diagSocket struct {
	state  uint8  // TCP_ESTABLISHED, ...
	unread uint32 // received, not read yet
	unsent uint32 // written, not acknowledged yet
}

// peerSocket looks up, with sock_diag, the relay's socket at the other
// end of c; ok is false when there is no such connection (any more).
func peerSocket(t *testing.T, c *net.TCPConn) (sock diagSocket, ok bool) {
	local := c.RemoteAddr().(*net.TCPAddr).AddrPort() // the relay's end
	remote := c.LocalAddr().(*net.TCPAddr).AddrPort()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		t.Skipf("no sock_diag to see the relay's sockets: %v", err)
	}
	defer unix.Close(fd)
	// A netlink header and an inet_diag_req_v2 that names the connection
	// (inet_diag_sockid: ports and addresses in network order, no cookie).
	req := make([]byte, 16+56)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	r := req[16:]
	r[0], r[1] = unix.AF_INET, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	src, dst := local.Addr().As4(), remote.Addr().As4()
	copy(id[4:], src[:])
	copy(id[20:], dst[:])
	ne.PutUint32(id[40:], ^uint32(0))
	ne.PutUint32(id[44:], ^uint32(0))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("sock_diag: %v", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("sock_diag: %v", err)
	}
	// An error message (no such socket), or an inet_diag_msg: family,
	// state, timer, retrans, the sockid, expires, rqueue, wqueue, ... A
	// lookup that finds no connection may find the listening socket.
	if n < 16+72 || ne.Uint16(buf[4:]) != unix.SOCK_DIAG_BY_FAMILY {
		return sock, false
	}
	m := buf[16:]
	if binary.BigEndian.Uint16(m[6:]) != remote.Port() {
		return sock, false
	}
	return diagSocket{state: m[1], unread: ne.Uint32(m[56:]), unsent: ne.Uint32(m[60:])}, true
}

// closedLines returns the relay's Closed lines that end with (reason).
func closedLines(p *relayProc, reason string) int {
	n := 0
	for _, l := range p.stdoutLines() {
		if strings.Contains(l, " Closed ") && strings.HasSuffix(l, "("+reason+")") {
			n++
		}
	}
	return n
}

// anyClosed reports whether the relay has logged a Closed line.
func anyClosed(p *relayProc) bool {
	for _, l := range p.stdoutLines() {
		if strings.Contains(l, " Closed ") {
			return true
		}
	}
	return false
}

// waitReset reads from c until it fails or the deadline passes, and
// returns when that happened and the error.
func waitReset(c *net.TCPConn, deadline time.Time) (time.Time, error) {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	return time.Now(), err
}

// stallAfterClientsReset is the reproduction of issue 18, part 2: 30
// clients push data through a route to a backend that accepts and never
// reads, until every buffer on the way is full, then reset. Each
// connection's direction to the backend can move no more: the relay cuts
// it once it has made no progress for drainStall after the reset, and logs
// why; its descriptors are back where they were within drainStall and a
// second.
func stallAfterClientsReset(t *testing.T, p *relayProc, accepted chan *net.TCPConn) {
	const clients = 30
	baseTotal, baseSockets := procFDs(t, p.cmd.Process.Pid)
	conns := make([]*net.TCPConn, clients)
	errs := make(chan error, clients)
	for i := range conns {
		conns[i] = dialStall(t, p.addr())
		go func(c *net.TCPConn) {
			_, err := pushUntilBlocked(c)
			errs <- err
		}(conns[i])
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatalf("pushing data: %v", err)
		}
	}
	// A relay slowed down by its data log (under the race detector) may
	// still be writing to the backends: each connection is stuck once the
	// relay's socket to the backend no longer changes.
	held := make(chan bool, clients)
	for range clients {
		go func(s *net.TCPConn) { held <- stillQueued(t, s) }(acceptOne(t, accepted))
	}
	for range clients {
		if !<-held {
			t.Fatal("the relay kept writing to a backend that does not read")
		}
	}
	if _, sockets := procFDs(t, p.cmd.Process.Pid); sockets < baseSockets+2*clients {
		t.Fatalf("the relay has %d sockets with %d connections open; %d before", sockets, clients, baseSockets)
	}
	for _, c := range conns {
		c.SetLinger(0)
		c.Close()
	}
	reset := time.Now()
	// Pipes the engine keeps for later (maxFreePipes per engine) may
	// stay; sockets may not.
	slack := 2 * maxFreePipes * maxEngines
	var total, sockets int
	back := false
	for deadline := reset.Add(drainStall + time.Second); !back && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // the relay, not this test, needs the processor
		total, sockets = procFDs(t, p.cmd.Process.Pid)
		back = sockets == baseSockets && total <= baseTotal+slack
	}
	if !back {
		t.Fatalf("%v after the clients reset, the relay has %d descriptors, %d of them sockets; %d and %d before the connections",
			time.Since(reset).Round(time.Millisecond), total, sockets, baseTotal, baseSockets)
	}
	t.Logf("descriptors back %v after the resets", time.Since(reset).Round(time.Millisecond))
	if !eventually(2*time.Second, func() bool { return closedLines(p, errBackendStalled.Error()) == clients }) {
		t.Fatalf("want %d Closed lines saying (%v); output:\n%s", clients, errBackendStalled, p.output())
	}
}

// stallAfterClientHalfCloses: a client sends a request and half-closes
// (its FIN reaches the relay), then waits for the answer; the backend
// never reads it. The relay cuts the connection after drainStall: the
// client is reset.
func stallAfterClientHalfCloses(t *testing.T, p *relayProc, accepted chan *net.TCPConn) {
	c := dialStall(t, p.addr())
	acceptOne(t, accepted)
	feedUntilHeld(t, c)
	c.CloseWrite()
	if !eventually(5*time.Second, func() bool { return sendQueue(t, c) == 0 }) {
		t.Fatal("the client's end did not reach the relay")
	}
	ended := time.Now()
	at, err := waitReset(c, ended.Add(drainStall+time.Second))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%v after the client's end: %v; want the relay's reset", at.Sub(ended).Round(time.Millisecond), err)
	}
	if waited := at.Sub(ended); waited < drainStall-500*time.Millisecond {
		t.Errorf("reset %v after the client's end; want about %v", waited, drainStall)
	}
	t.Logf("reset %v after the client's end", at.Sub(ended).Round(time.Millisecond))
	if !eventually(2*time.Second, func() bool { return closedLines(p, errBackendStalled.Error()) == 1 }) {
		t.Fatalf("want a Closed line saying (%v); output:\n%s", errBackendStalled, p.output())
	}
}

// stallAfterBackendCloses is the mirror: the backend sends its answer
// and ends it (FIN); the client, which has sent everything, never reads it. The
// relay cuts the connection after drainStall and says the client stalled.
func stallAfterBackendCloses(t *testing.T, p *relayProc, accepted chan *net.TCPConn) {
	c := dialStall(t, p.addr())
	s := acceptOne(t, accepted)
	feedUntilHeld(t, s)
	s.CloseWrite()
	if !eventually(5*time.Second, func() bool { return sendQueue(t, s) == 0 }) {
		t.Fatal("the backend's end did not reach the relay")
	}
	ended := time.Now()
	// The client does not read: the relay's socket to it is looked up.
	gone := eventually(drainStall+time.Second, func() bool {
		sock, ok := peerSocket(t, c)
		return !ok || sock.state == tcpClose || sock.state == tcpTimeWait
	})
	if !gone {
		t.Fatalf("the relay's socket to the client is still open %v after the backend's end", time.Since(ended).Round(time.Millisecond))
	}
	if waited := time.Since(ended); waited < drainStall-500*time.Millisecond {
		t.Errorf("cut %v after the backend's end; want about %v", waited, drainStall)
	}
	if !eventually(2*time.Second, func() bool { return closedLines(p, errClientStalled.Error()) == 1 }) {
		t.Fatalf("want a Closed line saying (%v); output:\n%s", errClientStalled, p.output())
	}
}

// TCP states, as sock_diag reports them.
const (
	tcpTimeWait = 6
	tcpClose    = 7
)

// slowBackendNotCut: a client sends a request and half-closes;
// the backend takes it slowly (a little every 500 ms, and for longer than
// the stall time). It moves: the connection is not cut, and the backend
// gets all of it.
func slowBackendNotCut(t *testing.T, p *relayProc, accepted chan *net.TCPConn) {
	c := dialStall(t, p.addr())
	s := acceptOne(t, accepted)
	sent := feedUntilHeld(t, c)
	c.CloseWrite()
	if !eventually(5*time.Second, func() bool { return sendQueue(t, c) == 0 }) {
		t.Fatal("the client's end did not reach the relay")
	}
	got := 0
	buf := make([]byte, 4<<10)
	slowUntil := time.Now().Add(drainStall + 3*time.Second)
	for time.Now().Before(slowUntil) {
		time.Sleep(500 * time.Millisecond)
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := s.Read(buf)
		got += n
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the backend, reading slowly, got %d of %d bytes, then %v", got, sent, err)
		}
	}
	if anyClosed(p) {
		t.Fatalf("a connection moving slowly was closed; output:\n%s", p.output())
	}
	if got >= sent {
		t.Fatalf("the backend got all %d bytes while reading slowly: the test needs it to take longer", sent)
	}
	t.Logf("the backend took %d of %d bytes slowly", got, sent)
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.Copy(io.Discard, s)
	if err != nil || got+int(rest) != sent {
		t.Fatalf("the backend got %d bytes, then %v; the client sent %d", got+int(rest), err, sent)
	}
	s.Write([]byte("done"))
	s.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if err != nil || string(answer) != "done" {
		t.Fatalf("the client got %q, %v; want the answer and the end", answer, err)
	}
}

// stallNeedsAnEnd: connections where neither side has ended are never
// cut by the stall rule, however long nothing moves: a client blocked
// writing to a backend that does not read (yet), and a silent one.
func stallNeedsAnEnd(t *testing.T, p *relayProc, accepted chan *net.TCPConn) {
	blocked := dialStall(t, p.addr())
	bs := acceptOne(t, accepted)
	sent, err := pushUntilBlocked(blocked)
	if err != nil {
		t.Fatal(err)
	}
	silent := dialStall(t, p.addr())
	ss := acceptOne(t, accepted)
	time.Sleep(drainStall + 2*time.Second)
	if anyClosed(p) {
		t.Fatalf("a connection with both sides open was closed; output:\n%s", p.output())
	}
	// Both still relay.
	silent.Write([]byte("ping"))
	ss.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(ss, make([]byte, 4)); err != nil {
		t.Fatalf("the silent connection: %v", err)
	}
	blocked.CloseWrite()
	bs.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, bs)
	if err != nil || int(n) != sent {
		t.Fatalf("the backend got %d bytes, then %v; the client sent %d", n, err, sent)
	}
}
