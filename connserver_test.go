package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startConnServer serves a free loopback port with handle; the server is
// closed when the test ends.
func startConnServer(t *testing.T, maxConns int, headerTimeout, closeWait time.Duration, handle func(*serverConn)) *connServer {
	t.Helper()
	s := &connServer{ln: newLocalListener(t), maxConns: maxConns, headerTimeout: headerTimeout, closeWait: closeWait, handle: handle}
	s.start()
	t.Cleanup(s.close)
	return s
}

// echoLines answers each line with "ok LINE", until the client ends.
func echoLines(c *serverConn) {
	in := bufio.NewReader(c)
	for {
		line, err := in.ReadString('\n')
		if err != nil || !c.answering() {
			return
		}
		io.WriteString(c, "ok "+line)
		c.awaitRequest(10 * time.Second)
	}
}

// dialServer connects to s and waits until s has admitted the connection
// (it holds want connections then).
func dialServer(t *testing.T, s *connServer, want int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !eventually(5*time.Second, func() bool { return s.open() == want }) {
		t.Fatalf("the server holds %d connections; want %d", s.open(), want)
	}
	return c
}

// open is how many connections s holds.
func (s *connServer) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ask sends line on c and checks the answer.
func ask(t *testing.T, c net.Conn, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, line+"\n")
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "ok "+line+"\n" {
		t.Fatalf("ask %q: %q, %v", line, got, err)
	}
}

// closedByServer checks that the server has closed c (within five seconds).
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("%s: read %d, %v; want EOF", what, n, err)
	}
}

// TestConnServerCapClosesLongestWaiting: at the cap, a new connection
// takes the place of the one that has waited longest for a request; a
// connection that has just been answered waits from then on.
func TestConnServerCapClosesLongestWaiting(t *testing.T) {
	s := startConnServer(t, 3, 10*time.Second, time.Second, echoLines)
	a := dialServer(t, s, 1)
	b := dialServer(t, s, 2)
	c := dialServer(t, s, 3)
	d := dialServer(t, s, 3)
	closedByServer(t, a, "the first connection, at the cap")
	ask(t, b, "b") // b now waits since its answer, after c and d
	dialServer(t, s, 3)
	closedByServer(t, c, "the connection that waited longest")
	ask(t, b, "b again")
	ask(t, d, "d")
}

// TestConnServerFullOfAnswersRefuses: when every connection is being
// answered, a new one is closed at once; the answers are not disturbed.
func TestConnServerFullOfAnswersRefuses(t *testing.T) {
	release := make(chan struct{})
	var busy atomic.Int32
	s := startConnServer(t, 2, 10*time.Second, time.Second, func(c *serverConn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !c.answering() {
			return
		}
		busy.Add(1)
		<-release
		io.WriteString(c, "ok "+line)
	})
	a, b := dialServer(t, s, 1), dialServer(t, s, 2)
	io.WriteString(a, "a\n")
	io.WriteString(b, "b\n")
	if !eventually(5*time.Second, func() bool { return busy.Load() == 2 }) {
		t.Fatalf("%d connections answering; want 2", busy.Load())
	}
	c, err := net.DialTimeout("tcp", s.ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closedByServer(t, c, "a connection beyond the cap, every one answering")
	close(release)
	for _, conn := range []net.Conn{a, b} {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := bufio.NewReader(conn).ReadString('\n'); err != nil || len(got) < 4 {
			t.Errorf("an answer held at the cap: %q, %v", got, err)
		}
	}
}

// TestConnServerHeaderTimeout: a connection that sends no request within
// the header timeout is closed.
func TestConnServerHeaderTimeout(t *testing.T) {
	s := startConnServer(t, 4, 200*time.Millisecond, time.Second, echoLines)
	idle := dialServer(t, s, 1)
	closedByServer(t, idle, "a connection silent past the header timeout")
	ask(t, dialServer(t, s, 1), "prompt")
}

// TestConnServerCloseCutsWaitingWaitsForAnswers: close cuts a connection
// waiting for its request at once, lets an answer being written finish,
// and cuts one that takes longer than closeWait.
func TestConnServerCloseCutsWaitingWaitsForAnswers(t *testing.T) {
	answering := make(chan struct{}, 2)
	s := startConnServer(t, 4, 10*time.Second, 300*time.Millisecond, func(c *serverConn) {
		in := bufio.NewReader(c)
		line, err := in.ReadString('\n')
		if err != nil || !c.answering() {
			return
		}
		answering <- struct{}{}
		if line == "slow\n" {
			in.ReadString('\n') // until it is cut
			return
		}
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "ok "+line)
	})
	idle, quick, slow := dialServer(t, s, 1), dialServer(t, s, 2), dialServer(t, s, 3)
	io.WriteString(quick, "quick\n")
	io.WriteString(slow, "slow\n")
	for range 2 {
		select {
		case <-answering:
		case <-time.After(5 * time.Second):
			t.Fatal("the requests were not read")
		}
	}
	closed := make(chan struct{})
	go func() { s.close(); close(closed) }()
	closedByServer(t, idle, "a connection waiting for its request, at close")
	quick.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(quick); err != nil || string(got) != "ok quick\n" {
		t.Errorf("an answer being written at close: %q, %v", got, err)
	}
	closedByServer(t, slow, "an answer slower than closeWait")
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
}

// failingListener is a listener whose every Accept fails, as one out of
// descriptors does; it counts the attempts.
type failingListener struct {
	net.Listener
	mu      sync.Mutex
	accepts int
	closed  bool
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, net.ErrClosed
	}
	l.accepts++
	return nil, errors.New("accept: too many open files")
}

func (l *failingListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

// TestConnServerAcceptBackoff: accept errors do not end the accept loop,
// which waits between tries, doubling (5, 10, 20 ... ms: 7 tries in the
// first 0.7 s, where a fixed 10 ms would be 70), and close does not wait
// for the back-off to end.
func TestConnServerAcceptBackoff(t *testing.T) {
	ln := &failingListener{Listener: newLocalListener(t)}
	s := &connServer{ln: ln, maxConns: 4, headerTimeout: time.Second, closeWait: time.Second, handle: echoLines}
	s.start()
	time.Sleep(700 * time.Millisecond)
	ln.mu.Lock()
	n := ln.accepts
	ln.mu.Unlock()
	if n < 3 || n > 10 {
		t.Errorf("%d accepts in 0.7 s; want about 7 (doubling waits from %v)", n, minAcceptBackoff)
	}
	// Now the loop waits 640 ms.
	start := time.Now()
	s.close()
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("close took %v during a back-off", d)
	}
}
