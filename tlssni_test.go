package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startSNIRoutes starts routes written as text (LOCALPORT is replaced by
// one free loopback port they share) in one Relay, as the service would:
// each route on a port that sni= shares is marked so. It returns the
// relay, the shared address and the events.
func startSNIRoutes(t testing.TB, specs ...string) (*Relay, string, *eventLog) {
	t.Helper()
	port := freePort(t)
	log := &eventLog{}
	r := &Relay{Events: log.add}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	var all []RouteSpec
	for _, s := range specs {
		rs, err := ParseRouteSpec(strings.Replace(s, "LOCALPORT", "127.0.0.1:"+strconv.Itoa(port), 1))
		if err != nil {
			t.Fatalf("ParseRouteSpec(%q): %v", s, err)
		}
		all = append(all, rs)
	}
	cfg := &Config{Routes: all}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	for i, rs := range all {
		rt := rs.Route()
		rt.SNIShared = sharesPortBySNI(all, rs)
		if err := r.Start(i+1, rt); err != nil {
			t.Fatalf("start %q: %v", specs[i], err)
		}
	}
	return r, "127.0.0.1:" + strconv.Itoa(port), log
}

// tlsBackend starts a TLS echo server whose certificate's CN is cn, and
// returns its port.
func tlsBackend(t testing.TB, ca *testCA, dir, cn string) int {
	t.Helper()
	cert, key := ca.issue(t, dir, cn, certSpec{cn: cn, names: []string{cn, "*.b.example.com", "b.example.com", "y.x.b.example.com", "a.example.com", "c.example.com", "other.example.com"}})
	return portOf(tlsEchoServer(t, cert, key, nil).Addr())
}

// whoAnswers connects to addr asking for server name and returns the CN
// of the certificate that answered, after an echo through it.
func whoAnswers(t testing.TB, addr, name string, ca *testCA) (string, error) {
	t.Helper()
	st, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: name}, "hello "+name)
	if err != nil {
		return "", err
	}
	return st.PeerCertificates[0].Subject.CommonName, nil
}

