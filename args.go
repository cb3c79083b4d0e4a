package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// usageLine is printed with every argument error.
const usageLine = "usage: relaytcp [ADDR:]listenPort {remoteHost remotePort | remoteHost:remotePort} [-d] [-q] [-bind ADDR] [-allow LIST] [-deny LIST] [-maxconn N] [-idle DURATION] [-connect DURATION] [-drain DURATION] [-also LIST] [-backup LIST] [-balance MODE] [-check DURATION] [-rise N] [-fall N] [-proxy v1|v2] [-acceptproxy] [-udp] [-rcvbuf SIZE] [-clientmaxconn N] [-clientprefix4 BITS] [-clientprefix6 BITS] [-clientrate N/DURATION] [-rate BYTES] [-connrate BYTES] [-tls CERT,KEY] [-backendtls[=noverify]] [-metrics ADDR:PORT]"

// usageText is printed by relaytcp -h.
const usageText = usageLine + `

Relays every TCP connection accepted on listenPort (all interfaces, IPv4 and
IPv6) to remoteHost:remotePort. Press ESC, Ctrl-C or send SIGTERM to stop.

  listenPort        local port to listen on, 1-65535, or a range FIRST-LAST (8000-8099);
                    ADDR:listenPort listens on that address only, as -bind (127.0.0.1:8080,
                    [::1]:8080)
  remoteHost        destination name or IP address (an IPv6 address as ::1 or [::1])
  remotePort        destination port, 1-65535; with a listen range, one port for all, or
                    a range as long (8000 goes to the first, 8001 to the second, ...)
  remoteHost:remotePort  the two as one argument, as socat and ssh write them
                    (example.org:80, [::1]:80, 10.0.0.5:9000-9099)
  -d                log all relayed data, one hex+ASCII file per connection
                    (RLyymmddhhttnn.LOG in the current directory)
  -q                do not print a line per connection
  -bind ADDR        listen on this local address only (127.0.0.1, ::1, ...)
  -allow LIST       admit only clients in these addresses/prefixes (10.0.0.0/8,192.168.1.7)
  -deny LIST        refuse clients in these addresses/prefixes
  -maxconn N        at most N open connections; more are refused
  -idle DURATION    close connections that relay nothing for that long (e.g. 2h)
  -connect DURATION how long to wait for the remote side to accept (default 10s)
  -drain DURATION   on stop, how long open connections may still finish (default 5s)
  -also LIST        more backends, HOST:PORT,HOST:PORT (an IPv6 address as [fd00::5]:80)
  -backup LIST      backends used only while all the others are down
  -balance MODE     how a connection picks a backend: roundrobin (default), leastconn,
                    source (by client address) or first (the first one up)
  -check DURATION   connect to every backend that often to check it (e.g. 2s; default:
                    only connections check them)
  -rise N, -fall N  checks in a row that mark a backend up (default 2) or down (default 3)
  -proxy v1|v2      send each backend a PROXY protocol header naming the client
  -acceptproxy      every client starts with a PROXY header (from a trusted proxy: use -allow)
  -udp              relay UDP datagrams instead of TCP connections (a session per client;
                    -idle defaults to 60s, -maxconn to 10000 sessions)
  -rcvbuf SIZE      with -udp: the sockets' receive buffer for bursts (default 4M; 256K, ...)
  -clientmaxconn N  at most N open connections per client; more from it are refused
  -clientprefix4 BITS, -clientprefix6 BITS  the prefix that is one client (default 32 and 64)
  -clientrate N/DURATION  at most N new connections per client per DURATION (20/1s, 100/1m)
  -rate BYTES       bytes a second of all connections together, each way (10M, 512K;
                    K, M, G are powers of 1024); over it the relay reads slower
  -connrate BYTES   bytes a second of each connection, each way (UDP: datagrams over
                    either rate are dropped)
  -tls CERT,KEY     terminate TLS from clients with this PEM certificate (chain) and key;
                    -tlsmin 1.3, -tlsclientca FILE (require client certificates),
                    -handshake DURATION (default 10s) go with it (docs/tls.md)
  -backendtls       speak TLS to the backend, verified against the system's roots;
                    -backendtls=noverify does not verify; -backendca FILE,
                    -backendsni NAME, -backendcert CERT,KEY go with it
  -sni NAMES        relay only clients whose TLS server name matches (*.example.com)
  -metrics ADDR:PORT serve a status page at http://ADDR:PORT/ and Prometheus metrics at
                    /metrics (e.g. 127.0.0.1:9155: it shows addresses and counts to anyone)

Exit codes: 0 stopped normally, 1 runtime error, 2 invalid arguments,
3 cannot listen on the port, 4 cannot resolve remoteHost; the commands below
also 5 invalid configuration, 6 the configuration stayed locked by another
command.`

