package main

// The metrics listener's HTTP: what a scraper and the status page need
// (Prometheus, curl, urllib, a browser) and nothing more: GET or HEAD of
// /metrics, / and /status.json (statuspage.go), HTTP/1.0 or 1.1, one
// request per connection; nothing over HTTP changes the relay. net/http
// would serve it as well, and took the executable from 5.6 to 10.2 MB (TLS,
// HTTP/2, MIME and the rest come with it) and a fresh relay's RSS from 5.9
// to 8.1 MiB, for read-only pages.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

const (
	// metricsHeadLimit bounds a request's line and headers.
	metricsHeadLimit = 16 << 10
	// metricsMaxConns caps the listener's open connections (connServer):
	// scrapers come one at a time, and a flood holds that many descriptors
	// at most.
	metricsMaxConns = 16
	// A request must arrive within metricsHeaderTimeout, its answer leave
	// within metricsWriteTimeout; close waits metricsCloseWait for answers
	// being written.
	metricsHeaderTimeout = 5 * time.Second
	metricsWriteTimeout  = 30 * time.Second
	metricsCloseWait     = 5 * time.Second
)

// metricsServer is a running metrics listener.
type metricsServer struct {
	addr   string
	ln     net.Listener
	status func() *ServiceStatus
	conns  *connServer
	// history is sampled while the listener runs (statushistory.go);
	// stopSampling ends that; samplerDone is closed when it has ended.
	history      statusHistory
	stopSampling chan struct{}
	samplerDone  chan struct{}
}

// serveMetrics listens on addr and serves /metrics, the status page and
// /status.json from status until close.
func serveMetrics(addr string, status func() *ServiceStatus) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	m := &metricsServer{addr: addr, ln: ln, status: status, stopSampling: make(chan struct{}), samplerDone: make(chan struct{})}
	// The first sample now: the rates of all that comes after.
	m.history.record(status(), time.Now())
	go func() {
		defer close(m.samplerDone)
		sampleHistory(&m.history, status, m.stopSampling)
	}()
	m.conns = &connServer{ln: ln, maxConns: metricsMaxConns, headerTimeout: metricsHeaderTimeout,
		closeWait: metricsCloseWait, handle: m.serve}
	m.conns.start()
	return m, nil
}

// close stops the listener, cuts the connections whose request has not
// come yet, and waits for the answers being written, for metricsCloseWait;
// slower scrapers are cut then. The samples are dropped.
func (m *metricsServer) close() {
	if m == nil {
		return
	}
	m.conns.close()
	select {
	case <-m.stopSampling:
	default:
		close(m.stopSampling)
	}
	<-m.samplerDone
}

// resource is what the listener serves at a path: its headers (Content-Type
// and others, each line ending in CRLF) and its body, made on request.
type resource struct {
	headers string
	body    func() ([]byte, error)
}

// resource returns what the listener serves at path, if anything.
func (m *metricsServer) resource(path string) (resource, bool) {
	switch path {
	case "/metrics":
		return resource{"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n", func() ([]byte, error) {
			var body bytes.Buffer
			writeMetrics(&body, m.status())
			return body.Bytes(), nil
		}}, true
	case "/status.json":
		return resource{"Content-Type: application/json\r\nCache-Control: no-store\r\n", func() ([]byte, error) {
			return statusJSON(m.status(), &m.history)
		}}, true
	case "/":
		return resource{statusPageHeaders, func() ([]byte, error) { return statusPageHTML, nil }}, true
	}
	return resource{}, false
}

// serve answers one request on c.
func (m *metricsServer) serve(c *serverConn) {
	head := &io.LimitedReader{R: c, N: metricsHeadLimit}
	req, status := readHTTPRequest(bufio.NewReader(head))
	if status == 431 && head.N > 0 {
		return // the client closed before the end of its request
	}
	if !c.answering() {
		return // cut while it read (or it read its request just then)
	}
	c.SetWriteDeadline(time.Now().Add(metricsWriteTimeout))
	res, found := m.resource(req.path)
	switch {
	case status != 0:
	case !found:
		status = 404
	case req.method != "GET" && req.method != "HEAD":
		status = 405
	}
	var body []byte
	var why error
	if status == 0 {
		if body, why = res.body(); why != nil {
			status = 500
		}
	}
	if status != 0 {
		writeHTTPError(c, status, why)
	} else {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n", res.headers, len(body))
		if req.method == "GET" {
			c.Write(body)
		}
	}
	lingeringClose(c.Conn)
}

// lingeringClose ends the answer with a FIN and reads (for at most a
// second, 64 KiB) what the client still sends, so that closing a socket
// with unread data does not reset the connection before the client has
// read the answer.
func lingeringClose(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, c, 64<<10)
}

// httpRequest is what the metrics listener reads of a request.
type httpRequest struct {
	method, path string
}

// readHTTPRequest reads a request's line and headers. A request it cannot
// take comes back with its status: 400 (malformed), 408 (too slow), 431
// (headers too long), 505 (HTTP, but not 1.0 or 1.1).
func readHTTPRequest(r *bufio.Reader) (httpRequest, int) {
	line, err := readHTTPLine(r)
	for err == nil && line == "" { // empty lines before a request are allowed
		line, err = readHTTPLine(r)
	}
	if err != nil {
		return httpRequest{}, httpReadStatus(err)
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return httpRequest{}, 400
	}
	switch v := parts[2]; {
	case len(v) != len("HTTP/1.1") || !strings.HasPrefix(v, "HTTP/") || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]):
		return httpRequest{}, 400 // RFC 9112 2.3: "HTTP/" DIGIT "." DIGIT
	case v != "HTTP/1.0" && v != "HTTP/1.1":
		return httpRequest{}, 505
	}
	req := httpRequest{method: parts[0], path: parts[1]}
	// The absolute form (through a proxy): http://host:port/path.
	if rest, ok := strings.CutPrefix(req.path, "http://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			req.path = rest[i:]
		} else {
			req.path = "/"
		}
	}
	if i := strings.IndexByte(req.path, '?'); i >= 0 {
		req.path = req.path[:i]
	}
	for {
		h, err := readHTTPLine(r)
		if err != nil {
			return httpRequest{}, httpReadStatus(err)
		}
		if h == "" {
			return req, 0
		}
		if name, _, ok := strings.Cut(h, ":"); !ok || name == "" || strings.ContainsAny(name, " \t") {
			return httpRequest{}, 400
		}
	}
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// readHTTPLine reads one line without its CRLF (or LF).
func readHTTPLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// httpReadStatus is the status for a request that could not be read: its
// client was too slow, or its head too long (the limit ends it as EOF; so
// does a client that closes early, which serve tells apart).
func httpReadStatus(err error) int {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 408
	case errors.Is(err, io.EOF):
		return 431
	}
	return 400
}

// httpStatusText names the statuses the metrics listener answers with.
var httpStatusText = map[int]string{
	400: "Bad Request",
	404: "Not Found",
	405: "Method Not Allowed",
	408: "Request Timeout",
	431: "Request Header Fields Too Large",
	500: "Internal Server Error",
	505: "HTTP Version Not Supported",
}

// writeHTTPError answers with status and a one-line text: why, or else
// what the listener serves.
func writeHTTPError(w io.Writer, status int, why error) {
	text := httpStatusText[status]
	body := fmt.Sprintf("%d %s: this listener serves GET /, /status.json and /metrics\n", status, text)
	if why != nil {
		body = fmt.Sprintf("%d %s: %v\n", status, text, why)
	}
	extra := ""
	if status == 405 {
		extra = "Allow: GET, HEAD\r\n"
	}
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, text, extra, len(body), body)
}