// TestSNIRouting: routes sharing a port by sni= get the clients that ask
// for their names (exact and *. wildcards), the route without sni= the
// others; the bytes reach the backends as sent, so they terminate TLS.
func TestSNIRouting(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	a, b, def := tlsBackend(t, ca, dir, "backend-a"), tlsBackend(t, ca, dir, "backend-b"), tlsBackend(t, ca, dir, "backend-default")
	r, addr, log := startSNIRoutes(t,
		fmt.Sprintf("LOCALPORT 127.0.0.1 %d sni=a.example.com", a),
		fmt.Sprintf("LOCALPORT 127.0.0.1 %d sni=*.b.example.com,c.example.com", b),
		fmt.Sprintf("LOCALPORT 127.0.0.1 %d", def))
	for _, tt := range []struct{ name, want string }{
		{"a.example.com", "backend-a"},
		{"A.Example.COM", "backend-a"},
		{"x.b.example.com", "backend-b"},
		{"c.example.com", "backend-b"},
		{"b.example.com", "backend-default"},     // *. needs one label more
		{"y.x.b.example.com", "backend-default"}, // and only one
		{"other.example.com", "backend-default"},
	} {
		got, err := whoAnswers(t, addr, tt.name, ca)
		if err != nil || got != tt.want {
			t.Errorf("server name %s: answered by %q, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	log.find(t, ConnOpened, "server name a.example.com")
	if n := r.stats[1].sum().Total; n != 2 {
		t.Errorf("route a relayed %d connections; want 2", n)
	}
	// Splitting the ClientHello into 1-byte writes changes nothing.
	c := dialTCP(t, addr)
	defer c.Close()
	tc := tls.Client(slowWriter{c}, &tls.Config{RootCAs: ca.pool(), ServerName: "a.example.com"})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil || tc.ConnectionState().PeerCertificates[0].Subject.CommonName != "backend-a" {
		t.Fatalf("1-byte writes: %v", err)
	}
}

// slowWriter writes its bytes one at a time.
type slowWriter struct{ net.Conn }

func (w slowWriter) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := w.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

// TestSNINoMatch: with no route for the name and no default, the client
// is closed and the name asked for is logged; plaintext and a silent
// client are cut too, each with one line.
func TestSNINoMatch(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	a := tlsBackend(t, ca, dir, "backend-a")
	r, addr, log := startSNIRoutes(t, fmt.Sprintf("LOCALPORT 127.0.0.1 %d sni=a.example.com handshake=300ms", a))
	if _, err := whoAnswers(t, addr, "x.example.com", ca); err == nil {
		t.Fatal("a client for an unknown name got through")
	}
	log.find(t, TLSFailed, `unknown server name "x.example.com"`)
	c := dialTCP(t, addr)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	log.find(t, TLSFailed, "client spoke plaintext")
	c = dialTCP(t, addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	log.find(t, TLSFailed, "no ClientHello within 300ms")
	if got := r.stats[1].tls.failed.Load(); got != 3 {
		t.Errorf("failed %d; want 3", got)
	}
	if _, err := whoAnswers(t, addr, "a.example.com", ca); err != nil {
		t.Fatalf("the route stopped working: %v", err)
	}
}

// TestSNIWithTLSAndProxy: a route with tls= and sni= terminates with its
// own certificate for its names, while another on the port passes its
// clients' TLS through; proxy= sends the header before the ClientHello.
func TestSNIWithTLSAndProxy(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "terminated", certSpec{cn: "relay-own", names: []string{"t.example.com"}})
	plain := echoServer(t)
	// A backend that reads a PROXY header, then speaks TLS.
	pcert, pkey := ca.issue(t, dir, "proxied", certSpec{cn: "backend-proxied", names: []string{"p.example.com"}})
	pair, _ := tls.LoadX509KeyPair(pcert, pkey)
	pln := newLocalListener(t)
	headers := make(chan string, 4)
	serveEach(pln, func(c *net.TCPConn) {
		defer c.Close()
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		headers <- line
		if err != nil {
			return
		}
		rest, _ := br.Peek(br.Buffered())
		tc := tls.Server(&prefixConn{Conn: c, buf: append([]byte(nil), rest...)}, &tls.Config{Certificates: []tls.Certificate{pair}})
		io.Copy(tc, tc)
		tc.CloseWrite()
	})
	_, addr, log := startSNIRoutes(t,
		fmt.Sprintf("LOCALPORT 127.0.0.1 %d sni=t.example.com tls=%s,%s", portOf(plain.Addr()), cert, key),
		fmt.Sprintf("LOCALPORT 127.0.0.1 %d sni=p.example.com proxy=v1", portOf(pln.Addr())))
	if got, err := whoAnswers(t, addr, "t.example.com", ca); err != nil || got != "relay-own" {
		t.Errorf("t.example.com: %q, %v; want the route's own certificate", got, err)
	}
	log.find(t, ConnOpened, "client TLS 1.3 TLS_AES_128_GCM_SHA256 server name t.example.com")
	if got, err := whoAnswers(t, addr, "p.example.com", ca); err != nil || got != "backend-proxied" {
		t.Errorf("p.example.com: %q, %v; want the backend's certificate", got, err)
	}
	select {
	case h := <-headers:
		if !strings.HasPrefix(h, "PROXY TCP4 127.0.0.1 127.0.0.1 ") {
			t.Errorf("header %q; want PROXY TCP4", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PROXY header")
	}
}

// TestSNIPortSharingRules: routes may share a port only by sni=, with at
// most one default and no name twice.
func TestSNIPortSharingRules(t *testing.T) {
	for _, tt := range []struct {
		routes []string
		want   string // "" is valid
	}{
		{[]string{"443 10.0.0.1 443 sni=a.example.com", "443 10.0.0.2 443 sni=b.example.com", "443 10.0.0.3 443"}, ""},
		{[]string{"443 10.0.0.1 443 sni=a.example.com", "443 10.0.0.2 443 sni=b.example.com,A.example.com"}, "server name a.example.com of port 443 is routed twice"},
		{[]string{"443 10.0.0.1 443 sni=a.example.com", "443 10.0.0.2 443", "443 10.0.0.3 443"}, "local port 443 is already used by route 1"},
		{[]string{"443 10.0.0.1 443 sni=a.example.com", "127.0.0.1:443 10.0.0.2 443 sni=b.example.com"}, "overlaps route 0"},
	} {
		cfg := &Config{}
		for _, s := range tt.routes {
			r, err := ParseRouteSpec(s)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Routes = append(cfg.Routes, r)
		}
		err := cfg.Validate()
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v; want %q", tt.routes, err, tt.want)
		}
	}
}

// TestSNISeveralBackends: an sni= route whose first backend refuses goes
// on to the next, and the ClientHello reaches it whole.
func TestSNISeveralBackends(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	good := tlsBackend(t, ca, dir, "backend-a")
	dead := freePort(t)
	_, addr, log := startSNIRoutes(t, fmt.Sprintf("LOCALPORT 127.0.0.1 %d sni=a.example.com also=127.0.0.1:%d balance=first", dead, good))
	if got, err := whoAnswers(t, addr, "a.example.com", ca); err != nil || got != "backend-a" {
		t.Fatalf("answered by %q, %v; want backend-a", got, err)
	}
	log.find(t, ConnOpened, fmt.Sprintf("to 127.0.0.1:%d (server name a.example.com)", good))
}

// TestSNIFindRoute: a local side that routes sharing a port by sni= have
// in common does not pick one of them: the route's number does.
func TestSNIFindRoute(t *testing.T) {
	cfg := &Config{}
	for _, s := range []string{"443 10.0.0.1 443 sni=a.example.com", "443 10.0.0.2 443", "8080 10.0.0.3 80"} {
		r, err := ParseRouteSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	want := ":443 names several routes that share the port by sni=: route 0 (sni=a.example.com), route 1 (without sni=); give the route's number"
	if _, err := cfg.findRoute(":443"); err == nil || err.Error() != want {
		t.Errorf("findRoute(:443) error %v; want %q", err, want)
	}
	if i, err := cfg.findRoute(":8080"); err != nil || i != 2 {
		t.Errorf("findRoute(:8080) = %d, %v; want 2", i, err)
	}
	if i, err := cfg.findRoute("1"); err != nil || i != 1 {
		t.Errorf("findRoute(1) = %d, %v; want 1", i, err)
	}
}
