package main

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The page's documentation holds the JSON's schema; embedded, so that the
// Windows test binary under wine, which runs away from the sources, has it.
//
//go:embed docs/status-page.md
var statusPageDoc string

// schemaField is one row of the documented schema.
type schemaField struct {
	typ      string // string, time, integer, number, boolean, object, array, array of numbers
	optional bool
}

// statusSchema reads the schema table of docs/status-page.md: a row per
// field, "| `path` | type[, optional] | meaning |".
func statusSchema(t testing.TB) map[string]schemaField {
	t.Helper()
	row := regexp.MustCompile("^\\| `([a-z_.\\[\\]]+)` \\| ([a-z ]+?)(, optional)? \\|")
	schema := map[string]schemaField{}
	for _, line := range strings.Split(statusPageDoc, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "/") {
			continue
		}
		switch m[2] {
		case "string", "time", "integer", "number", "boolean", "object", "array", "array of numbers":
		default:
			t.Fatalf("docs/status-page.md: field %s has the type %q, which the schema does not know", m[1], m[2])
		}
		schema[m[1]] = schemaField{typ: m[2], optional: m[3] != ""}
	}
	if len(schema) < 40 {
		t.Fatalf("docs/status-page.md: only %d schema rows found", len(schema))
	}
	return schema
}

// checkSchema checks a document against the schema: every field it has is
// documented with its type, every field the schema requires of an object
// it has is there. withHistory: /status.json (history required) or status
// -json (history absent).
func checkSchema(t testing.TB, what string, doc []byte, schema map[string]schemaField, withHistory bool) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, doc)
	}
	if _, has := v["history"]; has != withHistory {
		t.Errorf("%s: has history: %v; want %v", what, has, withHistory)
	}
	var walk func(path string, obj map[string]any)
	walk = func(path string, obj map[string]any) {
		prefix := path
		if prefix != "" {
			prefix += "."
		}
		for name, f := range schema {
			parent, key, found := strings.Cut(name, prefix)
			if parent != "" || !found || strings.ContainsAny(key, ".") || f.optional || !withHistory && strings.HasPrefix(name, "history") {
				continue
			}
			if _, ok := obj[key]; !ok {
				t.Errorf("%s: %s lacks the field %s", what, cmp.Or(path, "the document"), name)
			}
		}
		for key, val := range obj {
			name := prefix + key
			f, ok := schema[name]
			if !ok {
				t.Errorf("%s: the field %s (%v) is not in the schema", what, name, val)
				continue
			}
			if !schemaType(f.typ, val) {
				t.Errorf("%s: %s is %T %v; the schema says %s", what, name, val, val, f.typ)
				continue
			}
			switch val := val.(type) {
			case map[string]any:
				walk(name, val)
			case []any:
				if f.typ == "array" {
					for _, e := range val {
						if o, ok := e.(map[string]any); ok {
							walk(name+"[]", o)
						} else {
							t.Errorf("%s: an element of %s is %T; the schema has objects", what, name, e)
						}
					}
				}
			}
		}
	}
	walk("", v)
}

// schemaType reports whether v, as encoding/json decodes it, is of type typ.
func schemaType(typ string, v any) bool {
	switch typ {
	case "string":
		_, ok := v.(string)
		return ok
	case "time":
		s, ok := v.(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		return ok && err == nil
	case "integer":
		n, ok := v.(float64)
		return ok && n == math.Trunc(n)
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "array of numbers":
		a, ok := v.([]any)
		for _, e := range a {
			if _, num := e.(float64); !num {
				return false
			}
		}
		return ok
	}
	return false
}

// httpGet fetches path from the listener at addr with a raw HTTP/1.1
// request, as the status page's fetch does, and returns the status line,
// the headers and the body.
func httpGet(t testing.TB, addr, method, path string) (string, map[string]string, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n", method, path, addr)
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("%s %s: no end of headers in %q", method, path, raw)
	}
	lines := strings.Split(string(head), "\r\n")
	headers := map[string]string{}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		headers[strings.ToLower(name)] = strings.TrimSpace(value)
	}
	if n, err := strconv.Atoi(headers["content-length"]); method == "GET" && (err != nil || n != len(body)) {
		t.Fatalf("%s %s: Content-Length %q for %d bytes", method, path, headers["content-length"], len(body))
	}
	return lines[0], headers, body
}

