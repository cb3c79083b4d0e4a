package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proxyBackend is a server that reads a PROXY header from each connection
// and keeps it, then echoes; connections without a valid header are
// closed.
type proxyBackend struct {
	ln       *net.TCPListener
	mu       sync.Mutex
	parsed   []proxyHeader
	accepted int
}

func newProxyBackend(t *testing.T) *proxyBackend {
	b := &proxyBackend{ln: newLocalListener(t)}
	serveEach(b.ln, func(c *net.TCPConn) {
		defer c.Close()
		b.mu.Lock()
		b.accepted++
		b.mu.Unlock()
		h, rest, err := readProxyHeader(c, 5*time.Second)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.parsed = append(b.parsed, h)
		b.mu.Unlock()
		c.Write(rest)
		io.Copy(c, c)
		c.CloseWrite()
	})
	return b
}

// TestProxySendsHeaders: proxy=v1 and proxy=v2 send the client's address
// and the one it connected to, byte for byte, then the client's bytes,
// for IPv4 and IPv6 clients, through both relays.
func TestProxySendsHeaders(t *testing.T) {
	type family struct{ name, listen, client string }
	families := []family{{"ipv4", "127.0.0.1:0", "127.0.0.1"}}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		families = append(families, family{"ipv6", "[::1]:0", "::1"})
	}
	for _, version := range []string{proxyV1, proxyV2} {
		for _, fam := range families {
			t.Run(version+"/"+fam.name, func(t *testing.T) {
				forRelays(t, func(t *testing.T, kind relayKind) {
					payload := "hello after the header"
					ln := newLocalListener(t)
					got := make(chan []byte, 1)
					serveEach(ln, func(c *net.TCPConn) {
						defer c.Close()
						c.SetReadDeadline(time.Now().Add(5 * time.Second))
						all, _ := io.ReadAll(c)
						got <- all
					})
					spec, err := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d proxy=%s", portOf(ln.Addr()), version))
					if err != nil {
						t.Fatal(err)
					}
					rt := spec.Route()
					rt.ListenAddr = fam.listen
					r := kind.newRelay(nil)
					if err := r.Start(0, rt); err != nil {
						t.Fatal(err)
					}
					defer r.Shutdown(context.Background())
					c := dialTCP(t, r.Addr(0).String())
					client := c.LocalAddr().(*net.TCPAddr).AddrPort()
					dst := c.RemoteAddr().(*net.TCPAddr).AddrPort()
					c.Write([]byte(payload))
					c.CloseWrite()
					c.Close()
					want := append(proxyHeaderBytes(version, client, dst), payload...)
					select {
					case all := <-got:
						if !bytes.Equal(all, want) {
							t.Errorf("%s %s: the backend got\n%q\nwant\n%q", version, fam.name, all, want)
						}
					case <-time.After(10 * time.Second):
						t.Fatal("nothing reached the backend")
					}
				})
			})
		}
	}
}

// startProxyRoute starts route 0 of a new relay from a route's text form
// (after LOCALPORT) on 127.0.0.1:0 and records its events.
func startProxyRoute(t *testing.T, kind relayKind, text string) (*Relay, string, *eventRecorder) {
	return startBackendRoute(t, kind, text)
}

