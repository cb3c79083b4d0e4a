package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// service runs the configured routes, as RelayTCPsvc: the relay, the daily
// connection log, the data logs when Debug is on, and the events of the
// service's life. The OS edges (service_windows.go, service_other.go) drive
// it; it does not know which one does.
type service struct {
	log     serviceLog
	relay   *Relay
	connLog *connLog
	// lines queues the lines of connLog, so that logging never slows the
	// relay; replaced when the log directory changes, while events come.
	lines atomic.Pointer[lineQueue]

	logDir    string
	debug     bool
	retention int    // LogRetentionDays of the running pruner
	stopPrune func() // stops the log pruner
	// mu makes apply, the retries of waiting routes and shutdown take
	// turns: they change the maps below.
	mu     sync.Mutex
	routes map[string]RouteSpec // the running routes, by their local side (RouteSpec.Local)
	ids    map[string]int       // the relay's route number for each local side
	// waiting holds the routes that could not start (a name that does not
	// resolve yet, a port that is taken), and why: they are tried again
	// every retryEvery until they start or the configuration drops them.
	waiting    map[string]waitingRoute
	partial    map[string]*ListenError // running ranges that miss some ports, retried likewise
	nextID     int                     // the relay's number for the next new local side
	retryEvery time.Duration
	stopRetry  func()
	config     *Config // the configuration applied last
	// view is what the events, the status and the control channel read of
	// the maps above, without the lock: replaced as a whole (publish).
	view atomic.Pointer[serviceView]

	// lookups bounds the service's name lookups: done once it stops.
	lookups     context.Context
	stopLookups context.CancelFunc

	started time.Time
	// stopAsked is closed by the control channel's "stop" request
	// (requestStop); the OS edge that runs the service then stops it.
	stopAsked chan struct{}
	stopOnce  sync.Once
	reloads   atomic.Int64   // configurations applied
	control   *controlServer // nil until startControl, or if it failed
	metrics   *metricsServer // nil while off
}

// waitingRoute is a route that could not start, and why.
type waitingRoute struct {
	spec RouteSpec
	why  string
}

// serviceView is a snapshot of the service's routes for the goroutines
// that report on them.
type serviceView struct {
	config  *Config
	ids     map[string]int // the relay's route number for each local side
	numbers map[int]int    // the configuration's route number for each relay number
	why     map[string]string
}

// errNoRoutes is returned by startService when there is nothing to relay.
var errNoRoutes = errors.New("no routes to relay")

// routeRetryInterval is how often the service tries again the routes that
// could not start.
const routeRetryInterval = 30 * time.Second

// startService starts every route of cfg and reports each through log (event
// 101). A route that cannot start is reported, and tried again every
// routeRetryInterval (reported again when it starts). It fails, after
// reporting it (event 100), when cfg has no routes or none could start.
// Its control channel (at control: controlPath, or the pipe's name) is open
// before it reports that it started, so a status command right after the
// start finds it.
func startService(cfg *Config, log serviceLog, control string) (*service, error) {
	return newService(cfg, log, routeRetryInterval, control)
}

// newService is startService with the retry interval of routes that could
// not start; control "" opens no control channel.
func newService(cfg *Config, log serviceLog, retryEvery time.Duration, control string) (*service, error) {
	if len(cfg.Routes) == 0 {
		log.Error(eventService, msgNoRoutes)
		return nil, errNoRoutes
	}
	s := &service{log: log, relay: &Relay{}, routes: make(map[string]RouteSpec), ids: make(map[string]int),
		waiting: make(map[string]waitingRoute), partial: make(map[string]*ListenError), retryEvery: retryEvery,
		started: time.Now(), config: cfg, stopAsked: make(chan struct{})}
	s.lookups, s.stopLookups = context.WithCancel(context.Background())
	s.relay.SetMaxConns(cfg.MaxConn)
	s.relay.SetClientMaxConns(cfg.ClientMaxConn)
	s.openLogs(cfg)
	s.relay.Events = s.event
	for _, r := range cfg.Routes {
		if r.Disabled {
			continue
		}
		if why := s.startRoute(r, false); why != "" {
			s.waiting[r.key()] = waitingRoute{r, why}
		}
	}
	s.publish()
	if len(s.routes) == 0 && len(s.waiting) > 0 { // routes all disabled run nothing, and that is no failure
		s.stopLookups()
		s.closeLogs()
		err := errors.New("no route could start")
		log.Error(eventService, fmt.Sprintf(msgStartError, err))
		return nil, err
	}
	s.startRetries()
	s.setMetrics(cfg.MetricsAddr)
	if control != "" {
		s.startControl(control)
	}
	log.Info(eventService, msgStarted)
	return s, nil
}

