package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog collects a Relay's events for a test.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// find waits up to 10 s for an event of kind whose message contains want,
// and returns its message.
func (l *eventLog) find(t testing.TB, kind EventKind, want string) string {
	t.Helper()
	var got string
	if !eventually(10*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, e := range l.events {
			if e.Kind == kind && strings.Contains(e.Message(), want) {
				got = e.Message()
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no event %d containing %q; events:\n%s", kind, want, l.dump())
	}
	return got
}

// count returns how many events of kind were reported.
func (l *eventLog) count(kind EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (l *eventLog) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		b.WriteString(e.Message() + "\n")
	}
	return b.String()
}

// startSpecRoute starts the route written as text (its local port is
// replaced by a free loopback one) in a new Relay, and returns the relay,
// the route's address and its events.
func startSpecRoute(t testing.TB, spec string) (*Relay, string, *eventLog) {
	t.Helper()
	rs, err := ParseRouteSpec(spec)
	if err != nil {
		t.Fatalf("ParseRouteSpec(%q): %v", spec, err)
	}
	log := &eventLog{}
	r := &Relay{Events: log.add}
	rt := rs.Route()
	rt.ListenAddr = "127.0.0.1:0"
	if err := r.Start(1, rt); err != nil {
		t.Fatalf("start %q: %v", spec, err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, r.Addr(1).String(), log
}

// startTLSRoute starts route 1 terminating TLS (a certificate for
// "relay" from a new test CA) in front of an echo server, with the other
// route options opts; it returns the CA and what startSpecRoute returns.
func startTLSRoute(t testing.TB, opts string) (*testCA, *Relay, string, *eventLog) {
	t.Helper()
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "relay"})
	backend := echoServer(t)
	r, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s %s", portOf(backend.Addr()), cert, key, opts))
	return ca, r, addr, log
}

// tlsRoundTrip sends msg through a TLS connection to addr (an echo behind
// it) and checks the echo; it returns the connection's state.
func tlsRoundTrip(t testing.TB, addr string, cfg *tls.Config, msg string) (tls.ConnectionState, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return tls.ConnectionState{}, err
	}
	if err := c.CloseWrite(); err != nil {
		return tls.ConnectionState{}, err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("read: %w (got %q)", err, got)
	}
	if string(got) != msg {
		return tls.ConnectionState{}, fmt.Errorf("got %q; want %q", got, msg)
	}
	return c.ConnectionState(), nil
}

