package main

// TLS routes with real peers from Debian's packages: openssl s_client and
// curl against a terminating route, stunnel4 as the client in front of
// one and as the TLS server behind an originating one, HAProxy's
// req.ssl_sni as the reference for the ClientHello reader. scripts/test.sh
// installs them; without them these tests skip.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTool skips the test when a program is missing, except in CI (CI
// set), where scripts/test.sh has installed it: there it fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil && os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed, and CI is set: scripts/test.sh installs it from Debian's packages", name)
	}
	if err != nil {
		t.Skipf("%s is not installed (scripts/test.sh installs it from Debian's packages)", name)
	}
	return path
}

// httpBackend serves "hello from the backend" over plain HTTP on the
// loopback.
func httpBackend(t *testing.T) *net.TCPListener {
	t.Helper()
	ln := newLocalListener(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the backend\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln
}

// runTool runs a program with stdin and a time limit and returns what it
// printed, stdout and stderr together.
func runTool(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s did not finish within 20s", name)
	}
}

// TestOpenSSLAndCurlAgainstTLSRoute: openssl s_client (TLS 1.2 and 1.3,
// RSA and ECDSA certificates) and curl --cacert reach an HTTP backend
// through the command-line relay's -tls route, verifying the chain.
func TestOpenSSLAndCurlAgainstTLSRoute(t *testing.T) {
	openssl, curl := needTool(t, "openssl"), needTool(t, "curl")
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	backend := httpBackend(t)
	for _, keyType := range []string{"ecdsa", "rsa"} {
		cert, key := ca.issue(t, dir, keyType, certSpec{cn: "relay.example.com", names: []string{"relay.example.com", "localhost"}, keyType: keyType})
		p := startRelay(t, dir, "127.0.0.1", portOf(backend.Addr()), "-tls", cert+","+key)
		for _, version := range []string{"-tls1_2", "-tls1_3"} {
			out, err := runTool(t, "GET / HTTP/1.0\r\n\r\n", openssl, "s_client", "-connect", p.addr(), "-CAfile", ca.file,
				"-servername", "relay.example.com", "-verify_return_error", "-ign_eof", version)
			if err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "hello from the backend") {
				t.Fatalf("%s openssl s_client %s: %v\n%s\nrelay:\n%s", keyType, version, err, out, p.output())
			}
			want := map[string]string{"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version]
			if !strings.Contains(out, want) {
				t.Errorf("%s openssl s_client %s: no %s in its output:\n%s", keyType, version, want, out)
			}
		}
		out, err := runTool(t, "", curl, "-sS", "--max-time", "10", "--cacert", ca.file,
			"--resolve", "relay.example.com:"+strconv.Itoa(p.port)+":127.0.0.1", "https://relay.example.com:"+strconv.Itoa(p.port)+"/")
		if err != nil || out != "hello from the backend\n" {
			t.Fatalf("%s curl: %v\n%s\nrelay:\n%s", keyType, err, out, p.output())
		}
		// Without the CA, curl refuses the certificate: the test can fail.
		if out, err := runTool(t, "", curl, "-sS", "--max-time", "10", "https://127.0.0.1:"+strconv.Itoa(p.port)+"/"); err == nil {
			t.Fatalf("curl trusted the test CA without --cacert:\n%s", out)
		}
		if !eventually(5*time.Second, func() bool { return strings.Contains(p.output(), "server name relay.example.com") }) {
			t.Errorf("the relay's output has no TLS summary:\n%s", p.output())
		}
	}
}

// stunnelConf writes a stunnel configuration of one service and returns
// its path.
func stunnelConf(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	conf := append([]string{"foreground = yes", "pid =", "debug = 5", "[" + name + "]"}, lines...)
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStunnelClientInFrontOfTLSRoute: stunnel4 in client mode, verifying
// the chain and the name, connects to a tls= route; bytes go both ways.
func TestStunnelClientInFrontOfTLSRoute(t *testing.T) {
	needTool(t, "stunnel4")
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "srv", certSpec{cn: "relay.example.com", names: []string{"relay.example.com"}})
	backend := echoServer(t)
	p := startRelay(t, dir, "127.0.0.1", portOf(backend.Addr()), "-tls", cert+","+key)
	front := freePort(t)
	conf := stunnelConf(t, dir, "front", "client = yes", fmt.Sprintf("accept = 127.0.0.1:%d", front),
		"connect = "+p.addr(), "CAfile = "+ca.file, "verifyChain = yes", "checkHost = relay.example.com", "sni = relay.example.com")
	startPeer(t, "stunnel4", conf)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(front))
	waitListening(t, addr)
	msg := string(randomBytes(7, 256<<10))
	if !eventually(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { io.WriteString(c, msg); c.(*net.TCPConn).CloseWrite() }()
		got, _ := io.ReadAll(c)
		return string(got) == msg
	}) {
		t.Fatalf("no echo through stunnel and the relay:\n%s", p.output())
	}
	if !strings.Contains(p.output(), "client TLS 1.3") {
		t.Errorf("the relay logged no TLS 1.3 client:\n%s", p.output())
	}
}