// publish makes the routes as they are now what the events, the status and
// the control channel see. s.mu is held (or not yet needed).
func (s *service) publish() {
	v := &serviceView{config: s.config, ids: make(map[string]int, len(s.ids)),
		numbers: make(map[int]int, len(s.config.Routes)), why: make(map[string]string, len(s.waiting))}
	for local, id := range s.ids {
		v.ids[local] = id
	}
	for n, r := range s.config.Routes {
		if id, ok := s.ids[r.key()]; ok {
			v.numbers[id] = n
		}
	}
	for local, w := range s.waiting {
		v.why[local] = w.why
	}
	for local, p := range s.partial {
		v.why[local] = "not on " + p.Ports()
	}
	for local := range disabledRoutes(s.config) {
		v.why[local] = stateDisabled
	}
	s.view.Store(v)
}

// startRetries tries the waiting routes again every retryEvery, until
// stopRetry.
func (s *service) startRetries() {
	stop, done := make(chan struct{}), make(chan struct{})
	s.stopRetry = func() {
		close(stop)
		<-done
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(s.retryEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			s.mu.Lock()
			for local, w := range s.waiting {
				if s.lookups.Err() != nil {
					break // stopping
				}
				if s.startRoute(w.spec, true) == "" {
					delete(s.waiting, local)
				}
			}
			s.retryPorts()
			s.publish()
			s.mu.Unlock()
		}
	}()
}

// event logs a relay event in the connection log, under the route's
// number in the configuration; a backend going down or up is an event 102
// too. It runs in the relay's goroutines and event loops.
func (s *service) event(e Event) {
	if v := s.view.Load(); v != nil {
		if n, ok := v.numbers[e.Route]; ok {
			e.Route = n
		}
	}
	s.lines.Load().Print(e.String())
	// The Event Log (or the journal) may be slow: an event loop must not
	// wait for it. These events are rare.
	switch e.Kind {
	case BackendDown:
		go s.log.Warning(eventBackend, e.Message())
	case BackendUp, BackendDisabled, BackendEnabled:
		go s.log.Info(eventBackend, e.Message())
	case TLSWarning: // a certificate that did not reload, backendtls=noverify: tlsroute.go
		go s.log.Warning(eventRoute, e.Message())
	}
}

// openLogs creates the log directory and starts the connection log, and
// the guard that keeps the directory usable for it and the data logs.
func (s *service) openLogs(cfg *Config) {
	s.logDir, s.debug = cfg.LogDir, cfg.Debug
	if s.logDir == "" {
		s.logDir = defaultLogDir()
	}
	s.connLog = &connLog{dir: s.logDir}
	s.connLog.guard = openLogDir(s.logDir, s.log, s.connLog)
	s.relay.names.guard.Store(s.connLog.guard)
	s.connLog.guard.start()
	s.lines.Store(newLineQueue(s.connLog, newline))
	s.startPruner(cfg.LogRetentionDays)
}

func (s *service) closeLogs() {
	s.stopPrune()
	s.lines.Load().Close()
	s.connLog.guard.stop()
	s.connLog.Close()
}