func TestTLSOptionForms(t *testing.T) {
	checkSpecForms(t, nil, []specError{
		{"443 10.0.0.5 80 tls=c.pem", "invalid tls=c.pem: want CERTFILE,KEYFILE"},
		{"443 10.0.0.5 80 tls=c.pem,", "invalid tls=c.pem,: want CERTFILE,KEYFILE"},
		{"443 10.0.0.5 80 tls=a,b,c", "invalid tls=a,b,c"},
		{"443 10.0.0.5 80 tls=c,k tlsmin=1.1", "invalid tlsmin=1.1: want 1.2 or 1.3"},
		{"443 10.0.0.5 80 tlsmin=1.3", "option tlsmin= needs tls="},
		{"443 10.0.0.5 80 tlsclientca=ca.pem", "option tlsclientca= needs tls="},
		{"443 10.0.0.5 80 handshake=5s", "option handshake= needs tls= or sni="},
		{"443 10.0.0.5 80 tls=c,k handshake=soon", "invalid handshake=soon"},
		{"443 10.0.0.5 80 tls=c,k handshake=-1s", "invalid handshake=-1s"},
		{"443 10.0.0.5 80 backendtls=yes", "invalid backendtls=yes"},
		{"443 10.0.0.5 80 backendca=ca.pem", "option backendca= needs backendtls=1"},
		{"443 10.0.0.5 80 backendsni=x.example.com", "option backendsni= needs backendtls=1"},
		{"443 10.0.0.5 80 backendcert=c,k", "option backendcert= needs backendtls=1"},
		{"443 10.0.0.5 80 backendtls=noverify backendca=ca.pem", "backendtls=noverify does not verify"},
		{"443 10.0.0.5 80 backendtls=1 backendsni=bad_name!", "invalid backendsni=bad_name!"},
		{"443 10.0.0.5 80 sni=", "invalid sni=: empty list"},
		{"443 10.0.0.5 80 sni=a.*.example.com", "invalid sni=a.*.example.com"},
		{"443 10.0.0.5 80 sni=a..b", "invalid sni=a..b"},
		{"53 10.0.0.5 53 proto=udp tls=c,k", "option tls= does not apply to proto=udp routes"},
		{"53 10.0.0.5 53 proto=udp backendtls=1", "option backendtls= does not apply to proto=udp routes"},
		{"53 10.0.0.5 53 proto=udp sni=a.example.com", "option sni= does not apply to proto=udp routes"},
		{"8000-8009 10.0.0.5 80 sni=a.example.com", "option sni= applies to a single local port"},
		{"443 10.0.0.5 80 tls=c,k tls=c,k", "option tls= given twice"},
	})
	checkSpecForms(t, []specForm{
		{"443 10.0.0.5 80 tls=/etc/c.pem,/etc/k.pem", "443 10.0.0.5 80 tls=/etc/c.pem,/etc/k.pem",
			"Route 3 : From local port 443 to IP 10.0.0.5 port 80 (tls=/etc/c.pem,/etc/k.pem)"},
		{"443 10.0.0.5 80 tlsmin=1.2 tls=c.pem,k.pem tlsclientca=ca.pem handshake=1m30s",
			"443 10.0.0.5 80 tls=c.pem,k.pem tlsclientca=ca.pem handshake=1m30s",
			"Route 3 : From local port 443 to IP 10.0.0.5 port 80 (tls=c.pem,k.pem tlsclientca=ca.pem handshake=1m30s)"},
		{"443 10.0.0.5 80 tls=c.pem,k.pem tlsmin=1.3", "443 10.0.0.5 80 tls=c.pem,k.pem tlsmin=1.3",
			"Route 3 : From local port 443 to IP 10.0.0.5 port 80 (tls=c.pem,k.pem tlsmin=1.3)"},
		{"25 mail.example.com 465 backendtls=1 backendca=ca.pem backendsni=Mail.Example.com backendcert=c.pem,k.pem",
			"25 mail.example.com 465 backendtls=1 backendca=ca.pem backendsni=mail.example.com backendcert=c.pem,k.pem",
			"Route 3 : From local port 25 to IP mail.example.com port 465 (backendtls=1 backendca=ca.pem backendsni=mail.example.com backendcert=c.pem,k.pem)"},
		{`443 10.0.0.5 80 tls=C:\certs\relay.pem,C:\certs\relay.key`, `443 10.0.0.5 80 tls=C:\certs\relay.pem,C:\certs\relay.key`,
			`Route 3 : From local port 443 to IP 10.0.0.5 port 80 (tls=C:\certs\relay.pem,C:\certs\relay.key)`},
		{"25 10.0.0.5 465 backendtls=noverify maxconn=5", "25 10.0.0.5 465 maxconn=5 backendtls=noverify",
			"Route 3 : From local port 25 to IP 10.0.0.5 port 465 (maxconn=5 backendtls=noverify)"},
		{"443 10.0.0.5 443 sni=A.example.com,*.b.example.com,a.example.com. disabled=1",
			"443 10.0.0.5 443 sni=a.example.com,*.b.example.com disabled=1",
			"Route 3 : From local port 443 to IP 10.0.0.5 port 443 (sni=a.example.com,*.b.example.com, disabled)"},
		{"443 10.0.0.5 80 sni=a.example.com tls=c.pem,k.pem handshake=5s proxy=v2",
			"443 10.0.0.5 80 proxy=v2 tls=c.pem,k.pem handshake=5s sni=a.example.com",
			"Route 3 : From local port 443 to IP 10.0.0.5 port 80 (proxy=v2 tls=c.pem,k.pem handshake=5s sni=a.example.com)"},
	}, nil)
}