// TestStunnelServerBehindBackendTLS: a backendtls=1 route verifies stunnel4
// in server mode against backendca= and relays through it to an echo.
func TestStunnelServerBehindBackendTLS(t *testing.T) {
	needTool(t, "stunnel4")
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "stunnel", certSpec{cn: "backend.example.com", names: []string{"backend.example.com"}})
	backend := echoServer(t)
	port := freePort(t)
	conf := stunnelConf(t, dir, "back", fmt.Sprintf("accept = 127.0.0.1:%d", port),
		"connect = "+backend.Addr().String(), "cert = "+cert, "key = "+key)
	startPeer(t, "stunnel4", conf)
	waitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	p := startRelay(t, dir, "127.0.0.1", port, "-backendtls", "-backendca", ca.file, "-backendsni", "backend.example.com")
	msg := string(randomBytes(8, 256<<10))
	c := dialTCP(t, p.addr())
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { io.WriteString(c, msg); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("echo through the relay and stunnel: %d bytes, %v; want %d\n%s", len(got), err, len(msg), p.output())
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(p.output(), "backend TLS 1.3") }) {
		t.Errorf("the relay logged no TLS backend:\n%s", p.output())
	}
	// The wrong name: refused with the reason.
	q := startRelay(t, dir, "127.0.0.1", port, "-backendtls", "-backendca", ca.file, "-backendsni", "other.example.com")
	c2 := dialTCP(t, q.addr())
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c2)
	c2.Close()
	if !eventually(5*time.Second, func() bool { return strings.Contains(q.output(), "wrong name") }) {
		t.Errorf("no wrong-name failure logged:\n%s", q.output())
	}
}

// TestSNIAgainstHAProxy: on the same ClientHellos (Go's, openssl's and
// curl's, with and without a name, written at once or a byte at a time),
// the ClientHello reader finds the server name HAProxy's req.ssl_sni finds.
func TestSNIAgainstHAProxy(t *testing.T) {
	needTool(t, "haproxy")
	openssl, curl := needTool(t, "openssl"), needTool(t, "curl")
	syslog, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer syslog.Close()
	front := freePort(t)
	dir := tempDir(t)
	conf := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(conf, []byte(fmt.Sprintf(`global
  maxconn 100
  log %s format raw local0
defaults
  mode tcp
  log global
  retries 0
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend f
  bind 127.0.0.1:%d
  tcp-request inspect-delay 5s
  tcp-request content set-var(sess.sni) req.ssl_sni
  tcp-request content accept if { req.ssl_hello_type 1 }
  log-format "sni=[%%[var(sess.sni)]]"
  default_backend b
backend b
  server nowhere 127.0.0.1:%d
`, syslog.LocalAddr(), front, freePort(t))), 0o644)
	startPeer(t, "haproxy", "-db", "-f", conf)
	frontAddr := "127.0.0.1:" + strconv.Itoa(front)
	waitListening(t, frontAddr)
	drain := func() {
		buf := make([]byte, 4096)
		for {
			syslog.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, _, err := syslog.ReadFrom(buf); err != nil {
				return
			}
		}
	}
	drain() // waitListening's connection

	samples := map[string][]byte{
		"go tls 1.3": captureHello(t, &tls.Config{ServerName: "go13.example.com", InsecureSkipVerify: true}),
		"go tls 1.2": captureHello(t, &tls.Config{ServerName: "Go12.Example.com", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}),
		"go no name": captureHello(t, &tls.Config{ServerName: "127.0.0.1", InsecureSkipVerify: true}),
		"openssl": captureWith(t, func(port int) {
			runTool(t, "", openssl, "s_client", "-connect", "127.0.0.1:"+strconv.Itoa(port), "-servername", "ossl.example.net")
		}),
		"openssl no sn": captureWith(t, func(port int) {
			runTool(t, "", openssl, "s_client", "-connect", "127.0.0.1:"+strconv.Itoa(port), "-noservername")
		}),
		"curl": captureWith(t, func(port int) {
			runTool(t, "", curl, "-sk", "--max-time", "5", "--resolve", "curl.example.org:"+strconv.Itoa(port)+":127.0.0.1", "https://curl.example.org:"+strconv.Itoa(port)+"/")
		}),
	}
	for name, hello := range samples {
		for _, oneByte := range []bool{false, true} {
			ours, _, err := parseClientHello(hello)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			c := dialTCP(t, frontAddr)
			if oneByte {
				slowWriter{c}.Write(hello)
			} else {
				c.Write(hello)
			}
			buf := make([]byte, 4096)
			syslog.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err := syslog.ReadFrom(buf)
			c.Close()
			if err != nil {
				t.Fatalf("%s: no log line from HAProxy: %v", name, err)
			}
			line := strings.TrimSpace(string(buf[:n]))
			theirs := strings.TrimSuffix(strings.TrimPrefix(line, "sni=["), "]")
			if theirs == "-" { // HAProxy's log for an empty value
				theirs = ""
			}
			if !strings.EqualFold(theirs, ours) {
				t.Errorf("%s (1-byte writes %v): HAProxy's req.ssl_sni %q, ours %q", name, oneByte, theirs, ours)
			}
			t.Logf("%s: %q", name, ours)
			drain()
		}
	}
}
