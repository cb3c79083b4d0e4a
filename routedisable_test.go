package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRouteDisabledOption: disabled=1 is a route option in every text
// form; it is written last, disabled=0 (the default) is not written, and
// the route's line ends "(disabled)".
func TestRouteDisabledOption(t *testing.T) {
	checkSpecForms(t, []specForm{
		{"8082 127.0.0.1 80 disabled=1", "8082 127.0.0.1 80 disabled=1",
			"Route 3 : From local port 8082 to IP 127.0.0.1 port 80 (disabled)"},
		{"8082 127.0.0.1 80 disabled=1 maxconn=5", "8082 127.0.0.1 80 maxconn=5 disabled=1",
			"Route 3 : From local port 8082 to IP 127.0.0.1 port 80 (maxconn=5, disabled)"},
		{"8082 127.0.0.1 80 disabled=0", "8082 127.0.0.1 80",
			"Route 3 : From local port 8082 to IP 127.0.0.1 port 80"},
		{"127.0.0.1:8000-8009 h 9000-9009 disabled=1 proto=udp", "127.0.0.1:8000-8009 h 9000-9009 proto=udp disabled=1",
			"Route 3 : From local address 127.0.0.1 ports 8000-8009/udp to IP h ports 9000-9009 (disabled)"},
	}, []specError{
		{"8082 h 80 disabled=yes", "invalid disabled=yes: want 1 (or 0)"},
		{"8082 h 80 disabled=", "invalid disabled=: want 1 (or 0)"},
		{"8082 h 80 disabled=1 disabled=0", "option disabled= given twice"},
	})
}

// TestDisabledRouteKeepsItsPort: a disabled route still owns its port in
// the configuration: a second route on it is a conflict, in a config file
// and for route add.
func TestDisabledRouteKeepsItsPort(t *testing.T) {
	_, err := parseConfig("relaytcp.conf", "route 8082 127.0.0.1 80 disabled=1\nroute 8082 127.0.0.1 81\n")
	if want := "relaytcp.conf: route 1: local port 8082 is already used by route 0"; err == nil || err.Error() != want {
		t.Errorf("two routes on one port, one disabled: %v; want %q", err, want)
	}
	cfg, err := parseConfig("relaytcp.conf", "route 8000-8009 127.0.0.1 80 disabled=1\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.AddRoute(RouteSpec{LocalPort: 8005, RemoteHost: "h", RemotePort: 1}); err == nil {
		t.Error("route add on a port of a disabled range was accepted")
	}
	// A port of the range names the whole range, as route delete takes it.
	if n, err := cfg.findRoute(":8005"); err != nil || n != 0 {
		t.Errorf("findRoute(:8005) = %d, %v; want route 0", n, err)
	}
}

// TestRouteStateWords: the status words of a route switched off, listening
// and not listening, in the status line, the JSON fields and the metrics.
func TestRouteStateWords(t *testing.T) {
	off, _ := ParseRouteSpec("8082 127.0.0.1 80 maxconn=5 disabled=1")
	on, _ := ParseRouteSpec("8083 127.0.0.1 80")
	draining := RouteStatus{Open: 1, counters: counters{Total: 3}}
	for _, tt := range []struct {
		name      string
		spec      RouteSpec
		rs        RouteStatus
		why       string
		state     string
		disabled  bool
		listening bool
		line      string
	}{
		{"disabled, draining", off, draining, stateDisabled, "disabled", true, false,
			"Route 2 : From local port 8082 to IP 127.0.0.1 port 80 (maxconn=5) : disabled, 1 open, 3 total, 0 refused, 0 failed, sent 0 B, received 0 B"},
		{"disabled, service stopped", off, RouteStatus{}, "the service is not running", "disabled", true, false,
			"Route 2 : From local port 8082 to IP 127.0.0.1 port 80 (maxconn=5) : disabled, 0 open, 0 total, 0 refused, 0 failed, sent 0 B, received 0 B"},
		{"listening", on, RouteStatus{Listening: true}, "", "listening", false, true,
			"Route 2 : From local port 8083 to IP 127.0.0.1 port 80 : listening, 0 open, 0 total, 0 refused, 0 failed, sent 0 B, received 0 B"},
		{"not listening", on, RouteStatus{}, "address already in use", "not listening", false, false,
			"Route 2 : From local port 8083 to IP 127.0.0.1 port 80 : not listening: address already in use"},
	} {
		rep := routeReport(2, tt.spec, tt.rs, tt.why)
		if rep.State != tt.state || rep.Disabled != tt.disabled || rep.Listening != tt.listening {
			t.Errorf("%s: state %q, disabled %v, listening %v; want %q, %v, %v", tt.name, rep.State, rep.Disabled, rep.Listening, tt.state, tt.disabled, tt.listening)
		}
		if got := rep.line(); got != tt.line {
			t.Errorf("%s: line\n got %q\nwant %q", tt.name, got, tt.line)
		}
		var b bytes.Buffer
		writeMetrics(&b, &ServiceStatus{Routes: []RouteReport{rep}})
		for _, want := range []string{
			`relaytcp_route_listening{route="2",listen="` + rep.Listen + `"} ` + strconv.Itoa(int(boolValue(tt.listening))),
			`relaytcp_route_disabled{route="2",listen="` + rep.Listen + `"} ` + strconv.Itoa(int(boolValue(tt.disabled))),
		} {
			if !strings.Contains(b.String(), want+"\n") {
				t.Errorf("%s: metrics lack %q:\n%s", tt.name, want, b.String())
			}
		}
	}
}

// TestCommandLineRefusesDisabled: the command-line relay is its one route;
// -disabled is refused with what it is for, not as an unknown option.
func TestCommandLineRefusesDisabled(t *testing.T) {
	_, err := parseArgs([]string{"8080", "h", "80", "-disabled"})
	if want := "option -disabled: the command-line relay has no route to switch off (disabled=1 is for the service's routes: relaytcp route disable)"; err == nil || err.Error() != want {
		t.Errorf("-disabled: %v; want %q", err, want)
	}
}

// TestRelayRetireWithin: a route retired with a drain time frees its port
// at once, lets an open connection relay within the drain time, then cuts
// it; without one (Retire) the connection runs on.
func TestRelayRetireWithin(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	a := startRoute(t, r, 0, echo.Addr())
	b := startRoute(t, r, 1, echo.Addr())
	heldA, heldB := dialTCP(t, a), dialTCP(t, b)
	defer heldA.Close()
	defer heldB.Close()
	if !echoes(heldA) || !echoes(heldB) {
		t.Fatal("no echo before the retire")
	}
	const drain = time.Second
	retired := time.Now()
	r.RetireWithin(0, drain)
	r.Retire(1)
	for _, addr := range []string{a, b} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port of a retired route not free at once: %v", err)
		}
		ln.Close()
	}
	if !echoes(heldA) {
		t.Error("the connection stopped relaying within the drain time")
	}
	heldA.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := heldA.Read(make([]byte, 1)); err == nil {
		t.Error("the connection still relays after the drain time")
	}
	if took := time.Since(retired); took < drain-100*time.Millisecond || took > 8*time.Second {
		t.Errorf("the connection was cut %v after the retire; want about %v", took, drain)
	}
	if !echoes(heldB) {
		t.Error("Retire without a drain time cut the connection")
	}
}