// TestTLSArgs: the command line's TLS flags make the same route options.
func TestTLSArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"443", "127.0.0.1", "80", "-tls", "c.pem,k.pem", "-tlsmin", "1.3"}, "tls=c.pem,k.pem tlsmin=1.3"},
		{[]string{"25", "mail.example.com:465", "-backendtls"}, "backendtls=1"},
		{[]string{"25", "mail.example.com:465", "-backendtls=noverify"}, "backendtls=noverify"},
		{[]string{"25", "mail.example.com:465", "-backendtls", "-backendca", "ca.pem", "-backendsni", "x.example.com"}, "backendtls=1 backendca=ca.pem backendsni=x.example.com"},
	} {
		opts, err := parseArgs(tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tt.args, err)
			continue
		}
		if got := strings.Join(opts.routeSpec().tlsOptions(), " "); got != tt.want {
			t.Errorf("parseArgs(%q) TLS options %q; want %q", tt.args, got, tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"443", "127.0.0.1", "80", "-tls", "c.pem"}, "invalid tls=c.pem"},
		{[]string{"443", "127.0.0.1", "80", "-backendtls=maybe"}, "invalid backendtls=maybe"},
		{[]string{"443", "127.0.0.1", "80", "-udp", "-tls", "c,k"}, "option tls= does not apply to proto=udp"},
		{[]string{"443", "127.0.0.1", "80", "-tlsmin", "1.3"}, "option tlsmin= needs tls="},
	} {
		if _, err := parseArgs(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseArgs(%q) error %v; want %q", tt.args, err, tt.want)
		}
	}
}

// TestTLSTerminates: a tls= route terminates TLS 1.2 and 1.3 with RSA,
// ECDSA and Ed25519 certificates, relays the plaintext to the backend,
// and logs version, cipher suite and server name.
func TestTLSTerminates(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	backend := echoServer(t)
	for _, keyType := range []string{"rsa", "ecdsa", "ed25519"} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := keyType + "/" + tls.VersionName(version)
			t.Run(name, func(t *testing.T) {
				cert, key := ca.issue(t, dir, keyType, certSpec{cn: "relay", names: []string{"relay.example.com"}, keyType: keyType})
				r, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s", portOf(backend.Addr()), cert, key))
				st, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "relay.example.com",
					MinVersion: version, MaxVersion: version}, "hello through TLS")
				if err != nil {
					t.Fatal(err)
				}
				if st.Version != version {
					t.Errorf("version %s; want %s", tls.VersionName(st.Version), tls.VersionName(version))
				}
				msg := log.find(t, ConnOpened, "client "+tls.VersionName(version)+" "+tls.CipherSuiteName(st.CipherSuite)+" server name relay.example.com")
				t.Log(msg)
				log.find(t, ConnClosed, "sent 17 received 17 bytes")
				if got := r.stats[1].tls.done.Load(); got != 1 {
					t.Errorf("handshakes done %d; want 1", got)
				}
			})
		}
	}
}

// TestTLSMin13: tlsmin=1.3 refuses a TLS 1.2 client, and logs why.
func TestTLSMin13(t *testing.T) {
	ca, r, addr, log := startTLSRoute(t, "tlsmin=1.3")
	if _, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), MaxVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}, "x"); err == nil {
		t.Fatal("a TLS 1.2 client got through tlsmin=1.3")
	}
	log.find(t, TLSFailed, "unsupported versions")
	if _, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}, "x"); err != nil {
		t.Fatalf("TLS 1.3 client: %v", err)
	}
	if done, failed := r.stats[1].tls.done.Load(), r.stats[1].tls.failed.Load(); done != 1 || failed != 1 {
		t.Errorf("handshakes done %d failed %d; want 1 and 1", done, failed)
	}
}

// TestTLSClientCA: tlsclientca= admits a client with a certificate the CA
// signed, logs its subject, and refuses one without ("tls: no certificate").
func TestTLSClientCA(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "relay"})
	ccert, ckey := ca.issue(t, dir, "alice", certSpec{cn: "alice", client: true})
	backend := echoServer(t)
	_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s tlsclientca=%s", portOf(backend.Addr()), cert, key, ca.file))
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		_, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1", MaxVersion: version}, "no cert")
		if err == nil {
			t.Fatalf("%s: a client without a certificate got through", tls.VersionName(version))
		}
	}
	log.find(t, TLSFailed, "tls: no certificate")
	pair, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}}, "alice"); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	log.find(t, ConnOpened, "client certificate CN=alice")
}

