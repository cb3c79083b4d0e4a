package main

// A route switched off, not deleted: disabled=1 in its text form. It keeps
// its line, its options and its port in the configuration (conflicts are
// checked as for any route), and the service listens on nothing for it.
// Switching a running route off drains it as "backend disable" drains a
// backend: its listening sockets close at once, so the port is free, and
// its open connections may finish for disabledDrain; those left then are
// cut. A UDP route's sessions end at once: their answers go out by the
// route's socket. Switching it on starts it again, under the same route
// number for the relay, so its counters go on.

import "fmt"

// disabledDrain is how long the open connections of a route switched off
// may still finish: the service's drain time, as on a stop (routes have no
// drain time of their own).
const disabledDrain = DefaultDrainTimeout

// The states of a route, as status -json gives them (RouteReport.State).
const (
	stateListening    = "listening"
	stateNotListening = "not listening"
	stateDisabled     = "disabled"
)

// routeState is the state of route spec whose relay numbers are rs.
func routeState(spec RouteSpec, rs RouteStatus) string {
	switch {
	case spec.Disabled:
		return stateDisabled
	case rs.Listening:
		return stateListening
	}
	return stateNotListening
}

// enabledRoutes returns the routes of cfg that run, by their local side:
// every route but those switched off.
func enabledRoutes(cfg *Config) map[string]RouteSpec {
	want := make(map[string]RouteSpec, len(cfg.Routes))
	for _, r := range cfg.Routes {
		if !r.Disabled {
			want[r.key()] = r
		}
	}
	return want
}

// disabledRoutes returns the local sides of cfg's routes switched off.
func disabledRoutes(cfg *Config) map[string]bool {
	off := make(map[string]bool)
	for _, r := range cfg.Routes {
		if r.Disabled {
			off[r.key()] = true
		}
	}
	return off
}

// retireRoute stops the route running under local from accepting, at once.
// A route switched off (disabled) gives its connections disabledDrain to
// finish; a route removed or restarted lets them run until they end, as a
// reload always has. s.mu is held.
func (s *service) retireRoute(local string, disabled bool) {
	if disabled {
		s.relay.RetireWithin(s.ids[local], disabledDrain)
		return
	}
	s.relay.Retire(s.ids[local])
}

// drainNote says what happens to a disabled route's open connections, for
// route disable: "" when it has none.
func drainNote(open int64) string {
	if open == 0 {
		return ""
	}
	return "; " + plural(int(open), "open connection") + " may finish within " + disabledDrain.String()
}

// switchRoute switches the route that find picks off (disabled) or on,
// under the configuration's lock (editConfig), and returns its number and
// its new spec. A route already so is an *editError of code exitOK whose
// error is an unchangedError: nothing is saved.
func switchRoute(m serviceManager, find func(*Config) (int, error), disabled bool) (n int, r RouteSpec, err error) {
	err = editConfig(m, func(cfg *Config) (err error) {
		if n, err = find(cfg); err != nil {
			return err
		}
		r = cfg.Routes[n]
		if r.Disabled == disabled {
			return &editError{exitOK, unchangedError(fmt.Sprintf("route %d is already %s", n, switchedWord(disabled)))}
		}
		r.Disabled = disabled
		cfg.Routes[n] = r
		return nil
	})
	return n, r, err
}

// switchedWord is "disabled" or "enabled".
func switchedWord(disabled bool) string {
	if disabled {
		return stateDisabled
	}
	return "enabled"
}

// routeBySelector finds a route as route delete names it (Config.findRoute);
// a selector that names none is refused (exitUsage).
func routeBySelector(sel string) func(*Config) (int, error) {
	return func(cfg *Config) (int, error) {
		n, err := cfg.findRoute(sel)
		if err != nil {
			return 0, refuse(err)
		}
		return n, nil
	}
}
