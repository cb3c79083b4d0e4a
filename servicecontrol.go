package main

// What the running service tells its control channel and its metrics
// listener: its live status, and backends taken out and put back by an
// administrator.

import (
	"cmp"
	"fmt"
	"time"
)

// startControl opens the service's control channel at path (controlPath).
// A service that cannot open it runs without it, and says so (event 100).
func (s *service) startControl(path string) {
	ln, err := listenControlChannel(path)
	if err != nil {
		s.log.Warning(eventService, fmt.Sprintf(msgNoControl, err))
		return
	}
	s.control = serveControl(ln, s)
}

// setMetrics starts, moves or stops the metrics listener to serve on addr
// ("" is off). A listener that cannot start is reported (event 100); the
// service goes on.
func (s *service) setMetrics(addr string) {
	if s.metrics != nil && s.metrics.addr == addr {
		return
	}
	s.metrics.close()
	s.metrics = nil
	if addr == "" {
		return
	}
	m, err := serveMetrics(addr, s.status)
	if err != nil {
		s.log.Warning(eventService, fmt.Sprintf(msgNoMetrics, addr, err))
		return
	}
	s.metrics = m
}

// status is the service's live status.
func (s *service) status() *ServiceStatus {
	v := s.view.Load()
	live := s.relay.Status()
	st := newServiceStatus(serviceName, "Running", s.started)
	st.Reloads = s.reloads.Load()
	for n, r := range v.config.Routes {
		var rs RouteStatus
		if id, ok := v.ids[r.key()]; ok {
			rs = live[id]
		}
		st.Routes = append(st.Routes, routeReport(n, r, rs, v.why[r.key()]))
	}
	// As openLogs chose it, in the service's own environment.
	st.LogDir = cmp.Or(v.config.LogDir, defaultLogDir())
	st.ConnectionLog = connLogPath(st.LogDir, time.Now())
	return st
}

// handleControl answers one request of the control channel.
func (s *service) handleControl(req controlRequest) controlAnswer {
	switch req.Cmd {
	case "status":
		return controlAnswer{OK: true, Status: s.status()}
	case "backend":
		msg, err := s.setBackend(req)
		if err != nil {
			return controlAnswer{Error: err.Error()}
		}
		return controlAnswer{OK: true, Message: msg}
	case "stop":
		return controlAnswer{OK: true, Message: fmt.Sprintf("Stopping: open connections may finish for %v", DefaultDrainTimeout),
			afterSent: s.requestStop}
	}
	return controlAnswer{Error: fmt.Sprintf("unknown command %q (commands: status, backend, stop)", req.Cmd)}
}

// requestStop asks the OS edge that runs the service (runService, the
// SCM's Execute) to stop it as on SIGTERM or the SCM's Stop: that is how
// relaytcp stop reaches a service started by hand, without systemd. The
// control channel calls it once the answer is out (afterSent), since the
// stop closes the connection.
func (s *service) requestStop() {
	s.stopOnce.Do(func() {
		s.log.Info(eventService, msgStopAsked)
		close(s.stopAsked)
	})
}

// stopRequests is closed once a control client has asked the service to
// stop (requestStop).
func (s *service) stopRequests() <-chan struct{} { return s.stopAsked }

// setBackend disables or enables a backend of a running route: a disabled
// backend gets no new connections, and its open ones finish. The state
// lasts until it is enabled or the service restarts (a reload keeps it).
func (s *service) setBackend(req controlRequest) (string, error) {
	var disable bool
	switch req.Action {
	case "disable":
		disable = true
	case "enable":
	default:
		return "", fmt.Errorf("invalid backend action %q: want disable or enable", req.Action)
	}
	v := s.view.Load()
	n, err := v.config.findRoute(req.Route)
	if err != nil {
		return "", err
	}
	addr, err := parseBackend(req.Backend)
	if err != nil {
		return "", fmt.Errorf("invalid backend: %v", err)
	}
	local := v.config.Routes[n].key()
	id, ok := v.ids[local]
	if !ok || s.relay.Addr(id) == nil {
		return "", fmt.Errorf("route %d is not running (%s)", n, cmp.Or(v.why[local], "not started"))
	}
	open, enabled, err := s.relay.SetBackendDisabled(id, addr, disable)
	if err != nil {
		return "", fmt.Errorf("route %d: %w", n, err)
	}
	e := Event{Kind: BackendEnabled, Time: time.Now(), Route: id, Remote: addr}
	if disable {
		e.Kind, e.Open = BackendDisabled, open
	}
	s.event(e)
	e.Route = n
	msg := e.Message()
	if enabled == 0 {
		msg += fmt.Sprintf(" (no backend of route %d is enabled now: its new clients are refused)", n)
	}
	return msg, nil
}