// TestTLSBadClients: a plaintext client, garbage, and a client that never
// finishes its handshake are each closed with one line saying why, and
// the route goes on.
func TestTLSBadClients(t *testing.T) {
	ca, _, addr, log := startTLSRoute(t, "handshake=500ms")
	for _, tt := range []struct {
		send, want string
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "client spoke plaintext"},
		{"\x16\x03\x01\x00\x05garbage-garbage", "TLS failed"},
		{"", "no TLS handshake within 500ms"},
		{"\x16\x03\x01", "no TLS handshake within 500ms"},
	} {
		before := log.count(TLSFailed)
		c := dialTCP(t, addr)
		c.Write([]byte(tt.send))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // the relay closes it
		c.Close()
		if !eventually(5*time.Second, func() bool { return log.count(TLSFailed) > before }) {
			t.Fatalf("%q: no TLS failure logged", tt.send)
		}
		log.find(t, TLSFailed, tt.want)
	}
	if n := log.count(ConnOpened); n != 0 {
		t.Errorf("%d connections opened to the backend; want 0", n)
	}
	if _, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}, "still works"); err != nil {
		t.Fatal(err)
	}
}

// TestTLSBadFiles: a route whose certificate or CA files are missing or
// not PEM does not start, and the error names the file.
func TestTLSBadFiles(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "relay"})
	other, otherKey := ca.issue(t, dir, "other", certSpec{cn: "other"})
	garbage := dir + "/garbage.pem"
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	for _, tt := range []struct{ opts, want string }{
		{"tls=" + dir + "/missing.crt," + key, "missing.crt"},
		{"tls=" + cert + "," + otherKey, "private key does not match public key"},
		{"tls=" + garbage + "," + key, "garbage.pem"},
		{"tls=" + cert + "," + key + " tlsclientca=" + garbage, "tlsclientca=" + garbage + ": no PEM certificate"},
		{"backendtls=1 backendca=" + dir + "/nope.pem", "backendca=" + dir + "/nope.pem"},
		{"backendtls=1 backendcert=" + other + "," + key, "backendcert="},
	} {
		rs, err := ParseRouteSpec("1 127.0.0.1 9 " + tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		rt := rs.Route()
		rt.ListenAddr = "127.0.0.1:0"
		r := &Relay{}
		err = r.Start(1, rt)
		r.Shutdown(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.opts, err, tt.want)
		}
	}
}