// TestStatusPageIsStatic: GET / is the embedded page as it is, under 50 KB,
// with its script and style inline, nothing loaded from elsewhere, and a
// policy that allows nothing else.
func TestStatusPageIsStatic(t *testing.T) {
	m := startMetricsListener(t)
	status, h, body := httpGet(t, m.ln.Addr().String(), "GET", "/")
	if status != "HTTP/1.1 200 OK" || h["content-type"] != "text/html; charset=utf-8" || !bytes.Equal(body, statusPageHTML) {
		t.Fatalf("GET /: %s %v, %d bytes; want the page's %d", status, h, len(body), len(statusPageHTML))
	}
	if len(body) >= 50<<10 {
		t.Errorf("the page is %d bytes; the issue allows under 50 KB", len(body))
	}
	for _, w := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(h["content-security-policy"], w) {
			t.Errorf("Content-Security-Policy %q lacks %q", h["content-security-policy"], w)
		}
	}
	if h["x-content-type-options"] != "nosniff" || h["cache-control"] != "no-store" {
		t.Errorf("headers: %v", h)
	}
	// Every reference stays on the page's own listener or is inline data.
	refs := regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*["']?([^"' >]*)|url\(\s*["']?([^"')]*)|@import|fetch\(\s*["']([^"']*)`)
	for _, m := range refs.FindAllStringSubmatch(string(body), -1) {
		ref := m[1] + m[2] + m[3]
		if m[0] == "@import" || !slices.Contains([]string{"status.json", "metrics", "data:,"}, ref) {
			t.Errorf("the page refers to %q (%s): it must load nothing from elsewhere", ref, m[0])
		}
	}
	if !strings.Contains(string(body), `fetch("status.json"`) {
		t.Error("the page does not fetch status.json")
	}
}

// TestStatusJSONSchema: the documents of a running service, /status.json
// and status -json, match the schema in docs/status-page.md: a TCP route
// with an active check, a backup and a disabled backend, a route that
// cannot listen, a UDP route (where UDP sockets work), with traffic between
// two samples of the history.
func TestStatusJSONSchema(t *testing.T) {
	schema := statusSchema(t)
	echo := echoServer(t)
	echoAddr2, echoAddr3 := echoServer(t).Addr().String(), echoServer(t).Addr().String()
	taken := newLocalListener(t)
	specs := []string{
		fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d also=%s backup=%s check=1s", freePort(t), portOf(echo.Addr()), echoAddr2, echoAddr3),
		fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d", portOf(taken.Addr()), portOf(echo.Addr())),
	}
	if u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
		specs = append(specs, fmt.Sprintf("127.0.0.1:%d 127.0.0.1 %d proto=udp", freePort(t), u.LocalAddr().(*net.UDPAddr).Port))
		u.Close()
	} else {
		t.Logf("no UDP route: %v (wine 8 has no UDP for Go programs)", err)
	}
	cfg := &Config{LogDir: tempDir(t), MetricsAddr: "127.0.0.1:0"}
	for _, s := range specs {
		r, err := ParseRouteSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	s, err := newService(cfg, &stderrLog{w: io.Discard}, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(context.Background())
	if s.metrics == nil {
		t.Fatal("no metrics listener")
	}
	route0 := s.relay.Addr(s.view.Load().ids[cfg.Routes[0].key()]).String()
	if _, err := s.setBackend(controlRequest{Cmd: "backend", Action: "disable", Route: "0", Backend: echoAddr2}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		roundTrip(t, route0, "schema")
	}
	// The active check connects once a second: wait for its first.
	if !eventually(5*time.Second, func() bool { return !s.status().Routes[0].Backends[0].LastCheck.IsZero() }) {
		t.Fatal("no active check within 5 s")
	}
	s.metrics.history.record(s.status(), time.Now()) // a second sample, after the traffic

	addr := s.metrics.ln.Addr().String()
	status, h, doc := httpGet(t, addr, "GET", "/status.json")
	if status != "HTTP/1.1 200 OK" || h["content-type"] != "application/json" || h["cache-control"] != "no-store" {
		t.Fatalf("GET /status.json: %s %v", status, h)
	}
	checkSchema(t, "/status.json", doc, schema, true)
	var st statusDocument
	if err := json.Unmarshal(doc, &st); err != nil {
		t.Fatal(err)
	}
	if r := st.Routes[0]; r.State != "listening" || r.Proto != "tcp" || r.Total != 3 || len(r.Backends) != 3 ||
		!r.Backends[1].Disabled || r.Backends[2].Role != "backup" {
		t.Errorf("route 0: %+v", r)
	}
	if r := st.Routes[1]; r.State != "not listening" || r.Error == "" {
		t.Errorf("route 1 (port taken): %+v", r)
	}
	if len(st.History.Routes) == 0 || st.History.Routes[0].Route != 0 || len(st.History.Routes[0].ConnectionsPerSecond) == 0 ||
		st.History.Routes[0].ConnectionsPerSecond[st.History.Routes[0].Intervals-1] <= 0 {
		t.Errorf("history: %+v", st.History)
	}

	// status -json: the same document without history.
	plain, err := json.Marshal(s.status())
	if err != nil {
		t.Fatal(err)
	}
	checkSchema(t, "status -json", plain, schema, false)
	if runtime.GOOS != "windows" && len(specs) < 3 {
		t.Error("no UDP route was checked")
	}
}

// TestStatusPageFromCommandLineRelay: the command-line relay with -metrics
// serves the page and /status.json over loopback, on Linux and on Windows
// (scripts/wine-test.sh): the JSON matches the schema, counts the traffic,
// and its history has the minute's rates once a sample follows it.
func TestStatusPageFromCommandLineRelay(t *testing.T) {
	schema := statusSchema(t)
	echo := echoServer(t)
	metrics := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	p := startRelay(t, tempDir(t), "127.0.0.1", portOf(echo.Addr()), "-q", "-metrics", metrics)
	const msg = "through the relay"
	for range 3 {
		roundTrip(t, p.addr(), msg)
	}
	if status, h, body := httpGet(t, metrics, "GET", "/"); status != "HTTP/1.1 200 OK" || h["content-type"] != "text/html; charset=utf-8" || !bytes.Equal(body, statusPageHTML) {
		t.Fatalf("GET /: %s %v, %d bytes", status, h, len(body))
	}
	var doc []byte
	var st statusDocument
	// The sampler takes one sample at start and one every 2 s: the rates
	// show the traffic from the next one on.
	if !eventually(3*historyInterval, func() bool {
		var status string
		status, _, doc = httpGet(t, metrics, "GET", "/status.json")
		st = statusDocument{}
		return status == "HTTP/1.1 200 OK" && json.Unmarshal(doc, &st) == nil && st.History != nil &&
			len(st.History.Routes) == 1 && len(st.History.Routes[0].ConnectionsPerSecond) > 0
	}) {
		t.Fatalf("no history with the traffic within %v:\n%s", 3*historyInterval, doc)
	}
	checkSchema(t, "/status.json", doc, schema, true)
	r := st.Routes[0]
	if st.Service != "relaytcp" || st.State != "Running" || r.Listen != ":"+strconv.Itoa(p.port) || r.State != "listening" || r.Proto != "tcp" ||
		r.Total != 3 || r.BytesSent != 3*int64(len(msg)) || r.BytesReceived != 3*int64(len(msg)) || r.Backends[0].Total != 3 {
		t.Errorf("/status.json: %s", doc)
	}
	var sum float64
	for _, v := range st.History.Routes[0].ConnectionsPerSecond {
		sum += v * st.History.IntervalSeconds
	}
	// Rates are over each interval's real length, which a loaded machine
	// (or wine) stretches past the nominal 2 s: a sample late by 10% reads
	// 2.7 connections here, not 3. Traffic counted twice or lost reads 6 or 0.
	if math.Abs(sum-3) > 0.5 {
		t.Errorf("the history's rates add up to %.2f connections; want 3: %+v", sum, st.History.Routes[0])
	}
	if status, _, body := httpGet(t, metrics, "GET", "/metrics"); status != "HTTP/1.1 200 OK" || !strings.Contains(string(body), "relaytcp_route_connections_total") {
		t.Errorf("GET /metrics: %s\n%s", status, body)
	}
}