// DefaultDrainTimeout is how long open connections may finish after a stop.
const DefaultDrainTimeout = 5 * time.Second

// cliOptions are the parsed arguments of the command-line relay.
type cliOptions struct {
	listenPort     int
	remoteHost     string
	remotePort     int
	listenPortEnd  int // the last of a range of listen ports; 0 for one port
	remotePortEnd  int // the last of a range of remote ports; 0 for one port
	dataLog        bool
	quiet          bool
	metricsAddr    string // -metrics: serve the status page and /metrics there
	connectSet     bool   // -connect was given
	drain          time.Duration
	connectTimeout time.Duration
	// limits holds -bind, -allow, -deny, -maxconn, -idle and the backend
	// options, as a route's options are held.
	limits RouteSpec
}

// parseArgs parses the command-line relay's arguments. The positional
// arguments come in the manual's order (setPositional); options may stand
// anywhere.
func parseArgs(args []string) (cliOptions, error) {
	opts := cliOptions{drain: DefaultDrainTimeout, connectTimeout: DefaultConnectTimeout}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !isOption(arg) {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch name {
		case "h", "help", "?":
			return opts, errHelp
		case "disabled":
			// A route switched off is the service's (routedisable.go): the
			// command-line relay is its one route, and stopping it is ESC.
			return opts, fmt.Errorf("option %s: the command-line relay has no route to switch off (disabled=1 is for the service's routes: relaytcp route disable)", arg)
		case "d":
			opts.dataLog = true
		case "q":
			opts.quiet = true
		case "udp":
			if hasValue {
				return opts, fmt.Errorf("option -udp takes no value: %s", arg)
			}
			opts.limits.Proto = "udp"
		case "acceptproxy":
			if hasValue {
				return opts, fmt.Errorf("option -acceptproxy takes no value: %s", arg)
			}
			opts.limits.AcceptProxy = true
		case "backendtls": // TLS options: tlsoptions.go
			if !hasValue {
				value = "1"
			}
			if err := opts.setLimit(name, value); err != nil {
				return opts, err
			}
		case "bind", "allow", "deny", "maxconn", "idle", "also", "backup", "balance", "check", "rise", "fall", "proxy", "rcvbuf",
			"clientmaxconn", "clientprefix4", "clientprefix6", "clientrate", "rate", "connrate",
			"tls", "tlsmin", "tlsclientca", "handshake", "backendca", "backendsni", "backendcert", "sni":
			if !hasValue {
				if i+1 >= len(args) {
					return opts, fmt.Errorf("option %s needs a value", arg)
				}
				i++
				value = args[i]
			}
			if err := opts.setLimit(name, value); err != nil {
				return opts, err
			}
		case "metrics":
			if !hasValue {
				if i+1 >= len(args) {
					return opts, fmt.Errorf("option %s needs an address, like 127.0.0.1:9155", arg)
				}
				i++
				value = args[i]
			}
			addr, err := parseMetricsAddr(value)
			if err != nil {
				return opts, err
			}
			opts.metricsAddr = addr
		case "drain", "connect":
			if !hasValue {
				if i+1 >= len(args) {
					return opts, fmt.Errorf("option %s needs a duration, like 5s", arg)
				}
				i++
				value = args[i]
			}
			d, err := time.ParseDuration(value)
			if err != nil || d < 0 || (name == "connect" && d == 0) {
				return opts, fmt.Errorf("invalid duration %q for -%s (want e.g. 500ms, 5s, 1m)", value, name)
			}
			if name == "drain" {
				opts.drain = d
			} else {
				opts.connectTimeout, opts.connectSet = d, true
			}
		default:
			return opts, fmt.Errorf("unknown option %s", arg)
		}
		if hasValue && (name == "d" || name == "q") {
			return opts, fmt.Errorf("option -%s takes no value: %s", name, arg)
		}
	}

	if err := opts.setPositional(positional); err != nil {
		return opts, err
	}
	if err := opts.routeSpec().checkBackends(); err != nil {
		return opts, err
	}
	if err := opts.routeSpec().checkRanges(); err != nil {
		return opts, err
	}
	if err := opts.routeSpec().checkUDP(); err != nil {
		return opts, err
	}
	if err := opts.routeSpec().checkTLS(); err != nil {
		return opts, err
	}
	return opts, nil
}