// TestBackendTLS: backendtls=1 verifies the backend against backendca=
// for its host or backendsni=; one with an expired or wrong-name
// certificate is refused with the reason and the next backend is tried;
// noverify takes any; backendcert= is presented to a backend that asks.
func TestBackendTLS(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	good, goodKey := ca.issue(t, dir, "good", certSpec{cn: "backend", names: []string{"backend.example.com"}})
	expired, expiredKey := ca.issue(t, dir, "expired", certSpec{cn: "old", expired: true})
	goodSrv := tlsEchoServer(t, good, goodKey, nil)
	expiredSrv := tlsEchoServer(t, expired, expiredKey, nil)
	goodPort, expiredPort := portOf(goodSrv.Addr()), portOf(expiredSrv.Addr())
	plainRoundTrip := func(addr, msg string) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, msg)
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != msg {
			return fmt.Errorf("got %q, %v; want %q", got, err, msg)
		}
		return nil
	}

	t.Run("verified", func(t *testing.T) {
		r, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s", goodPort, ca.file))
		if err := plainRoundTrip(addr, "plain in, TLS out"); err != nil {
			t.Fatal(err)
		}
		log.find(t, ConnOpened, "backend TLS 1.3")
		if got := r.stats[1].tls.done.Load(); got != 1 {
			t.Errorf("handshakes done %d; want 1", got)
		}
	})
	t.Run("system roots refuse a private CA", func(t *testing.T) {
		_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1", goodPort))
		if err := plainRoundTrip(addr, "x"); err == nil {
			t.Fatal("relayed to a backend no system root signs")
		}
		log.find(t, ConnFailed, "backend TLS: unknown authority")
	})
	t.Run("expired, then the next backend", func(t *testing.T) {
		_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s", expiredPort, ca.file))
		if err := plainRoundTrip(addr, "x"); err == nil {
			t.Fatal("relayed to an expired backend")
		}
		log.find(t, ConnFailed, "certificate expired")
		_, addr, log = startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s also=127.0.0.1:%d balance=first",
			expiredPort, ca.file, goodPort))
		if err := plainRoundTrip(addr, "to the next"); err != nil {
			t.Fatal(err)
		}
		log.find(t, ConnOpened, fmt.Sprintf("to 127.0.0.1:%d", goodPort))
	})
	t.Run("wrong name", func(t *testing.T) {
		_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s backendsni=other.example.com", goodPort, ca.file))
		if err := plainRoundTrip(addr, "x"); err == nil {
			t.Fatal("relayed to a backend of another name")
		}
		log.find(t, ConnFailed, "wrong name")
		_, addr, _ = startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s backendsni=backend.example.com", goodPort, ca.file))
		if err := plainRoundTrip(addr, "right name"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("noverify", func(t *testing.T) {
		_, addr, _ := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=noverify", expiredPort))
		if err := plainRoundTrip(addr, "anything goes"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("backendcert", func(t *testing.T) {
		ccert, ckey := ca.issue(t, dir, "relay-client", certSpec{cn: "relay-client", client: true})
		mtls := tlsEchoServer(t, good, goodKey, ca.pool())
		_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s", portOf(mtls.Addr()), ca.file))
		if err := plainRoundTrip(addr, "x"); err == nil {
			t.Fatal("relayed without the client certificate the backend wants")
		}
		_ = log
		_, addr, _ = startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d backendtls=1 backendca=%s backendcert=%s,%s", portOf(mtls.Addr()), ca.file, ccert, ckey))
		if err := plainRoundTrip(addr, "with my certificate"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTLSCertReload: a changed pair is presented from the next handshake
// on (a second later at most); a bad new pair keeps the old one and is
// reported once.
func TestTLSCertReload(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "first"})
	backend := echoServer(t)
	_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s", portOf(backend.Addr()), cert, key))
	cn := func() string {
		st, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}, "x")
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("CN %q; want first", got)
	}
	certPEM, keyPEM := ca.issuePEM(t, certSpec{cn: "second"})
	writeAtomic(t, key, keyPEM)
	writeAtomic(t, cert, certPEM)
	if !eventually(5*time.Second, func() bool { return cn() == "second" }) {
		t.Fatal("the new certificate was not presented")
	}
	// A bad pair: a certificate whose key is another's.
	third, _ := ca.issuePEM(t, certSpec{cn: "third"})
	writeAtomic(t, cert, third)
	time.Sleep(1100 * time.Millisecond) // the files are looked at once a second
	for range 3 {
		if got := cn(); got != "second" {
			t.Fatalf("CN %q after a bad pair; want second", got)
		}
	}
	t.Log(log.find(t, TLSWarning, "the one loaded before stays: "))
	time.Sleep(1100 * time.Millisecond)
	cn()
	if n := log.count(TLSWarning); n != 1 {
		t.Errorf("the bad pair was reported %d times; want once", n)
	}
}

// writeAtomic replaces path with data by renaming a new file over it, as
// certificate renewal tools do.
func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSCertSwapUnderLoad: certificates renewed on disk while clients
// keep connecting (and one connection stays open) fail no connection, and
// the new certificate is presented in the end.
func TestTLSCertSwapUnderLoad(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "gen-0"})
	backend := echoServer(t)
	r, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s", portOf(backend.Addr()), cert, key))
	client := &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}

	// A connection open across every swap.
	long, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	long.SetDeadline(time.Now().Add(30 * time.Second))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var done [4]int
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 2000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := tlsRoundTrip(t, addr, client, "load"); err != nil {
					errs <- err
					return
				}
				done[i]++
			}
		}()
	}
	for gen := 1; gen <= 3; gen++ {
		time.Sleep(1200 * time.Millisecond)
		certPEM, keyPEM := ca.issuePEM(t, certSpec{cn: fmt.Sprintf("gen-%d", gen)})
		writeAtomic(t, key, keyPEM)
		writeAtomic(t, cert, certPEM)
		io.WriteString(long, "still here")
		if _, err := io.ReadFull(long, make([]byte, 10)); err != nil {
			t.Fatalf("the open connection broke at swap %d: %v", gen, err)
		}
	}
	time.Sleep(1200 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a connection failed during the swaps: %v", err)
	}
	total := done[0] + done[1] + done[2] + done[3]
	if total < 20 {
		t.Errorf("only %d connections during the swaps", total)
	}
	st, err := tlsRoundTrip(t, addr, client, "x")
	if err != nil || st.PeerCertificates[0].Subject.CommonName != "gen-3" {
		t.Fatalf("after the swaps: %v, %v; want gen-3", err, st.PeerCertificates)
	}
	if failed := r.stats[1].tls.failed.Load(); failed != 0 {
		t.Errorf("%d handshakes failed", failed)
	}
	t.Logf("%d connections, %d warnings (a pair caught half-written keeps the old one)", total, log.count(TLSWarning))
}

