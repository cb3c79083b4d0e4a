package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RouteSpec is one configured route. Its text form, used by the registry,
// the config file, the route commands and the admin menu, is
//
//	[ADDR:]LOCALPORT REMOTEHOST REMOTEPORT [OPTION=VALUE ...]
//
// as in "155 192.168.1.200 110" (RelayTCP 1.0's three fields) or
// "127.0.0.1:155 192.168.1.200 110 allow=10.0.0.0/8 maxconn=100 idle=1h".
// All fields are plain values, so specs compare with ==.
type RouteSpec struct {
	BindAddr   string // the local address to listen on; "" is every interface, IPv4 and IPv6
	LocalPort  int
	RemoteHost string
	RemotePort int
	// A range of ports (ranges.go): the last local port, and the last
	// remote port when each local port has its own; 0 for a single port.
	LocalPortEnd, RemotePortEnd int

	// More backends (backends.go): REMOTEHOST:REMOTEPORT is the first.
	Also    string        // also=: more backends, canonical HOST:PORT,HOST:PORT
	Backup  string        // backup=: backends used only while all others are down
	Balance string        // balance=: roundrobin (also ""), leastconn, source, first
	Check   time.Duration // check=: active health check interval; 0 is none
	Rise    int           // rise=: good checks that mark a backend up; 0 is defaultRise
	Fall    int           // fall=: failed checks that mark it down; 0 is defaultFall

	// Proto is "udp" for a UDP route (udp.go); "" is TCP.
	Proto string

	// The PROXY protocol (proxyproto.go).
	Proxy       string // proxy=: send a header of this version (v1, v2) to the backend; "" none
	AcceptProxy bool   // acceptproxy=1: every client starts with a header, which names the client

	Allow   string        // allow=: canonical comma-separated prefixes; "" admits everyone
	Deny    string        // deny=: likewise; refused even if allowed
	MaxConn int           // maxconn=: open connections of the route; 0 is no cap
	Idle    time.Duration // idle=: close connections idle that long; 0 never
	Connect time.Duration // connect=: connect timeout; 0 is DefaultConnectTimeout

	// RcvBuf is rcvbuf=: the receive buffer of a UDP route's sockets, in
	// bytes (udpbuf.go); 0 is defaultRcvBuf.
	RcvBuf int

	// Limits are the fair-share options (limitoptions.go): clientmaxconn=,
	// clientprefix4=, clientprefix6=, clientrate=, rate=, connrate=.
	Limits

	// TLS options (tlsoptions.go, issue 23).
	TLSOptions

	// Disabled is disabled=1: the route is switched off (routedisable.go).
	// It keeps its line, its options and its port in the configuration,
	// and the service listens on nothing for it.
	Disabled bool
}

// routeOptionNames lists the options, in the order String writes them.
const routeOptionNames = "proto, also, backup, balance, check, rise, fall, proxy, acceptproxy, allow, deny, maxconn, idle, connect, rcvbuf, " + limitOptionNames + ", " + tlsOptionNames + ", disabled"

// ParseRouteSpec parses a route's text form. The host's form is checked; it
// is not resolved (the service resolves it when the route starts).
func ParseRouteSpec(s string) (RouteSpec, error) {
	fields, err := splitRouteFields(s) // quoted file names: quotedpaths.go
	if err != nil {
		return RouteSpec{}, err
	}
	return routeSpecFromFields(fields)
}

// routeSpecFromFields parses a route given as its fields.
func routeSpecFromFields(fields []string) (RouteSpec, error) {
	names := []string{"local port", "remote host", "remote port"}
	if len(fields) < 3 {
		return RouteSpec{}, fmt.Errorf("missing %s (want [ADDR:]LOCALPORT REMOTEHOST REMOTEPORT [OPTION=VALUE ...])", names[len(fields)])
	}
	var r RouteSpec
	var err error
	if r.BindAddr, r.LocalPort, r.LocalPortEnd, err = parseLocal(fields[0]); err != nil {
		return RouteSpec{}, err
	}
	if r.RemoteHost, err = parseHost(fields[1]); err != nil {
		return RouteSpec{}, err
	}
	if r.RemotePort, r.RemotePortEnd, err = parsePortRange("remote port", fields[2]); err != nil {
		return RouteSpec{}, err
	}
	seen := map[string]bool{}
	for _, opt := range fields[3:] {
		key, value, ok := strings.Cut(opt, "=")
		if !ok {
			return RouteSpec{}, fmt.Errorf("unexpected %q after the remote port (options are OPTION=VALUE: %s)", opt, routeOptionNames)
		}
		if seen[key] {
			return RouteSpec{}, fmt.Errorf("option %s= given twice", key)
		}
		seen[key] = true
		if err := r.setOption(key, value); err != nil {
			return RouteSpec{}, err
		}
	}
	if err := r.checkBackends(); err != nil {
		return RouteSpec{}, err
	}
	if err := r.checkRanges(); err != nil {
		return RouteSpec{}, err
	}
	if err := r.checkUDP(); err != nil {
		return RouteSpec{}, err
	}
	if err := r.checkTLS(); err != nil { // tlsoptions.go
		return RouteSpec{}, err
	}
	return r, nil
}

