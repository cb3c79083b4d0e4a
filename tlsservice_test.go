//go:build !windows

package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServiceTLSRoutes: the service runs a terminating route, two routes
// sharing a port by sni= (one the default) and a backendtls=noverify route
// from its configuration file; the connection log has the TLS lines, the
// noverify route warns at start, status.json and /metrics count the
// handshakes, and a certificate renewed on disk is used without a restart.
func TestServiceTLSRoutes(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "relay", certSpec{cn: "relay-first", names: []string{"relay.example.com"}})
	echo := echoServer(t)
	a, def := tlsBackend(t, ca, dir, "backend-a"), tlsBackend(t, ca, dir, "backend-default")
	tlsPort, sniPort, origPort, metricsPort := freePort(t), freePort(t), freePort(t), freePort(t)
	logDir := filepath.Join(dir, "logs")
	conf := filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf(`logdir %s
metrics 127.0.0.1:%d
route 127.0.0.1:%d 127.0.0.1 %d tls=%s,%s
route 127.0.0.1:%d 127.0.0.1 %d sni=a.example.com
route 127.0.0.1:%d 127.0.0.1 %d
route 127.0.0.1:%d 127.0.0.1 %d backendtls=noverify
`, logDir, metricsPort, tlsPort, portOf(echo.Addr()), cert, key, sniPort, a, sniPort, def, origPort, a)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "RelayTCPsvc[100] Information: The Relay TCP Service was successfully started")
	p.waitStderr(t, "Warning: Route 3: backendtls=noverify: the backends' certificates are not verified")

	tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	client := &tls.Config{RootCAs: ca.pool(), ServerName: "relay.example.com"}
	if _, err := tlsRoundTrip(t, tlsAddr, client, "through the service"); err != nil {
		t.Fatal(err)
	}
	sniAddr := "127.0.0.1:" + strconv.Itoa(sniPort)
	for name, want := range map[string]string{"a.example.com": "backend-a", "other.example.com": "backend-default"} {
		if got, err := whoAnswers(t, sniAddr, name, ca); err != nil || got != want {
			t.Errorf("%s: answered by %q, %v; want %s", name, got, err, want)
		}
	}
	if _, err := whoAnswers(t, sniAddr, "a.example.com", ca); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(origPort), "plaintext in")
	c := dialTCP(t, tlsAddr)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()

	coLog := filepath.Join(logDir, "CO"+time.Now().Format("060102")+".LOG")
	for _, want := range []string{
		"(client TLS 1.3 TLS_AES_128_GCM_SHA256 server name relay.example.com)",
		"(server name a.example.com)",
		"(backend TLS 1.3",
		"client spoke plaintext",
	} {
		if !eventually(5*time.Second, func() bool {
			data, _ := os.ReadFile(coLog)
			return strings.Contains(string(data), want)
		}) {
			data, _ := os.ReadFile(coLog)
			t.Errorf("connection log lacks %q:\n%s", want, data)
		}
	}

	get := func(path string) string {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var st ServiceStatus
	if err := json.Unmarshal([]byte(get("/status.json")), &st); err != nil {
		t.Fatal(err)
	}
	// Route 2, the SNI port's default, has no TLS option of its own.
	wantTLS := map[int][2]int64{0: {1, 1}, 1: {0, 0}, 3: {1, 0}}
	for _, r := range st.Routes {
		w, ok := wantTLS[r.Route]
		if !ok {
			if r.TLSReport != nil {
				t.Errorf("route %d: TLS report %+v; want none", r.Route, r.TLSReport)
			}
			continue
		}
		if r.TLSReport == nil || r.TLSHandshakes != w[0] || r.TLSHandshakesFailed != w[1] {
			t.Errorf("route %d: TLS report %+v; want %d done, %d failed", r.Route, r.TLSReport, w[0], w[1])
		}
	}
	metrics := get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`relaytcp_tls_handshakes_total{route="0",listen="127.0.0.1:%d",result="done"} 1`, tlsPort),
		fmt.Sprintf(`relaytcp_tls_handshakes_total{route="0",listen="127.0.0.1:%d",result="failed"} 1`, tlsPort),
		fmt.Sprintf(`relaytcp_route_connections_total{route="1",listen="127.0.0.1:%d"} 2`, sniPort),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A renewed certificate, written over the old one: the next handshake
	// presents it.
	certPEM, keyPEM := ca.issuePEM(t, certSpec{cn: "relay-renewed", names: []string{"relay.example.com"}})
	writeAtomic(t, key, keyPEM)
	writeAtomic(t, cert, certPEM)
	if !eventually(10*time.Second, func() bool {
		st, err := tlsRoundTrip(t, tlsAddr, client, "x")
		return err == nil && st.PeerCertificates[0].Subject.CommonName == "relay-renewed"
	}) {
		t.Fatalf("the renewed certificate is not presented:\n%s", p.output())
	}
}

// TestServiceSNIPortBecomesShared: a reload that adds an sni= route on the
// port of a running route without sni= makes it the port's default, and a
// reload that takes the sni= route away gives it its port back.
func TestServiceSNIPortBecomesShared(t *testing.T) {
	dir := tempDir(t)
	ca := newTestCA(t, dir, "ca")
	a, def := tlsBackend(t, ca, dir, "backend-a"), tlsBackend(t, ca, dir, "backend-default")
	port := freePort(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	write := func(routes ...string) {
		text := "logdir " + filepath.Join(dir, "logs") + "\n"
		for _, r := range routes {
			text += "route " + r + "\n"
		}
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defRoute := fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d", port, def)
	write(defRoute)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if got, err := whoAnswers(t, addr, "a.example.com", ca); err != nil || got != "backend-default" {
		t.Fatalf("before: %q, %v", got, err)
	}
	write(fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d sni=a.example.com", port, a), defRoute)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitStderr(t, "sni=a.example.com")
	for name, want := range map[string]string{"a.example.com": "backend-a", "other.example.com": "backend-default"} {
		if !eventually(10*time.Second, func() bool {
			got, err := whoAnswers(t, addr, name, ca)
			return err == nil && got == want
		}) {
			t.Fatalf("after adding sni=: %s not answered by %s\n%s", name, want, p.output())
		}
	}
	write(defRoute)
	reloads := strings.Count(p.output(), "configuration was reloaded")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { return strings.Count(p.output(), "configuration was reloaded") > reloads }) {
		t.Fatalf("no reload:\n%s", p.output())
	}
	coLog := filepath.Join(dir, "logs", "CO"+time.Now().Format("060102")+".LOG")
	if !routeRunsPlain(t, port, coLog) {
		t.Errorf("the route without sni= still reads ClientHellos:\n%s", p.output())
	}
	if got, err := whoAnswers(t, addr, "a.example.com", ca); err != nil || got != "backend-default" {
		t.Fatalf("after removing sni=: %q, %v\n%s", got, err, p.output())
	}
}

// routeRunsPlain reports whether the service's route on port relays a
// plaintext client (its port no longer read for a ClientHello): the
// connection log coLog has its line, and no "client spoke plaintext".
func routeRunsPlain(t *testing.T, port int, coLog string) bool {
	c := dialTCP(t, "127.0.0.1:"+strconv.Itoa(port))
	io.WriteString(c, "plain\n")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	local := c.LocalAddr().String()
	c.Close()
	var data []byte
	eventually(5*time.Second, func() bool {
		data, _ = os.ReadFile(coLog)
		return strings.Contains(string(data), "Closed "+local)
	})
	return strings.Contains(string(data), "Closed "+local) && !strings.Contains(string(data), "client spoke plaintext")
}
