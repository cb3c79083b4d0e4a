package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Conversations as real protocols hold them, through both relays: the
// engine (Linux routes without a data log) and the goroutine relay (routes
// with a data log, and every route on Windows).

// relayModes starts route 0 of a new relay to remote on each relay and runs
// the test against its address.
func relayModes(t *testing.T, remoteHost string, remotePort int, test func(t *testing.T, addr string)) {
	relayModesWith(t, remoteHost, remotePort, func(t *testing.T, _ *Relay, addr string) { test(t, addr) })
}

// relayModesWith is relayModes for a test that needs the relay too.
func relayModesWith(t *testing.T, remoteHost string, remotePort int, test func(t *testing.T, r *Relay, addr string)) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		r := kind.newRelay(nil)
		defer r.Shutdown(context.Background())
		rt := Route{ListenAddr: "127.0.0.1:0", RemoteHost: remoteHost, RemotePort: remotePort}
		if err := r.Start(0, rt); err != nil {
			t.Fatal(err)
		}
		test(t, r, r.Addr(0).String())
	})
}

// TestServerSpeaksFirst: an SMTP-like dialogue: the server's banner comes
// before the client says anything, then lines go back and forth.
func TestServerSpeaksFirst(t *testing.T) {
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "220 relaytcp test ready\r\n")
		in := bufio.NewReader(c)
		for {
			line, err := in.ReadString('\n')
			if err != nil {
				return
			}
			if line == "QUIT\r\n" {
				fmt.Fprintf(c, "221 bye\r\n")
				return
			}
			fmt.Fprintf(c, "250 %s", line)
		}
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		c := dialTCP(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		in := bufio.NewReader(c)
		if banner, err := in.ReadString('\n'); err != nil || banner != "220 relaytcp test ready\r\n" {
			t.Fatalf("banner %q, %v", banner, err)
		}
		for i := range 300 {
			cmd := fmt.Sprintf("RCPT TO:<user%d@example.com>%s\r\n", i, strings.Repeat("x", i%97))
			if _, err := io.WriteString(c, cmd); err != nil {
				t.Fatal(err)
			}
			if reply, err := in.ReadString('\n'); err != nil || reply != "250 "+cmd {
				t.Fatalf("command %d: reply %q, %v", i, reply, err)
			}
		}
		io.WriteString(c, "QUIT\r\n")
		if reply, err := in.ReadString('\n'); err != nil || reply != "221 bye\r\n" {
			t.Fatalf("QUIT: reply %q, %v", reply, err)
		}
		if _, err := in.ReadByte(); err != io.EOF {
			t.Fatalf("after the server closed: %v; want EOF", err)
		}
	})
}

// TestClientDataBeforeRemote: the client sends its whole request and its
// end at once, while the relay is still resolving the remote name and
// connecting; none of it may be lost.
func TestClientDataBeforeRemote(t *testing.T) {
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		sum, n, err := hashReader(c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d %x", n, sum)
	})
	req := randomBytes(21, 300_000)
	want := fmt.Sprintf("%d %x", len(req), sha256.Sum256(req))
	relayModes(t, "localhost", portOf(ln.Addr()), func(t *testing.T, addr string) {
		c := dialTCP(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			c.Write(req)
			c.CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != want {
			t.Fatalf("server saw %q (%v); want %q", got, err, want)
		}
	})
}

// TestServerClosesFirst: an HTTP/1.0 exchange: the server reads the
// request, sends a large response and closes; the client reads it all, then
// the end.
func TestServerClosesFirst(t *testing.T) {
	body := randomBytes(22, 3<<20)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		in := bufio.NewReader(c)
		for {
			line, err := in.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body)
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		for i := range 5 {
			c := dialTCP(t, addr)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, "GET / HTTP/1.0\r\nHost: example\r\n\r\n")
			got, err := io.ReadAll(c)
			c.Close()
			head := fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
			if err != nil || !bytes.HasPrefix(got, []byte(head)) || !bytes.Equal(got[len(head):], body) {
				t.Fatalf("request %d: got %d bytes (%v); want the %d-byte response", i, len(got), err, len(head)+len(body))
			}
		}
	})
}