// parseLocal parses the local side: PORT or FIRST-LAST, as they are or
// after ":" (every interface), IPV4: or [IPV6]:; last is 0 for one port.
func parseLocal(s string) (bind string, first, last int, err error) {
	return parseLocalAs("local port", s)
}

// parseLocalAs is parseLocal with the port's name for errors (the command
// line calls it the listen port, as RelayTCP 1.0 did).
func parseLocalAs(what, s string) (bind string, first, last int, err error) {
	if !strings.Contains(s, ":") {
		first, last, err = parsePortRange(what, s)
		return "", first, last, err
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, 0, fmt.Errorf("invalid local address %q (want PORT, ADDR:PORT or [IPV6]:PORT)", s)
	}
	if host != "" {
		addr, err := netip.ParseAddr(host)
		if err != nil || addr.Zone() != "" {
			return "", 0, 0, fmt.Errorf("invalid local address %q: %q is not an IP address", s, host)
		}
		bind = addr.String()
	}
	first, last, err = parsePortRange(what, p)
	return bind, first, last, err
}

// setOption sets one OPTION=VALUE.
func (r *RouteSpec) setOption(key, value string) error {
	switch key {
	case "also", "backup", "balance", "check", "rise", "fall":
		return r.setBackendOption(key, value)
	case "proto":
		switch value {
		case "udp":
			r.Proto = value
		case "tcp":
		default:
			return fmt.Errorf("invalid proto=%s: want tcp or udp", value)
		}
	case "proxy":
		if value != proxyV1 && value != proxyV2 {
			return fmt.Errorf("invalid proxy=%s: want v1 or v2", value)
		}
		r.Proxy = value
	case "acceptproxy", "disabled":
		on, err := parseSwitch(key, value)
		if err != nil {
			return err
		}
		if key == "acceptproxy" {
			r.AcceptProxy = on
		} else {
			r.Disabled = on
		}
	case "allow", "deny":
		prefixes, err := parsePrefixes(value)
		if err != nil {
			return fmt.Errorf("invalid %s=%s: %v", key, value, err)
		}
		if key == "allow" {
			r.Allow = joinPrefixes(prefixes)
		} else {
			r.Deny = joinPrefixes(prefixes)
		}
	case "maxconn":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || strings.TrimLeft(value, "0123456789") != "" {
			return fmt.Errorf("invalid maxconn=%s: want a number of connections, 1 or more", value)
		}
		r.MaxConn = n
	case "idle", "connect":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("invalid %s=%s: want a duration such as 30s, 5m or 2h", key, value)
		}
		if key == "idle" {
			r.Idle = d
		} else {
			r.Connect = d
		}
	case "rcvbuf":
		n, err := parseRcvBuf(value)
		if err != nil {
			return err
		}
		r.RcvBuf = n
	default:
		if isLimitOption(key) { // limitoptions.go
			return r.Limits.set(key, value)
		}
		if handled, err := r.setTLSOption(key, value); handled { // tlsoptions.go
			return err
		}
		return fmt.Errorf("unknown option %q (options: %s)", key+"=", routeOptionNames)
	}
	return nil
}

// parseSwitch parses an option that is on or off: 1, or 0 (the default,
// which the text form leaves out).
func parseSwitch(key, value string) (bool, error) {
	switch value {
	case "1":
		return true, nil
	case "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid %s=%s: want 1 (or 0)", key, value)
}

// parsePrefixes parses a comma-separated list of addresses and CIDR
// prefixes; an address stands for itself alone (/32 or /128).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, fmt.Errorf("empty list")
	}
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or a prefix like 10.0.0.0/8", item)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an address or a prefix like 10.0.0.0/8", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// mustPrefixes parses a list that parsePrefixes already accepted.
func mustPrefixes(s string) []netip.Prefix {
	if s == "" {
		return nil
	}
	p, _ := parsePrefixes(s)
	return p
}

// Local returns the local side in text form: PORT or ADDR:PORT (the port
// may be a range, FIRST-LAST).
func (r RouteSpec) Local() string {
	ports := portRange(r.LocalPort, r.LocalPortEnd)
	if r.BindAddr == "" {
		return ports
	}
	return net.JoinHostPort(r.BindAddr, ports)
}

// listen is the local side as the status and the metrics name it: with
// the address, ":155" for every interface, and "/udp" for a UDP route.
func (r RouteSpec) listen() string {
	return net.JoinHostPort(r.BindAddr, portRange(r.LocalPort, r.LocalPortEnd)) + r.protoSuffix()
}

