package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
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

// metricsPaths are what the listener serves, with their Content-Type and
// a part of their body.
var metricsPaths = []struct{ path, contentType, body string }{
	{"/metrics", "text/plain; version=0.0.4; charset=utf-8", `relaytcp_build_info{version="9.9.9"`},
	{"/status.json", "application/json", `"version":"9.9.9"`},
	{"/", "text/html; charset=utf-8", "<title>relaytcp status</title>"},
}

// TestMetricsHTTP: the metrics listener answers scrapers and browsers as
// HTTP/1.x says, on each of its paths, and refuses everything else with the
// right status.
func TestMetricsHTTP(t *testing.T) {
	m := startMetricsListener(t)
	for _, p := range metricsPaths {
		status, h, body := httpExchange(t, m, "GET "+p.path+" HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
		if status != "HTTP/1.1 200 OK" || h["content-type"] != p.contentType ||
			h["content-length"] != strconv.Itoa(len(body)) || !strings.Contains(body, p.body) {
			t.Errorf("GET %s: %s %v\n%.300s", p.path, status, h, body)
		}
		full := body
		status, h, body = httpExchange(t, m, "HEAD "+p.path+" HTTP/1.0\r\n\r\n")
		if status != "HTTP/1.1 200 OK" || body != "" || h["content-type"] != p.contentType ||
			p.path != "/status.json" && h["content-length"] != strconv.Itoa(len(full)) {
			t.Errorf("HEAD %s: %s %v body %q", p.path, status, h, body)
		}
		for _, c := range []struct{ raw, status string }{
			{"GET " + p.path + "?name[]=x HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK"},
			{"\r\nGET http://127.0.0.1:9155" + p.path + " HTTP/1.1\n\n", "HTTP/1.1 200 OK"},
			{"GET " + p.path + "x HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
			{"GET " + p.path + "/x HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
			{"POST " + p.path + " HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 405 Method Not Allowed"},
			{"PUT " + p.path + " HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 405 Method Not Allowed"},
			{"DELETE " + p.path + " HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
			{"OPTIONS " + p.path + " HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
			{"get " + p.path + " HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
			{"GET " + p.path + " HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
			{"GET " + p.path + " HTTP/1.9\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
			{"GET " + p.path + " HTTP/0.9\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
			// RFC 9112 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
			{"GET " + p.path + " HTTP/1.\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " HTTP/1.10\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " HTTP/3\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " HTTP/1.1x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " http/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " FTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
			{"GET " + p.path + " HTTP/1.1\r\nX: " + strings.Repeat("a", metricsHeadLimit) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
			{"GET " + p.path + strings.Repeat("a", metricsHeadLimit) + " HTTP/1.1\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		} {
			status, h, _ := httpExchange(t, m, c.raw)
			if status != c.status {
				t.Errorf("%.60q: %s; want %s", c.raw, status, c.status)
			}
			if strings.Contains(c.status, "405") && h["allow"] != "GET, HEAD" {
				t.Errorf("405 without Allow: GET, HEAD: %v", h)
			}
		}
	}
	for _, c := range []struct{ raw, status string }{
		{"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"GET /index.html HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"GET /favicon.ico HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"GET /status HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"GET //status.json HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"GET * HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
	} {
		if status, _, body := httpExchange(t, m, c.raw); status != c.status || !strings.Contains(body, "serves GET /, /status.json and /metrics") {
			t.Errorf("%.60q: %s %q; want %s", c.raw, status, body, c.status)
		}
	}
}

// TestMetricsHTTPSlowClients: a client that sends its request head too
// slowly, on any path, gets 408 once metricsHeaderTimeout has passed since
// it connected, however it trickles, and the listener answers others
// meanwhile.
func TestMetricsHTTPSlowClients(t *testing.T) {
	m := startMetricsListener(t)
	for _, p := range metricsPaths {
		t.Run(cmp.Or(strings.Trim(p.path, "/"), "page"), func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", m.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			io.WriteString(c, "GET "+p.path+" HTTP/1.1\r\n")
			answer := make(chan string, 1)
			go func() {
				c.SetReadDeadline(time.Now().Add(3 * metricsHeaderTimeout))
				line, _ := bufio.NewReader(c).ReadString('\n')
				answer <- line
			}()
			// A header line every 200 ms, never the end of the head.
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case line := <-answer:
					if elapsed := time.Since(start); line != "HTTP/1.1 408 Request Timeout\r\n" || elapsed < metricsHeaderTimeout-time.Second {
						t.Fatalf("a slow client got %q after %v; want 408 after %v", line, elapsed, metricsHeaderTimeout)
					}
					return
				case <-tick.C:
					fmt.Fprintf(c, "X-Slow-%d: a\r\n", i)
					if i == 5 { // meanwhile, a prompt client is answered
						if status, _, _ := httpExchange(t, m, "GET "+p.path+" HTTP/1.1\r\n\r\n"); status != "HTTP/1.1 200 OK" {
							t.Errorf("a prompt client beside a slow one: %s", status)
						}
					}
				}
			}
		})
	}
}

// TestStatusJSONUnencodable: a status that JSON has no form for (NaN) is a
// 500 that says why, not a crash; /metrics still answers.
func TestStatusJSONUnencodable(t *testing.T) {
	m, err := serveMetrics("127.0.0.1:0", func() *ServiceStatus { return &ServiceStatus{UptimeSeconds: math.NaN()} })
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if status, _, body := httpExchange(t, m, "GET /status.json HTTP/1.1\r\n\r\n"); status != "HTTP/1.1 500 Internal Server Error" || !strings.Contains(body, "unsupported value: NaN") {
		t.Errorf("GET /status.json of a NaN: %s %q", status, body)
	}
	if status, _, _ := httpExchange(t, m, "GET /metrics HTTP/1.1\r\n\r\n"); status != "HTTP/1.1 200 OK" {
		t.Errorf("GET /metrics: %s", status)
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
