package main

import (
	"fmt"
	"slices"
	"strings"
)

// The configuration's rules for ports shared by sni= (sniroute.go runs
// them): which routes may share a port, and how a route command names one
// of them.

// sniShares reports whether routes a and b may share their local port:
// the same single port and address, TCP, at least one with sni=, and no
// server name in both. handled is false when sni= has no say (the usual
// rule applies: one route per port).
func sniShares(a, b RouteSpec) (handled bool, err error) {
	if a.SNI == "" && b.SNI == "" || a.Proto != "" || b.Proto != "" ||
		a.BindAddr != b.BindAddr || a.LocalPort != b.LocalPort || a.LocalPortEnd != 0 || b.LocalPortEnd != 0 {
		return false, nil
	}
	if a.SNI == "" || b.SNI == "" {
		return true, nil // one of them is the default
	}
	for _, n := range strings.Split(b.SNI, ",") {
		if slices.Contains(strings.Split(a.SNI, ","), n) {
			return true, fmt.Errorf("server name %s of port %s is routed twice (sni=)", n, b.Local())
		}
	}
	return true, nil
}

// sharesPortBySNI reports whether route r is on a port that another route
// of routes shares by sni= (r is then its default, or one of its names).
func sharesPortBySNI(routes []RouteSpec, r RouteSpec) bool {
	if r.SNI != "" {
		return true
	}
	for _, o := range routes {
		if o != r && !o.Disabled {
			if handled, _ := sniShares(o, r); handled {
				return true
			}
		}
	}
	return false
}

// sniKey is what tells apart the routes that share a port by sni=, for
// RouteSpec.key.
func (r RouteSpec) sniKey() string {
	if r.SNI == "" {
		return ""
	}
	return " sni=" + r.SNI
}

// sniAmbiguous says that a local side given names route i and others that
// share its port by sni=: only a route's number tells them apart. i < 0:
// nothing.
func (c *Config) sniAmbiguous(given string, i int) error {
	if i < 0 {
		return nil
	}
	var found []string
	for j, r := range c.Routes {
		if handled, _ := sniShares(c.Routes[i], r); j == i || handled {
			what := "without sni="
			if r.SNI != "" {
				what = "sni=" + r.SNI
			}
			found = append(found, fmt.Sprintf("route %d (%s)", j, what))
		}
	}
	if len(found) > 1 {
		return fmt.Errorf("%s names several routes that share the port by sni=: %s; give the route's number", given, strings.Join(found, ", "))
	}
	return nil
}
