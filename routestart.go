package main

// The one path a route takes from its text form to running, for the
// service (service.go) and the command-line relay (main.go) alike: each
// reports the outcome in its own words.

import (
	"context"
	"errors"
	"fmt"
)

// resolveBackends applies the rule that a route runs while one of its
// backends resolves (the others get their chance with every connection):
// it reports each backend whose name does not resolve (fatal: none does),
// and returns the error that keeps the route from starting, or nil.
func (r RouteSpec) resolveBackends(ctx context.Context, report func(bad hostError, fatal bool)) error {
	bad := r.unresolvable(ctx)
	if len(bad) == len(r.backendAddrs()) {
		report(bad[0], true)
		return fmt.Errorf("cannot resolve %s: %v", bad[0].host, bad[0].err)
	}
	for _, b := range bad {
		report(b, false)
	}
	return nil
}

// startOn starts rt as route id of relay. A range that could listen on
// some of its ports runs on them: partial names the others, and running
// says so. Otherwise err is why it did not start (partial: the range's
// ports, none of which could be listened on).
func startOn(relay *Relay, id int, rt Route) (running bool, partial *ListenError, err error) {
	err = relay.Start(id, rt)
	if errors.As(err, &partial) {
		if relay.Addr(id) != nil {
			return true, partial, nil
		}
		return false, partial, err
	}
	return err == nil, nil, err
}