// TestFullDuplex: both sides send megabytes at the same time, in chunks of
// every size, before either reads what the other sends back; with bounded
// buffers everywhere this deadlocks unless each direction flows on its own.
func TestFullDuplex(t *testing.T) {
	up, down := randomBytes(23, 6<<20), randomBytes(24, 5<<20)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		var wg sync.WaitGroup
		wg.Go(func() {
			writeChunks(c, down, 25)
			c.CloseWrite()
		})
		sum, n, err := hashReader(c)
		wg.Wait()
		if err != nil || n != int64(len(up)) || sum != sha256.Sum256(up) {
			c.SetLinger(0) // the client sees a reset: the upload arrived changed
		}
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		c := dialTCP(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		var wg sync.WaitGroup
		wg.Go(func() {
			writeChunks(c, up, 26)
			c.CloseWrite()
		})
		got, err := io.ReadAll(c)
		wg.Wait()
		if err != nil || !bytes.Equal(got, down) {
			t.Fatalf("client got %d bytes (%v); want the server's %d", len(got), err, len(down))
		}
	})
}

// writeChunks writes p in chunks of pseudo-random sizes from 1 byte to
// 64 KiB.
func writeChunks(w io.Writer, p []byte, seed uint64) {
	sizes := randomBytes(seed, 4096)
	for i := 0; len(p) > 0; i++ {
		n := 1 + int(sizes[i%len(sizes)])<<uint(sizes[(i+1)%len(sizes)]%9)
		n = min(n, len(p), 64<<10)
		if _, err := w.Write(p[:n]); err != nil {
			return
		}
		p = p[n:]
	}
}

// TestServerResetsAfterResponse: the server answers and resets at once (as
// one does that closes with the client's data unread, say an HTTP server
// refusing an upload). Without a relay the client reads the answer before
// the reset; through the relay too: what the server sent before its reset
// is delivered, then the client's connection ends.
func TestServerResetsAfterResponse(t *testing.T) {
	answer := append([]byte("HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n\r\n"), randomBytes(27, 32<<10)...)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		in := bufio.NewReader(c)
		if _, err := in.ReadString('\n'); err != nil {
			c.Close()
			return
		}
		c.Write(answer)
		c.SetLinger(0)
		c.Close()
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		for i := range 20 {
			c := dialTCP(t, addr)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, "POST /upload HTTP/1.1\r\n")
			got, err := io.ReadAll(c)
			c.Close()
			if !bytes.Equal(got, answer) {
				t.Fatalf("exchange %d: client got %d bytes (%v); want the server's %d", i, len(got), err, len(answer))
			}
		}
	})
}

// TestServerEndsFirstClientGoesOn: the server sends its part and ends its
// direction (a half-close), then reads what the client sends until the
// client ends too: the relay passes each end on its own.
func TestServerEndsFirstClientGoesOn(t *testing.T) {
	upload := randomBytes(28, 2<<20)
	received := make(chan string, 4)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "send me your data\n")
		c.CloseWrite()
		sum, n, err := hashReader(c)
		received <- fmt.Sprintf("%d %x %v", n, sum, err)
	})
	want := fmt.Sprintf("%d %x <nil>", len(upload), sha256.Sum256(upload))
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		c := dialTCP(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		greeting, err := io.ReadAll(c) // up to the server's end
		if err != nil || string(greeting) != "send me your data\n" {
			t.Fatalf("greeting %q, %v", greeting, err)
		}
		writeChunks(c, upload, 29)
		c.CloseWrite()
		select {
		case got := <-received:
			if got != want {
				t.Fatalf("server received %s; want %s", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the server never saw the client's end")
		}
	})
}

// TestClientResetsAfterRequest: the client sends a request and resets at
// once; the server still gets the request, then the end.
func TestClientResetsAfterRequest(t *testing.T) {
	request := randomBytes(30, 32<<10)
	received := make(chan []byte, 1)
	ln := newLocalListener(t)
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		got, _ := io.ReadAll(c) // ends with the reset, or an EOF
		received <- got
	})
	relayModes(t, "127.0.0.1", portOf(ln.Addr()), func(t *testing.T, addr string) {
		for i := range 20 {
			c := dialTCP(t, addr)
			c.Write(request)
			c.SetLinger(0)
			c.Close()
			select {
			case got := <-received:
				if !bytes.Equal(got, request) {
					t.Fatalf("exchange %d: server got %d bytes; want the client's %d", i, len(got), len(request))
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("exchange %d: the server's connection never ended", i)
			}
		}
	})
}