// startPruner deletes logs older than days in the log directory now and
// every hour after, until stopPrune; days 0 keeps everything.
func (s *service) startPruner(days int) {
	s.retention = days
	if days <= 0 {
		s.stopPrune = func() {}
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	s.stopPrune = func() {
		close(stop)
		<-done
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			if _, err := pruneLogs(s.logDir, days, time.Now()); err != nil {
				s.log.Warning(eventService, fmt.Sprintf(msgLogDir, s.logDir, err))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// pruneLogs deletes the connection logs (CO*.LOG) and data logs (RL*.LOG)
// in dir last written more than days days before now. It returns how many
// it deleted and the first error.
func pruneLogs(dir string, days int, now time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("prune logs: %w", err)
	}
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	removed := 0
	var firstErr error
	for _, e := range entries {
		name := strings.ToUpper(e.Name())
		if e.IsDir() || !strings.HasSuffix(name, ".LOG") || !(strings.HasPrefix(name, "CO") || strings.HasPrefix(name, "RL")) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("prune logs: %w", err)
			}
			continue
		}
		removed++
	}
	return removed, firstErr
}

// startRoute starts one route, reporting the outcome as event 101; a
// retry (quiet) reports only a success. It returns why the route could not
// start, or "".
func (s *service) startRoute(r RouteSpec, quiet bool) (why string) {
	log := s.log
	if quiet {
		log = errorsDropped{s.log}
	}
	rt, bad := s.resolvedRoute(r, log)
	if bad != "" {
		return bad
	}
	remote := rt.describe()
	id, ok := s.ids[r.key()]
	if !ok {
		id = s.nextID
		s.nextID++
		s.ids[r.key()] = id
	}
	running, partial, err := startOn(s.relay, id, rt)
	switch {
	case running && partial != nil:
		// A range that runs on some of its ports: the others are named,
		// and tried again with the route's retries.
		s.partial[r.key()] = partial
		log.Error(eventRoute, fmt.Sprintf(msgNotBoundPorts, partial.Ports(), remote))
	case partial != nil:
		log.Error(eventRoute, fmt.Sprintf(msgNotBoundPorts, partial.Ports(), remote))
		return "could not listen on " + partial.Ports()
	case err != nil && isResourceError(err):
		log.Error(eventRoute, fmt.Sprintf(msgNoResources, remote, err))
		return err.Error()
	case err != nil:
		log.Error(eventRoute, fmt.Sprintf(msgNotBound, r.localPorts(), remote, bindReason(err)))
		return bindReason(err)
	}
	s.routes[r.key()] = r
	s.log.Info(eventRoute, fmt.Sprintf(msgReady, r.localPorts(), remote))
	return ""
}

// retryPorts tries again the ports of running ranges that could not be
// listened on; a range that listens on all its ports at last is reported.
func (s *service) retryPorts() {
	for local, partial := range s.partial {
		r := s.routes[local]
		rt, why := s.resolvedRoute(r, errorsDropped{s.log})
		if why != "" {
			continue
		}
		_, err := s.relay.Update(s.ids[local], rt)
		if errors.As(err, &partial) {
			s.partial[local] = partial
			continue
		}
		delete(s.partial, local)
		s.log.Info(eventRoute, fmt.Sprintf(msgReady, r.localPorts(), rt.describe()))
	}
}

// resolvedRoute returns the relay route for r, with the service's data
// log setting. A route runs while one of its backends resolves: a name that
// does not is reported (event 101, through log), as an error when it was
// the only one (then why says so), else as a warning.
func (s *service) resolvedRoute(r RouteSpec, log serviceLog) (rt Route, why string) {
	if err := r.resolveBackends(s.lookups, func(b hostError, fatal bool) {
		if fatal {
			log.Error(eventRoute, fmt.Sprintf(msgNoResolve, b.host, b.err))
		} else {
			log.Warning(eventRoute, fmt.Sprintf(msgNoResolveBackend, b.host, r.localPorts(), b.err))
		}
	}); err != nil {
		return Route{}, err.Error()
	}
	rt = r.Route()
	rt.SNIShared = s.config != nil && sharesPortBySNI(s.config.Routes, r) // sniroute.go
	if s.debug {
		rt.DataLogDir = s.logDir
	}
	return rt, ""
}

// apply changes the running routes to those of cfg without a restart:
// routes that are new start, routes that are gone stop accepting and let
// their connections finish, changed routes restart (their connections go on
// with the old settings until they end), and unchanged routes and their
// connections are not touched. Routes are matched by their local side
// (address and port). A changed route whose listener can stay is changed in
// place (Relay.Update: its connections and its backends' health are
// kept). A change of LogDir or Debug restarts every route. A route switched
// off (disabled=1) stops accepting and its connections drain
// (routedisable.go); one switched on starts.
func (s *service) apply(cfg *Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.config = cfg
	s.reloads.Add(1)
	logDir := cmp.Or(cfg.LogDir, defaultLogDir())
	settingsChanged := logDir != s.logDir || cfg.Debug != s.debug
	want, off := enabledRoutes(cfg), disabledRoutes(cfg)
	s.matchRanges(cfg, want)
	var stopped, started, changed, failed, disabled []string
	// Routes that go first, so that the ports they free are there for the
	// routes changed in place (a range that grows into them).
	for local, old := range s.routes {
		_, kept := want[local]
		if kept && !settingsChanged {
			continue
		}
		s.retireRoute(local, off[local])
		delete(s.routes, local)
		delete(s.partial, local)
		switch {
		case off[local]:
			disabled = append(disabled, old.String())
		case !kept:
			stopped = append(stopped, old.String())
		}
	}
	for local, old := range s.routes {
		r := want[local]
		if r == old {
			continue
		}
		if s.updateRoute(local, r) {
			changed = append(changed, r.String())
			continue
		}
		s.relay.Retire(s.ids[local])
		delete(s.routes, local)
		delete(s.partial, local)
	}
	s.restartSNIChanges(cfg) // sniservice.go
	s.relay.SetMaxConns(cfg.MaxConn)
	s.relay.SetClientMaxConns(cfg.ClientMaxConn)
	s.connLog.guard.check() // a reload also repairs a removed log directory
	if settingsChanged {
		s.closeLogs()
		s.openLogs(cfg)
	} else if cfg.LogRetentionDays != s.retention {
		s.stopPrune()
		s.startPruner(cfg.LogRetentionDays)
	}
	waiting := make(map[string]waitingRoute)
	for _, r := range cfg.Routes {
		if _, running := s.routes[r.key()]; running || r.Disabled {
			continue
		}
		if why := s.startRoute(r, false); why == "" {
			started = append(started, r.String())
		} else {
			failed = append(failed, r.String())
			waiting[r.key()] = waitingRoute{r, why}
		}
	}
	s.waiting = waiting
	s.setMetrics(cfg.MetricsAddr)
	s.publish()
	slices.Sort(stopped)
	slices.Sort(changed)
	slices.Sort(disabled)
	summary := fmt.Sprintf("%d routes running; started %s; stopped %s", len(s.routes), listOrNone(started), listOrNone(stopped))
	if len(changed) > 0 {
		summary += "; changed in place " + listOrNone(changed)
	}
	if len(disabled) > 0 {
		summary += "; disabled " + listOrNone(disabled)
	}
	if len(failed) > 0 {
		summary += "; could not start (tried again every " + s.retryEvery.String() + ") " + listOrNone(failed)
	}
	s.log.Info(eventService, fmt.Sprintf(msgReloaded, summary))
}

// matchRanges pairs a running range with a route of cfg whose local side
// differs but that shares ports with it on the same address (a range grown
// or shrunk): the running route is filed under the new local side, so that
// apply changes it in place and only the ports that changed start or stop.
func (s *service) matchRanges(cfg *Config, want map[string]RouteSpec) {
	for _, r := range cfg.Routes {
		if _, ok := s.routes[r.key()]; ok || r.Disabled {
			continue
		}
		for local, old := range s.routes {
			if _, kept := want[local]; kept || old.BindAddr != r.BindAddr || !old.overlaps(r) {
				continue
			}
			s.routes[r.key()], s.ids[r.key()] = old, s.ids[local]
			if p, ok := s.partial[local]; ok {
				s.partial[r.key()] = p
			}
			delete(s.routes, local)
			delete(s.ids, local)
			delete(s.partial, local)
			break
		}
	}
}

// updateRoute gives the route running under local its changed options r
// without closing its listening sockets (Relay.Update): open connections
// and the backends it keeps are not touched; a range opens and closes only
// the ports that changed. It reports false when the route must restart.
func (s *service) updateRoute(local string, r RouteSpec) bool {
	rt, why := s.resolvedRoute(r, s.log)
	if why != "" {
		return false
	}
	ok, err := s.relay.Update(s.ids[local], rt)
	if !ok {
		return false
	}
	s.routes[local] = r
	delete(s.partial, local)
	var partial *ListenError
	if errors.As(err, &partial) {
		s.partial[local] = partial
		s.log.Error(eventRoute, fmt.Sprintf(msgNotBoundPorts, partial.Ports(), rt.describe()))
	}
	s.log.Info(eventRoute, fmt.Sprintf(msgReady, r.localPorts(), rt.describe()))
	return true
}

// listOrNone writes items for the reload summary, "none" for none.
func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// shutdown stops every route, letting connections finish until ctx is done,
// and reports the stop.
func (s *service) shutdown(ctx context.Context) {
	s.stopLookups() // a retry waiting on a name gives up at once
	s.stopRetry()
	if s.control != nil {
		s.control.close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics.close()
	s.relay.Shutdown(ctx)
	s.closeLogs()
	s.log.Info(eventService, msgStopped)
}

// errorsDropped is a serviceLog that passes on only Information events: a
// retry reports its success, not the failure reported already.
type errorsDropped struct{ serviceLog }

func (errorsDropped) Warning(uint32, string) error { return nil }
func (errorsDropped) Error(uint32, string) error   { return nil }
