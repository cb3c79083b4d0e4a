package main

import (
	"bytes"
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
