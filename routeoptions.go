package main

// The route options that take more than a word to parse: the backends
// (also=, backup=, balance=, check=, rise=, fall=), and the PROXY
// protocol's (proxy=, acceptproxy=). They belong to the route's text form
// (routespec.go); backends.go runs what they describe.

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The balance= modes: how a new connection picks its backend.
const (
	balanceRoundRobin = "roundrobin" // rotate over the backends that are up (the default)
	balanceLeastConn  = "leastconn"  // the one with the fewest open connections
	balanceSource     = "source"     // by the client's address (consistent hash)
	balanceFirst      = "first"      // the first one up, in the written order
)

// balanceModes lists the balance= values, for errors.
const balanceModes = "roundrobin, leastconn, source or first"

const (
	// defaultRise and defaultFall are rise= and fall='s defaults.
	defaultRise = 2
	defaultFall = 3
	// maxRiseFall bounds rise= and fall=.
	maxRiseFall = 1000
	// minCheckInterval is the shortest check= interval.
	minCheckInterval = 100 * time.Millisecond
	// maxBackends bounds a route's backends (a connection remembers those
	// it tried in a 64-bit set).
	maxBackends = 64
)

// setBackendOption sets one of the backend options of a route spec.
func (r *RouteSpec) setBackendOption(key, value string) error {
	switch key {
	case "also", "backup":
		list, err := parseBackendList(value)
		if err != nil {
			return fmt.Errorf("invalid %s=%s: %v", key, value, err)
		}
		if key == "also" {
			r.Also = list
		} else {
			r.Backup = list
		}
	case "balance":
		switch value {
		case balanceRoundRobin, balanceLeastConn, balanceSource, balanceFirst:
			r.Balance = value
		default:
			return fmt.Errorf("invalid balance=%s: want %s", value, balanceModes)
		}
	case "check":
		d, err := time.ParseDuration(value)
		if err != nil || d < minCheckInterval {
			return fmt.Errorf("invalid check=%s: want an interval of %v or more, such as 2s", value, minCheckInterval)
		}
		r.Check = d
	case "rise", "fall":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > maxRiseFall || strings.TrimLeft(value, "0123456789") != "" {
			return fmt.Errorf("invalid %s=%s: want a number of checks, 1 to %d", key, value, maxRiseFall)
		}
		if key == "rise" {
			r.Rise = n
		} else {
			r.Fall = n
		}
	}
	return nil
}

// parseBackendList parses HOST:PORT[,HOST:PORT...] (an IPv6 address in
// brackets) and returns it in canonical form. Names are checked, not
// resolved.
func parseBackendList(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty list")
	}
	var out []string
	for _, item := range strings.Split(s, ",") {
		addr, err := parseBackend(item)
		if err != nil {
			return "", err
		}
		out = append(out, addr)
	}
	return strings.Join(out, ","), nil
}

// parseBackend parses one HOST:PORT and returns it in canonical form.
func parseBackend(s string) (string, error) {
	host, port, last, err := parseRemote("port", s)
	if err != nil {
		return "", err
	}
	if last != 0 {
		return "", fmt.Errorf("%q: a backend has one port, not a range", s)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// parseRemote parses HOST:PORT or HOST:FIRST-LAST (what names the port in
// errors) and returns the host without brackets; last is 0 for one port.
// An IPv6 address must be in brackets, so that its colons are not read as
// the port's.
func parseRemote(what, s string) (host string, first, last int, err error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", 0, 0, fmt.Errorf("%q is not HOST:PORT (an IPv6 address as [fd00::5]:8080)", s)
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(s, "[") {
		return "", 0, 0, fmt.Errorf("%q: write an IPv6 address in brackets, as [%s]:%s", s, host, port)
	}
	if host, err = parseHost(host); err != nil {
		return "", 0, 0, fmt.Errorf("%q: %v", s, err)
	}
	if first, last, err = parsePortRange(what, port); err != nil {
		return "", 0, 0, fmt.Errorf("%q: %v", s, err)
	}
	return host, first, last, nil
}

// splitBackends splits a canonical backend list.
func splitBackends(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// checkBackends refuses a route whose backends repeat one another or are
// too many.
func (r RouteSpec) checkBackends() error {
	all := r.backendAddrs()
	if len(all) > maxBackends {
		return fmt.Errorf("too many backends (%d): a route has at most %d", len(all), maxBackends)
	}
	seen := make(map[string]bool, len(all))
	for _, a := range all {
		key := strings.ToLower(a)
		if seen[key] {
			return fmt.Errorf("duplicate backend %s", a)
		}
		seen[key] = true
	}
	return nil
}

// backendAddrs returns every backend of the route, HOST:PORT, in the
// written order: the first, also=, then backup=.
func (r RouteSpec) backendAddrs() []string {
	all := []string{net.JoinHostPort(r.RemoteHost, strconv.Itoa(r.RemotePort))}
	all = append(all, splitBackends(r.Also)...)
	return append(all, splitBackends(r.Backup)...)
}

// backendOptions returns the backend options in text form.
func (r RouteSpec) backendOptions() []string {
	var opts []string
	if r.Also != "" {
		opts = append(opts, "also="+r.Also)
	}
	if r.Backup != "" {
		opts = append(opts, "backup="+r.Backup)
	}
	if r.Balance != "" {
		opts = append(opts, "balance="+r.Balance)
	}
	for _, kv := range r.checkSettings() {
		opts = append(opts, kv[0]+"="+kv[1])
	}
	return opts
}

// checkSettings returns the health check options that are set, as name
// and value: {"check", "2s"}, {"rise", "3"}, {"fall", "2"}.
func (r RouteSpec) checkSettings() [][2]string {
	var kvs [][2]string
	if r.Check > 0 {
		kvs = append(kvs, [2]string{"check", shortDuration(r.Check)})
	}
	if r.Rise > 0 {
		kvs = append(kvs, [2]string{"rise", strconv.Itoa(r.Rise)})
	}
	if r.Fall > 0 {
		kvs = append(kvs, [2]string{"fall", strconv.Itoa(r.Fall)})
	}
	return kvs
}

// backendSummary describes the backends after the first for route lines:
// ", also web2:8080, web3:8080, backup web9:8080", and the balance and
// check settings: "leastconn, check 2s" ("" and "" for a route with one
// backend and no such options).
func (r RouteSpec) backendSummary() (more, settings string) {
	more = moreBackends(splitBackends(r.Also), splitBackends(r.Backup))
	var s []string
	if r.Balance != "" || more != "" {
		s = append(s, cmp.Or(r.Balance, balanceRoundRobin))
	}
	for _, kv := range r.checkSettings() {
		s = append(s, kv[0]+" "+kv[1])
	}
	return more, strings.Join(s, ", ")
}

// The proxy= values.
const (
	proxyV1 = "v1"
	proxyV2 = "v2"
)

// checkUDP refuses the options that do not apply to UDP routes, and
// those that apply only to them on TCP routes.
func (r RouteSpec) checkUDP() error {
	if r.Proto != "udp" {
		if r.RcvBuf != 0 {
			return fmt.Errorf("option rcvbuf= applies only to proto=udp routes")
		}
		return nil
	}
	for _, o := range []struct {
		set  bool
		name string
	}{{r.Proxy != "", "proxy="}, {r.AcceptProxy, "acceptproxy="}, {r.Connect != 0, "connect="},
		{r.Check != 0, "check="}, {r.Rise != 0, "rise="}, {r.Fall != 0, "fall="}} {
		if o.set {
			return fmt.Errorf("option %s does not apply to proto=udp routes", o.name)
		}
	}
	return nil
}
