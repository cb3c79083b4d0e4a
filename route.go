package main

// The route model: what a route is, as plain data that every part reads
// (the relay, the service, the configuration's text form) and that depends
// on nothing that runs.

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DefaultConnectTimeout is how long a route waits for the remote side to
// accept a connection when Route.ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

// Route is one forwarding rule: connections accepted on ListenAddr are relayed
// to RemoteHost:RemotePort.
type Route struct {
	// ListenAddr is the local address to listen on, as for net.Listen:
	// ":155" listens on every interface, IPv4 and IPv6.
	ListenAddr string
	// Ports, when more than 1, makes the route listen on that many ports
	// from ListenAddr's on (a range, ranges.go). With RemoteRange, a
	// connection to the n-th port goes to each backend's port + n; else
	// every port goes to the backends' ports.
	Ports       int
	RemoteRange bool
	// Proto is "udp" for a UDP route (udp.go), "" for TCP.
	Proto string
	// RemoteHost is the destination as a name or an IP literal. A name is
	// resolved again for every connection, so DNS changes are followed.
	RemoteHost string
	// RemotePort is the destination port, 1-65535.
	RemotePort int
	// ConnectTimeout bounds the dial to the remote side; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// DataLogDir, when not empty, turns on the data log: one hex+ASCII file
	// per connection in that directory.
	DataLogDir string

	// Allow, when not empty, admits only clients whose address is in one
	// of these prefixes; Deny refuses clients in any of its prefixes (Deny
	// wins). A refused client is closed at once.
	Allow, Deny []netip.Prefix
	// MaxConn caps the route's open connections; zero means no cap. Over
	// it, new clients are refused and the open ones are not affected.
	MaxConn int
	// IdleTimeout closes a connection that has relayed nothing either way
	// for that long; zero means never.
	IdleTimeout time.Duration

	// Also are more backends (HOST:PORT) besides RemoteHost:RemotePort,
	// Backups backends used only while all the others are down. Balance
	// is how a connection picks one ("" is roundrobin); Check, when not
	// zero, checks each backend that often; Rise and Fall are the checks
	// in a row that mark a backend up and down (zero: 2 and 3). See
	// backends.go.
	Also, Backups []string
	Balance       string
	Check         time.Duration
	Rise, Fall    int

	// Proxy, "v1" or "v2", sends each backend a PROXY header first that
	// names the client; AcceptProxy requires one from every client, read
	// within the connect timeout, and takes the client from it
	// (proxyproto.go).
	Proxy       string
	AcceptProxy bool

	// RcvBuf is the receive buffer of a UDP route's sockets in bytes; zero
	// means defaultRcvBuf (udpbuf.go).
	RcvBuf int

	// Limits are the per-client limits and the bandwidth caps
	// (limitoptions.go); the zero value is none.
	Limits

	// TLS are the route's TLS options (tlsoptions.go); a route that uses
	// them is relayed by the goroutine relay (tlsroute.go). SNIShared
	// marks a route without sni= on a port that routes with sni= share:
	// it is the port's default (sniroute.go).
	TLS       TLSOptions
	SNIShared bool
}

// admits reports why a client may not use the route, or "" if it may.
// With AcceptProxy this is the connecting proxy: allow= lists the trusted
// proxies, and the client its header names must pass denies too.
func (rt Route) admits(client netip.Addr) string {
	client = client.Unmap()
	if why := rt.denies(client); why != "" {
		return why
	}
	if len(rt.Allow) == 0 {
		return ""
	}
	for _, p := range rt.Allow {
		if p.Contains(client) {
			return ""
		}
	}
	return "not in allow=" + joinPrefixes(rt.Allow)
}

// denies reports why deny= refuses a client, or "".
func (rt Route) denies(client netip.Addr) string {
	client = client.Unmap()
	for _, p := range rt.Deny {
		if p.Contains(client) {
			return "denied by deny=" + p.String()
		}
	}
	return ""
}

// joinPrefixes writes prefixes as the allow= and deny= options do.
func joinPrefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// RemoteAddr returns the destination in host:port form.
func (rt Route) RemoteAddr() string {
	return net.JoinHostPort(rt.RemoteHost, strconv.Itoa(rt.RemotePort))
}

func (rt Route) connectTimeout() time.Duration {
	if rt.ConnectTimeout > 0 {
		return rt.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// describe is how events and messages name the route's backends: the
// first's HOST:PORT (HOST:FIRST-LAST for a remote range), then the others.
func (rt Route) describe() string {
	first := rt.RemoteAddr()
	if rt.RemoteRange && rt.Ports > 1 {
		first += "-" + strconv.Itoa(rt.RemotePort+rt.Ports-1)
	}
	return first + moreBackends(rt.Also, rt.Backups)
}

// moreBackends writes the backends after the first as route lines and
// messages show them: ", also web2:8080, web3:8080, backup web9:8080".
func moreBackends(also, backups []string) string {
	s := ""
	if len(also) > 0 {
		s += ", also " + strings.Join(also, ", ")
	}
	if len(backups) > 0 {
		s += ", backup " + strings.Join(backups, ", ")
	}
	return s
}
