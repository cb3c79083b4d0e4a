package main

// Port ranges: a route may listen on a range of local ports, "8000-8099",
// as one route (one number, one line). Its remote port is then one port
// that every local port goes to, or a range of the same length: the first
// local port goes to the first remote port, the second to the second, and
// so on (the ports of also= and backup= shift the same way).
//
//	route 8000-8099 10.0.0.5 9000-9099
//	route 127.0.0.1:5000-5009 db 5432

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxRangePorts bounds the ports of a range.
const maxRangePorts = 10000

// parsePortRange parses PORT or FIRST-LAST; last is 0 for a single port.
func parsePortRange(what, s string) (first, last int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange || a == "" { // "-5" is a (bad) port, not a range
		first, err = parsePort(what, s)
		return first, 0, err
	}
	if first, err = parsePort(what, a); err != nil {
		return 0, 0, fmt.Errorf("invalid %s range %q: %v", what, s, err)
	}
	if last, err = parsePort(what, b); err != nil {
		return 0, 0, fmt.Errorf("invalid %s range %q: %v", what, s, err)
	}
	if last <= first {
		return 0, 0, fmt.Errorf("invalid %s range %q: want FIRST-LAST with FIRST below LAST", what, s)
	}
	if last-first+1 > maxRangePorts {
		return 0, 0, fmt.Errorf("invalid %s range %q: %d ports, at most %d", what, s, last-first+1, maxRangePorts)
	}
	return first, last, nil
}

// portRange writes FIRST or FIRST-LAST.
func portRange(first, last int) string {
	if last == 0 {
		return strconv.Itoa(first)
	}
	return strconv.Itoa(first) + "-" + strconv.Itoa(last)
}

// checkRanges refuses a remote range that does not match the local one.
func (r RouteSpec) checkRanges() error {
	if r.RemotePortEnd == 0 {
		return nil
	}
	local, remote := r.ports(), r.RemotePortEnd-r.RemotePort+1
	switch {
	case r.LocalPortEnd == 0:
		return fmt.Errorf("remote port range %s needs a local range of %d ports", portRange(r.RemotePort, r.RemotePortEnd), remote)
	case local != remote:
		return fmt.Errorf("remote port range %s has %d ports, local range %s has %d: want as many, or one remote port",
			portRange(r.RemotePort, r.RemotePortEnd), remote, portRange(r.LocalPort, r.LocalPortEnd), local)
	}
	for _, a := range append(splitBackends(r.Also), splitBackends(r.Backup)...) {
		if p := backendPort(a); p+local-1 > 65535 {
			return fmt.Errorf("backend %s: its ports for the %d local ports would pass 65535", a, local)
		}
	}
	return nil
}

// ports is how many local ports the route listens on.
func (r RouteSpec) ports() int {
	if r.LocalPortEnd == 0 {
		return 1
	}
	return r.LocalPortEnd - r.LocalPort + 1
}

// lastPort is the route's last local port.
func (r RouteSpec) lastPort() int { return r.LocalPort + r.ports() - 1 }

// hasPort reports whether the route listens on port.
func (r RouteSpec) hasPort(port int) bool { return port >= r.LocalPort && port <= r.lastPort() }

// overlaps reports whether two routes of one protocol listen on a port in
// common on a common address (a route on every interface has them all).
func (r RouteSpec) overlaps(o RouteSpec) bool {
	if r.Proto != o.Proto {
		return false // a TCP and a UDP route may share a port
	}
	sameAddr := r.BindAddr == "" || o.BindAddr == "" || r.BindAddr == o.BindAddr
	return sameAddr && r.LocalPort <= o.lastPort() && o.LocalPort <= r.lastPort()
}

// firstShared returns the first port two overlapping routes share.
func (r RouteSpec) firstShared(o RouteSpec) int { return max(r.LocalPort, o.LocalPort) }

// backendPort returns the port of HOST:PORT.
func backendPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

// compressPorts writes ports as a list of single ports and ranges:
// "8005, 8007-8009".
func compressPorts(ports []int) string {
	ports = slices.Clone(ports)
	slices.Sort(ports)
	var parts []string
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ports[i]))
		} else {
			parts = append(parts, portRange(ports[i], ports[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