// TestTLSCommandLineBadCertificate: the command-line relay refuses a
// certificate it cannot load as a bad argument, naming the file.
func TestTLSCommandLineBadCertificate(t *testing.T) {
	dir := tempDir(t)
	p := startProc(t, dir, strconv.Itoa(freePort(t)), "127.0.0.1", "80", "-tls", "missing.crt,missing.key")
	if code := p.wait(t, 20*time.Second); code != exitUsage {
		t.Fatalf("exit code %d; want %d\n%s", code, exitUsage, p.output())
	}
	if !strings.Contains(p.output(), "relaytcp: tls=missing.crt,missing.key: certificate: open missing.crt") {
		t.Errorf("output lacks the file's error:\n%s", p.output())
	}
}

// TestTLSDataLogIsPlaintext: the data log (-d) of a terminating route
// holds the plaintext, both ways.
func TestTLSDataLogIsPlaintext(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "relay"})
	backend := echoServer(t)
	rs, err := ParseRouteSpec(fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s", portOf(backend.Addr()), cert, key))
	if err != nil {
		t.Fatal(err)
	}
	rt := rs.Route()
	rt.ListenAddr, rt.DataLogDir = "127.0.0.1:0", dir
	r := &Relay{}
	if err := r.Start(1, rt); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	if _, err := tlsRoundTrip(t, r.Addr(1).String(), &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}, "PLAINTEXT-ABC"); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool {
		logs, _ := filepath.Glob(filepath.Join(dir, "RL*.LOG"))
		if len(logs) != 1 {
			return false
		}
		data, _ := os.ReadFile(logs[0])
		return strings.Count(string(data), "PLAINTEXT-ABC") == 2
	}) {
		logs, _ := filepath.Glob(filepath.Join(dir, "RL*.LOG"))
		t.Fatalf("no data log with the plaintext both ways: %v", logs)
	}
}

// TestTLSAfterProxyHeader: with acceptproxy=1 the PROXY header comes
// first, then the TLS handshake; the log names the header's client.
func TestTLSAfterProxyHeader(t *testing.T) {
	ca, _, addr, log := startTLSRoute(t, "acceptproxy=1")
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The header and the ClientHello in one write: the relay must keep
	// what follows the header for TLS.
	tc := tls.Client(&headerFirst{Conn: c, header: "PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n"}, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
	io.WriteString(tc, "behind a proxy")
	tc.CloseWrite()
	got, err := io.ReadAll(tc)
	if err != nil || string(got) != "behind a proxy" {
		t.Fatalf("got %q, %v", got, err)
	}
	log.find(t, ConnOpened, "Connection from 192.0.2.7:40000")
}

// headerFirst sends header in front of the first write.
type headerFirst struct {
	net.Conn
	header string
	sent   bool
}

func (h *headerFirst) Write(b []byte) (int, error) {
	if !h.sent {
		h.sent = true
		if _, err := h.Conn.Write(append([]byte(h.header), b...)); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return h.Conn.Write(b)
}

// TestTLSWithRate: a terminating route with a bandwidth cap relays TLS to
// its clients, paced (before, the paced copy spliced the raw sockets and
// sent the backend's plaintext to the TLS client), and still completes.
func TestTLSWithRate(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	backend := echoServer(t)
	cert, key := ca.issue(t, dir, "ecdsa", certSpec{cn: "relay", names: []string{"relay.example.com"}, keyType: "ecdsa"})
	_, addr, log := startSpecRoute(t, fmt.Sprintf("1 127.0.0.1 %d tls=%s,%s connrate=256K", portOf(backend.Addr()), cert, key))
	msg := strings.Repeat("paced and encrypted ", 20000) // 400 KB: more than a second at 256K
	start := time.Now()
	if _, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "relay.example.com"}, msg); err != nil {
		t.Fatalf("TLS through a route with connrate=: %v\n%s", err, log.dump())
	}
	if took := time.Since(start); took < 1200*time.Millisecond {
		t.Errorf("400 KB each way took %v under connrate=256K; want at least about 1.5 s", took)
	}
}