// setPositional parses the positional arguments: the local side
// [ADDR:]listenPort, then the remote side, as two arguments (remoteHost
// remotePort, the manual's form) or one (remoteHost:remotePort, as socat
// and ssh write it). An address on the local side is -bind's.
func (o *cliOptions) setPositional(args []string) error {
	names := []string{"listenPort", "remoteHost", "remotePort"}
	if len(args) < 2 {
		return fmt.Errorf("missing %s", strings.Join(names[len(args):], ", "))
	}
	bind, first, last, err := parseLocalAs("listen port", args[0])
	if err != nil {
		return err
	}
	switch {
	case bind != "" && o.limits.BindAddr != "" && bind != o.limits.BindAddr:
		return fmt.Errorf("listen address %s of %q differs from -bind %s: give one of them", bind, args[0], o.limits.BindAddr)
	case bind != "":
		o.limits.BindAddr = bind
	}
	o.listenPort, o.listenPortEnd = first, last
	remote := args[1:]
	if hasPort(remote[0]) {
		if len(remote) > 1 {
			return fmt.Errorf("unexpected argument %q", remote[1])
		}
		o.remoteHost, o.remotePort, o.remotePortEnd, err = parseRemote("remote port", remote[0])
		return err
	}
	if len(remote) < 2 {
		bracketed := remote[0]
		if strings.Contains(bracketed, ":") && !strings.HasPrefix(bracketed, "[") {
			bracketed = "[" + bracketed + "]"
		}
		return fmt.Errorf("missing remotePort: write \"%s PORT\" or \"%s:PORT\"", remote[0], bracketed)
	}
	if len(remote) > 2 {
		return fmt.Errorf("unexpected argument %q", remote[2])
	}
	if o.remoteHost, err = parseHost(remote[0]); err != nil {
		return err
	}
	o.remotePort, o.remotePortEnd, err = parsePortRange("remote port", remote[1])
	return err
}

// hasPort reports whether a remote side is HOST:PORT rather than a host
// alone: an IPv6 address without brackets has several colons and no port.
func hasPort(s string) bool {
	if strings.HasPrefix(s, "[") {
		return !strings.HasSuffix(s, "]")
	}
	return strings.Count(s, ":") == 1
}

// routeSpec returns the route the command line describes.
func (o cliOptions) routeSpec() RouteSpec {
	r := o.limits
	r.LocalPort, r.RemoteHost, r.RemotePort = o.listenPort, o.remoteHost, o.remotePort
	r.LocalPortEnd, r.RemotePortEnd = o.listenPortEnd, o.remotePortEnd
	if r.Proto != "udp" || o.connectSet {
		r.Connect = o.connectTimeout
	}
	return r
}

// setLimit sets one of the route options given as a flag.
func (o *cliOptions) setLimit(name, value string) error {
	if name != "bind" {
		return o.limits.setOption(name, value)
	}
	addr, err := netip.ParseAddr(strings.Trim(value, "[]"))
	if err != nil || addr.Zone() != "" {
		return fmt.Errorf("invalid -bind %q: not an IP address", value)
	}
	o.limits.BindAddr = addr.String()
	return nil
}

// errHelp is returned by parseArgs when the user asks for help.
var errHelp = errors.New("help requested")

// isOption reports whether arg is an option rather than a positional
// argument. "-5" is taken as a (bad) port, so it gets the port's error.
func isOption(arg string) bool {
	if len(arg) < 2 || arg[0] != '-' {
		return false
	}
	_, err := strconv.Atoi(arg)
	return err != nil
}

// parsePort parses a TCP port, 1-65535, written in decimal digits only.
func parsePort(what, s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("invalid %s \"\": empty", what)
	}
	n, err := strconv.Atoi(s)
	if err != nil || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("invalid %s %q: not a number", what, s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid %s %q: must be 1-65535", what, s)
	}
	return n, nil
}

// parseHost checks the form of a remote host, an IP literal (an IPv6 one
// may be in brackets) or a DNS name, without resolving it, and returns it
// without brackets.
func parseHost(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("invalid remote host \"\": empty")
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner := s[1 : len(s)-1]
		if ip := net.ParseIP(inner); ip != nil && strings.Contains(inner, ":") {
			return inner, nil
		}
		return "", fmt.Errorf("invalid remote host %q: not an IPv6 address", s)
	}
	if net.ParseIP(s) != nil {
		return s, nil
	}
	if err := checkHostName(s); err != nil {
		return "", fmt.Errorf("invalid remote host %q: %v", s, err)
	}
	return s, nil
}

// checkHostName checks the form of a DNS host name: dot-separated labels of
// letters, digits, '-' and '_', each 1-63 characters, 253 in all.
func checkHostName(s string) error {
	name := strings.TrimSuffix(s, ".")
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("a host name has 1 to 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("empty or too long label in the name")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("a label may not start or end with '-'")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("character %q is not allowed in a host name", r)
			}
		}
	}
	return nil
}