// key identifies the route among the configuration's: its local side, and
// its protocol (a TCP and a UDP route may share a port).
func (r RouteSpec) key() string { return r.Local() + r.protoSuffix() + r.sniKey() /* sniroute.go */ }

// localPorts names the route's local ports for messages: "port 155",
// "ports 8000-8099", "port 53/udp".
func (r RouteSpec) localPorts() string {
	return portWord(r.LocalPort, r.LocalPortEnd) + r.protoSuffix()
}

// protoSuffix is "/udp" for a UDP route, "" for TCP.
func (r RouteSpec) protoSuffix() string {
	if r.Proto == "" {
		return ""
	}
	return "/" + r.Proto
}

// Options returns the options in text form, in a fixed order; disabled=1
// comes last, so that switching a route off and on changes only the end of
// its line.
func (r RouteSpec) Options() []string {
	var opts []string
	if r.Proto != "" {
		opts = append(opts, "proto="+r.Proto)
	}
	opts = append(append(opts, r.backendOptions()...), r.limitOptions()...)
	opts = append(opts, r.tlsOptions()...) // tlsoptions.go
	if r.Disabled {
		opts = append(opts, "disabled=1")
	}
	return opts
}

// limitOptions returns the options other than the backends' in text form.
func (r RouteSpec) limitOptions() []string {
	var opts []string
	if r.Proxy != "" {
		opts = append(opts, "proxy="+r.Proxy)
	}
	if r.AcceptProxy {
		opts = append(opts, "acceptproxy=1")
	}
	if r.Allow != "" {
		opts = append(opts, "allow="+r.Allow)
	}
	if r.Deny != "" {
		opts = append(opts, "deny="+r.Deny)
	}
	if r.MaxConn > 0 {
		opts = append(opts, "maxconn="+strconv.Itoa(r.MaxConn))
	}
	if r.Idle > 0 {
		opts = append(opts, "idle="+shortDuration(r.Idle))
	}
	if r.Connect > 0 {
		opts = append(opts, "connect="+shortDuration(r.Connect))
	}
	if r.RcvBuf > 0 {
		opts = append(opts, "rcvbuf="+formatRcvBuf(r.RcvBuf))
	}
	return append(opts, r.Limits.text()...)
}

// shortDuration writes an option's duration as people write it, without
// zero units: 1h, 1h30m, 1m30s (Go's String says 1h0m0s, 1h30m0s). It
// parses back to d.
func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return d.String()
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
	}
	if m := d % time.Hour / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
	}
	if rest := d % time.Minute; rest > 0 {
		b.WriteString(rest.String())
	}
	return b.String()
}

// String returns the route's text form.
func (r RouteSpec) String() string {
	host := r.RemoteHost
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return strings.Join(append([]string{r.Local(), host, portRange(r.RemotePort, r.RemotePortEnd)}, r.Options()...), " ")
}

// Route returns the relay route for the spec.
func (r RouteSpec) Route() Route {
	return Route{
		ListenAddr:     net.JoinHostPort(r.BindAddr, strconv.Itoa(r.LocalPort)),
		Ports:          r.ports(),
		RemoteRange:    r.RemotePortEnd != 0,
		RemoteHost:     r.RemoteHost,
		RemotePort:     r.RemotePort,
		ConnectTimeout: r.Connect,
		Allow:          mustPrefixes(r.Allow),
		Deny:           mustPrefixes(r.Deny),
		MaxConn:        r.MaxConn,
		IdleTimeout:    r.Idle,
		Proto:          r.Proto,
		Proxy:          r.Proxy,
		AcceptProxy:    r.AcceptProxy,
		Also:           splitBackends(r.Also),
		Backups:        splitBackends(r.Backup),
		Balance:        r.Balance,
		Check:          r.Check,
		Rise:           r.Rise,
		Fall:           r.Fall,
		RcvBuf:         r.RcvBuf,
		Limits:         r.Limits,
		TLS:            r.TLSOptions,
	}
}

// checkResolvable makes sure host resolves to at least one address, so that a
// mistyped name is reported at start, as the manual does. Connections dial
// the name again each time.
func checkResolvable(ctx context.Context, host string) error {
	if net.ParseIP(host) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return errors.New("no such host")
		}
		return err
	}
	if len(addrs) == 0 {
		return errors.New("no addresses")
	}
	return nil
}

// hostError is a backend's host that did not resolve, and why.
type hostError struct {
	host string
	err  error
}

// unresolvable returns the backends of r whose host does not resolve, in
// the written order; the names are looked up at the same time, until ctx
// is done.
func (r RouteSpec) unresolvable(ctx context.Context) []hostError {
	addrs := r.backendAddrs()
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		host, _, _ := net.SplitHostPort(a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = checkResolvable(ctx, host)
		}()
	}
	wg.Wait()
	var bad []hostError
	for i, err := range errs {
		if err != nil {
			host, _, _ := net.SplitHostPort(addrs[i])
			bad = append(bad, hostError{host, err})
		}
	}
	return bad
}
