package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
)

// service runs the configured routes, as RelayTCPsvc: the relay, the daily
// connection log, the data logs when Debug is on, and the events of the
// service's life. The OS edges (service_windows.go, service_other.go) drive
// it; it does not know which one does.
type service struct {
	log     serviceLog
	relay   *Relay
	connLog *connLog
	lines   *lineQueue // to connLog, so that logging never slows the relay

	logDir string
	debug  bool
	routes map[int]RouteSpec // the running routes, by local port
}

// errNoRoutes is returned by startService when there is nothing to relay.
var errNoRoutes = errors.New("no routes to relay")

// startService starts every route of cfg and reports each through log (event
// 101). A route that cannot start is reported and skipped. It fails, after
// reporting it (event 100), when cfg has no routes or none could start.
func startService(cfg *Config, log serviceLog) (*service, error) {
	if len(cfg.Routes) == 0 {
		log.Error(eventService, msgNoRoutes)
		return nil, errNoRoutes
	}
	s := &service{log: log, relay: &Relay{}, routes: make(map[int]RouteSpec)}
	s.openLogs(cfg)
	s.relay.Events = func(e Event) { s.lines.Print(e.String()) }
	for _, r := range cfg.Routes {
		s.startRoute(r)
	}
	if len(s.routes) == 0 {
		s.closeLogs()
		err := errors.New("no route could start")
		log.Error(eventService, fmt.Sprintf(msgStartError, err))
		return nil, err
	}
	log.Info(eventService, msgStarted)
	return s, nil
}

// openLogs creates the log directory and starts the connection log.
func (s *service) openLogs(cfg *Config) {
	s.logDir, s.debug = cfg.LogDir, cfg.Debug
	if s.logDir == "" {
		s.logDir = defaultLogDir()
	}
	s.connLog = &connLog{dir: s.logDir, onError: func(err error) {
		s.log.Warning(eventService, fmt.Sprintf(msgLogDir, s.logDir, err))
	}}
	if err := createLogDir(s.logDir); err != nil {
		// One event for the incident: the connection log reports again
		// only after it has worked once.
		s.connLog.onError(err)
		s.connLog.failing = true
	}
	s.lines = newLineQueue(s.connLog, newline)
}

func (s *service) closeLogs() {
	s.lines.Close()
	s.connLog.Close()
}

// startRoute starts one route, reporting the outcome as event 101.
func (s *service) startRoute(r RouteSpec) bool {
	remote := r.Route().RemoteAddr()
	if err := checkResolvable(r.RemoteHost); err != nil {
		s.log.Error(eventRoute, fmt.Sprintf(msgNoResolve, r.RemoteHost, err))
		return false
	}
	rt := r.Route()
	if s.debug {
		rt.DataLogDir = s.logDir
	}
	if err := s.relay.Start(r.LocalPort, rt); err != nil {
		if isResourceError(err) {
			s.log.Error(eventRoute, fmt.Sprintf(msgNoResources, remote, err))
		} else {
			s.log.Error(eventRoute, fmt.Sprintf(msgNotBound, r.LocalPort, remote, bindReason(err)))
		}
		return false
	}
	s.routes[r.LocalPort] = r
	s.log.Info(eventRoute, fmt.Sprintf(msgReady, r.LocalPort, remote))
	return true
}

// bindReason is the short reason a listen failed, for the event text.
func bindReason(err error) string {
	if isAddrInUse(err) {
		return "address already in use"
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

// isResourceError reports whether err is the system running out of
// something (descriptors, buffers, memory) rather than a refusal.
func isResourceError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// apply changes the running routes to those of cfg without a restart:
// routes that are new start, routes that are gone stop accepting and let
// their connections finish, changed routes restart (their connections go on
// with the old settings until they end), and unchanged routes and their
// connections are not touched. Routes are matched by local port. A change of
// LogDir or Debug restarts every route.
func (s *service) apply(cfg *Config) {
	logDir := cmp(cfg.LogDir, defaultLogDir())
	settingsChanged := logDir != s.logDir || cfg.Debug != s.debug
	want := make(map[int]RouteSpec, len(cfg.Routes))
	for _, r := range cfg.Routes {
		want[r.LocalPort] = r
	}
	var stopped, started, failed []string
	for port, old := range s.routes {
		if r, ok := want[port]; !ok || r != old || settingsChanged {
			s.relay.Retire(port)
			delete(s.routes, port)
			if !ok {
				stopped = append(stopped, old.String())
			}
		}
	}
	if settingsChanged {
		s.closeLogs()
		s.openLogs(cfg)
	}
	for _, r := range cfg.Routes {
		if _, running := s.routes[r.LocalPort]; running {
			continue
		}
		if s.startRoute(r) {
			started = append(started, r.String())
		} else {
			failed = append(failed, r.String())
		}
	}
	slices.Sort(stopped)
	summary := fmt.Sprintf("%d routes running; started %s; stopped %s", len(s.routes), list(started), list(stopped))
	if len(failed) > 0 {
		summary += "; could not start " + list(failed)
	}
	s.log.Info(eventService, fmt.Sprintf(msgReloaded, summary))
}

// cmp returns a, or b when a is empty.
func cmp(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func list(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// shutdown stops every route, letting connections finish until ctx is done,
// and reports the stop.
func (s *service) shutdown(ctx context.Context) {
	s.relay.Shutdown(ctx)
	s.closeLogs()
	s.log.Info(eventService, msgStopped)
}
