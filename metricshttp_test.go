package main

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startMetricsListener serves a fixed status on a free loopback port.
func startMetricsListener(t *testing.T) *metricsServer {
	t.Helper()
	m, err := serveMetrics("127.0.0.1:0", func() *ServiceStatus { return &ServiceStatus{Version: "9.9.9", Started: time.Now()} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	return m
}

// httpExchange sends raw on a new connection to m and returns the status
// line, the headers and the body (all the connection sent until it ended).
func httpExchange(t *testing.T, m *metricsServer, raw string) (string, map[string]string, string) {
	t.Helper()
	c, err := net.Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: no status line: %v", raw, err)
	}
	headers := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: headers cut: %v", raw, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		headers[strings.ToLower(name)] = strings.TrimSpace(value)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%q: body: %v", raw, err)
	}
	return strings.TrimRight(status, "\r\n"), headers, string(body)
}

// TestMetricsHTTP: the metrics listener answers scrapers as HTTP/1.x says,
// and refuses everything else with the right status.
func TestMetricsHTTP(t *testing.T) {
	m := startMetricsListener(t)
	status, h, body := httpExchange(t, m, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
	if status != "HTTP/1.1 200 OK" || !strings.HasPrefix(h["content-type"], "text/plain; version=0.0.4") ||
		h["content-length"] != strconv.Itoa(len(body)) || !strings.Contains(body, `relaytcp_build_info{version="9.9.9"`) {
		t.Errorf("GET /metrics: %s %v\n%s", status, h, body)
	}
	full := body
	status, h, body = httpExchange(t, m, "HEAD /metrics HTTP/1.0\r\n\r\n")
	if status != "HTTP/1.1 200 OK" || body != "" || h["content-length"] != strconv.Itoa(len(full)) {
		t.Errorf("HEAD /metrics: %s %v body %q", status, h, body)
	}
	for _, c := range []struct{ raw, status string }{
		{"GET /metrics?name[]=x HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK"},
		{"\r\nGET http://127.0.0.1:9155/metrics HTTP/1.1\n\n", "HTTP/1.1 200 OK"},
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"GET /metrics/x HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 405 Method Not Allowed"},
		{"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
		{"GET /metrics HTTP/1.9\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
		{"GET /metrics HTTP/0.9\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
		// RFC 9112 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
		{"GET /metrics HTTP/1.\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics HTTP/1.10\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics HTTP/3\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics HTTP/1.1x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics http/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics FTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("a", metricsHeadLimit) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
	} {
		status, h, _ := httpExchange(t, m, c.raw)
		if status != c.status {
			t.Errorf("%.40q: %s; want %s", c.raw, status, c.status)
		}
		if strings.Contains(c.status, "405") && h["allow"] != "GET, HEAD" {
			t.Errorf("405 without Allow: GET, HEAD: %v", h)
		}
	}
}

// TestMetricsCloseCutsIdleClients: close does not wait for a client that
// connected and sent nothing, and the port is free afterwards.
func TestMetricsCloseCutsIdleClients(t *testing.T) {
	m, err := serveMetrics("127.0.0.1:0", func() *ServiceStatus { return &ServiceStatus{} })
	if err != nil {
		t.Fatal(err)
	}
	addr := m.ln.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // accepted
	start := time.Now()
	m.close()
	if d := time.Since(start); d > metricsCloseWait/2 {
		t.Errorf("close took %v with an idle client", d)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the idle client's connection is still open")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port is not free after close: %v", err)
	}
	ln.Close()
}