// TestChainKeepsTheClient: relaytcp with proxy=v2 in front of relaytcp
// with acceptproxy=1: the second sees, logs and filters the original
// client (deny=), passes it on in its own proxy=v1 header, and relays.
func TestChainKeepsTheClient(t *testing.T) {
	needLoopbackAliases(t)
	forRelays(t, func(t *testing.T, kind relayKind) {
		final := newProxyBackend(t)
		_, bAddr, bEvents := startProxyRoute(t, kind, fmt.Sprintf("127.0.0.1 %d acceptproxy=1 proxy=v1 allow=127.0.0.1 deny=127.0.0.5", portOf(final.ln.Addr())))
		bPort := netip.MustParseAddrPort(bAddr).Port()
		_, aAddr, _ := startProxyRoute(t, kind, fmt.Sprintf("127.0.0.1 %d proxy=v2", bPort))

		// 127.0.0.6 gets through; B logs it and names it to the backend.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.6")}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", aAddr)
		if err != nil {
			t.Fatal(err)
		}
		client := c.LocalAddr().String()
		c.Write([]byte("ping"))
		c.(*net.TCPConn).CloseWrite()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		echo, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(echo) != "ping" {
			t.Fatalf("through the chain: %q, %v", echo, err)
		}
		if !eventually(5*time.Second, func() bool { return bEvents.countClient(ConnOpened, client) == 1 }) {
			t.Errorf("B did not log the original client %s: %v", client, bEvents.events)
		}
		final.mu.Lock()
		if len(final.parsed) != 1 || final.parsed[0].src.String() != client || final.parsed[0].version != 1 {
			t.Errorf("the backend's header: %+v; want v1 from %s", final.parsed, client)
		}
		final.mu.Unlock()

		// 127.0.0.5 is denied by B, by its own address.
		// A fixed port, to know the client's address even if the reset
		// beats the end of its connect on loopback.
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP("127.0.0.5"), Port: freePort(t)}
		denied := d.LocalAddr.String()
		if c, err = d.Dial("tcp", aAddr); err == nil {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if n, _ := c.Read(make([]byte, 1)); n != 0 {
				t.Error("a denied client got data")
			}
			c.Close()
		} else if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		if !eventually(5*time.Second, func() bool { return bEvents.countClient(ConnRefused, denied) == 1 }) {
			t.Errorf("B did not refuse the original client %s by deny=: %v", denied, bEvents.events)
		}
		if e := bEvents.first(ConnRefused); e.Err == nil || e.Err.Error() != "denied by deny=127.0.0.5/32" {
			t.Errorf("refusal: %+v", e)
		}
	})
}

// countClient counts the events of a kind for a client.
func (r *eventRecorder) countClient(kind EventKind, client string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && e.Client == client {
			n++
		}
	}
	return n
}

// TestAcceptProxyRefusesBadHeaders: missing, truncated, malformed and
// oversized headers, and a header sent too slowly, are refused without a
// byte relayed; a valid one, and v2's LOCAL, are relayed.
func TestAcceptProxyRefusesBadHeaders(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		backend := newTestBackend(t, "B")
		_, addr, rec := startProxyRoute(t, kind, fmt.Sprintf("127.0.0.1 %d acceptproxy=1 connect=500ms", backend.port))
		bad := []struct {
			name, send string
			close      bool
			want       string
		}{
			{"missing", "GET / HTTP/1.0\r\n\r\n", false, "no PROXY header"},
			{"truncated", "PROXY TCP4 1.2.3.4 5.6.", true, "truncated PROXY header: the client ended after 23 bytes"},
			{"empty", "", true, "no PROXY header: the client ended after 0 bytes"},
			{"malformed", "PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n", false, `"99999" is not a port`},
			{"oversized v1", "PROXY TCP4 " + strings.Repeat("1", 120), false, "no CRLF in the first 107 bytes"},
			{"oversized v2", string(proxyV2Signature) + "\x21\x11\xff\xff", false, "more than 4112"},
			{"slow", "PROXY TCP4", false, "no PROXY header within 500ms"},
		}
		for _, tt := range bad {
			c := dialTCP(t, addr)
			c.Write([]byte(tt.send))
			if tt.close {
				c.CloseWrite()
			}
			start := time.Now()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := c.Read(make([]byte, 100))
			c.Close()
			if n != 0 {
				t.Errorf("%s: the client got %d bytes", tt.name, n)
			}
			if tt.name == "slow" && time.Since(start) > 3*time.Second {
				t.Errorf("slow: cut after %v; want about 500ms", time.Since(start))
			}
			if !eventually(5*time.Second, func() bool { return rec.count(ConnRefused, tt.want) == 1 }) {
				t.Errorf("%s: no Refused event with %q: %v", tt.name, tt.want, rec.events)
			}
		}
		if n := backend.accepted.Load(); n != 0 {
			t.Errorf("%d connections reached the backend; want none", n)
		}
		// A valid header, then data in the same packet; and v2's LOCAL.
		for _, hdr := range [][]byte{
			[]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n"),
			append(append([]byte(nil), proxyV2Signature...), 0x20, 0x00, 0x00, 0x00),
		} {
			c := dialTCP(t, addr)
			c.Write(append(hdr, "ping\n"...))
			c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 7)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "B\nping\n" {
				t.Errorf("after header %q: %q, %v", hdr, buf, err)
			}
			c.Close()
		}
		if !eventually(5*time.Second, func() bool {
			return rec.countClient(ConnOpened, "203.0.113.7:40000") == 1 && rec.count(ConnOpened, "") == 2
		}) {
			t.Errorf("the valid header's client is not the one logged: %v", rec.events)
		}
	})
}

