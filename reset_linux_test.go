package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Resets meeting a slow reader, through both relays. Linux only: elsewhere
// the goroutine relay resets both sides at once (conn_other.go).

// TestResetAfterEndSlowReader: the server sends a large answer and closes;
// the client, slow to read, then writes twice; the server's kernel answers
// the first with a reset, which reaches the relay while the answer's tail
// (and its end, if the server got to send it) is still unread there, and
// the second write meets that reset. The client gets all the server sent,
// then the end if it came before the reset, or the reset if it did not
// (never a clean end after a cut answer), and the relay lets the
// connection go without waiting for the client to close.
func TestResetAfterEndSlowReader(t *testing.T) {
	answer := randomBytes(31, 3<<20)
	closed := make(chan struct{}, 1)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		c.Write(answer)
		c.Close()
		closed <- struct{}{}
	})
	relayModesWith(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, r *Relay, addr string) {
		c := dialSlowReader(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		<-closed
		time.Sleep(200 * time.Millisecond) // the answer waits in the relay
		c.Write([]byte("x"))               // reaches the closed server: reset
		time.Sleep(200 * time.Millisecond)
		c.Write([]byte("y")) // meets the reset: nowhere to go
		time.Sleep(200 * time.Millisecond)
		got, err := io.ReadAll(c)
		switch {
		case len(got) > len(answer) || !bytes.Equal(got, answer[:len(got)]):
			t.Fatalf("client got %d bytes that are not the server's answer", len(got))
		case len(got) < len(answer) && err == nil:
			// The server's reset threw away what it had not sent yet: the
			// client must learn that its answer was cut.
			t.Fatalf("client got %d bytes of %d and a clean end; want the server's reset", len(got), len(answer))
		}
		if !eventually(5*time.Second, func() bool { return r.Active() == 0 }) {
			t.Fatalf("%d connections still open after the server's reset; want 0", r.Active())
		}
	})
}

// TestResetReachesSlowReader: the server sends an answer and resets
// (no end); the client reads slowly, so most of the answer still waits in
// the relay's socket to it when the reset reaches the relay. The client
// gets the whole answer first, then the reset, as without a relay.
func TestResetReachesSlowReader(t *testing.T) {
	answer := randomBytes(32, 256<<10)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		c.Write(answer)
		time.Sleep(300 * time.Millisecond) // the relay has taken it all
		c.SetLinger(0)
		c.Close()
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		c := dialSlowReader(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		time.Sleep(600 * time.Millisecond) // the reset has reached the relay
		var got []byte
		buf := make([]byte, 4096)
		for len(got) <= len(answer) {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if !bytes.Equal(got, answer) {
					t.Fatalf("client got %d bytes, then %v; want the server's %d first", len(got), err, len(answer))
				}
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("after the answer: %v; want the server's reset passed on", err)
				}
				return
			}
			time.Sleep(time.Millisecond) // a slow reader
		}
		t.Fatalf("client got %d bytes; the server sent %d", len(got), len(answer))
	})
}

// dialSlowReader connects to addr with a 4 KiB receive buffer, so that what
// the client has not read yet waits at the sender.
func dialSlowReader(t *testing.T, addr string) *net.TCPConn {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return nil
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// TestCutNeverCleanEnd: the server never reads and resets while the
// relay is writing to it, so that the write, not a read, meets the reset;
// the client must get the reset, never a clean end.
func TestCutNeverCleanEnd(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return nil
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serveEach(ln, func(c *net.TCPConn) {
		time.Sleep(300 * time.Millisecond) // reads nothing
		c.SetLinger(0)
		c.Close()
	})
	flood := make([]byte, 32<<20)
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		for i := range 8 {
			c := dialTCP(t, addr)
			c.SetWriteDeadline(time.Now().Add(150 * time.Millisecond))
			_, werr := c.Write(flood) // stops when every buffer on the way is full
			if errors.Is(werr, syscall.ECONNRESET) || errors.Is(werr, syscall.EPIPE) {
				c.Close() // the reset came while writing (on a slow machine): the write took it
				continue
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := c.Read(make([]byte, 1))
			c.Close()
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection %d: the client read %v after the server's reset; want the reset", i, err)
			}
		}
	})
}

// TestResetAfterCompleteAnswer: the server's whole answer and its end have
// reached the relay when its reset follows (the client wrote to it after
// its end, twice): the client still gets all of it and a clean end.
func TestResetAfterCompleteAnswer(t *testing.T) {
	answer := randomBytes(41, 2<<20)
	ended := make(chan bool, 1)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		c.Write(answer)
		acked := eventually(5*time.Second, func() bool { return sendQueue(t, c) == 0 })
		c.Close()
		ended <- acked
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		c := dialSlowReader(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if !<-ended {
			t.Fatal("the relay did not take the whole answer")
		}
		time.Sleep(200 * time.Millisecond)
		c.Write([]byte("x")) // after the server's end: reset
		time.Sleep(200 * time.Millisecond)
		c.Write([]byte("y")) // meets that reset in the relay
		time.Sleep(200 * time.Millisecond)
		got, err := io.ReadAll(c)
		if !bytes.Equal(got, answer) || err != nil {
			t.Fatalf("client got %d of %d bytes, then %v; want all and a clean end", len(got), len(answer), err)
		}
	})
}

// TestBothPeersReset: both peers reset while data waits for each of them;
// the relay lets the connection go.
func TestBothPeersReset(t *testing.T) {
	ln := newLocalListener(t)
	accepted := make(chan *net.TCPConn, 1)
	serveEach(ln, func(c *net.TCPConn) { accepted <- c })
	flood := make([]byte, 16<<20)
	relayModesWith(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, r *Relay, addr string) {
		for i := range 5 {
			c := dialTCP(t, addr)
			s := <-accepted
			c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			done := make(chan struct{})
			go func() { s.Write(flood); close(done) }()
			c.Write(flood)
			<-done
			c.SetLinger(0)
			s.SetLinger(0)
			c.Close()
			s.Close()
			if !eventually(5*time.Second, func() bool { return r.Active() == 0 }) {
				t.Fatalf("connection %d still open after both peers reset", i)
			}
		}
	})
}

// sendQueue returns what c has sent that its peer has not acknowledged.
func sendQueue(t *testing.T, c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := -1
	raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	return n
}