// TestAcceptProxyDataLogHoldsOnlyTheData: with a data log, what the client
// sent after its header is logged and relayed, the header is neither.
func TestAcceptProxyDataLogHoldsOnlyTheData(t *testing.T) {
	ln := newLocalListener(t)
	serveEach(ln, echo)
	spec, _ := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d acceptproxy=1", portOf(ln.Addr())))
	rt := spec.Route()
	rt.ListenAddr, rt.DataLogDir = "127.0.0.1:0", tempDir(t)
	r := &Relay{}
	if err := r.Start(0, rt); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	c := dialTCP(t, r.Addr(0).String())
	payload := "first bytes with the header"
	c.Write([]byte("PROXY TCP4 198.51.100.9 127.0.0.1 1234 80\r\n" + payload))
	c.CloseWrite()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != payload {
		t.Fatalf("echo %q, %v", got, err)
	}
	var logs []string
	eventually(5*time.Second, func() bool {
		logs, _ = filepath.Glob(filepath.Join(rt.DataLogDir, "RL*.LOG"))
		return len(logs) == 1
	})
	if len(logs) != 1 {
		t.Fatalf("data logs: %v", logs)
	}
	var packets []loggedPacket
	eventually(5*time.Second, func() bool {
		f, err := os.Open(logs[0])
		if err != nil {
			return false
		}
		defer f.Close()
		packets, _ = parseDataLog(f)
		return len(packets) == 2
	})
	if len(packets) != 2 || string(packets[0].data) != payload || !strings.HasPrefix(packets[0].from, "198.51.100.9:1234") {
		t.Errorf("data log packets: %+v", packets)
	}
}

// TestCommandLineProxyFlags: -proxy and -acceptproxy on the command line.
func TestCommandLineProxyFlags(t *testing.T) {
	final := newProxyBackend(t)
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(final.ln.Addr()), "-proxy", "v2", "-acceptproxy", "-allow", "127.0.0.1")
	c := dialTCP(t, p.addr())
	c.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nping"))
	c.CloseWrite()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "ping" {
		time.Sleep(200 * time.Millisecond)
		t.Fatalf("echo %q, %v\n%s", got, err, p.output())
	}
	c.Close()
	if err := p.waitLine(time.Now().Format("2006/01/02")+" ", 5*time.Second); err != nil || !eventually(5*time.Second, func() bool {
		return strings.Contains(strings.Join(p.stdoutLines(), "\n"), "Connection from 203.0.113.7:40000 to 127.0.0.1:")
	}) {
		t.Errorf("the log does not name the client from the header:\n%s", p.output())
	}
	final.mu.Lock()
	defer final.mu.Unlock()
	if len(final.parsed) != 1 || final.parsed[0].version != 2 || final.parsed[0].src.String() != "203.0.113.7:40000" {
		t.Errorf("the backend's header: %+v", final.parsed)
	}
}
