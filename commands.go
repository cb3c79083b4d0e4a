package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// More exit codes, for the service and administration commands.
const (
	exitConfig   = 5 // the configuration cannot be read, or is invalid
	exitBusy     = 6 // another command kept the configuration locked too long
	exitNoConfig = 7 // the configuration does not exist (no config file, no Parameters key)
)

// configExitCode is the exit code for a configuration that cannot be
// loaded: exitNoConfig when it does not exist, else exitConfig.
func configExitCode(err error) int {
	if isConfigMissing(err) {
		return exitNoConfig
	}
	return exitConfig
}

// missingHint follows the message of a configuration that does not exist:
// how to create it.
func missingHint(err error) string {
	if isConfigMissing(err) {
		return " (relaytcp route add creates it)"
	}
	return ""
}

// serviceName is the service's name, as in RelayTCP 1.0.
const serviceName = "RelayTCPsvc"

// statusNotInstalled is the service's status when there is no such
// service (RelayTCP 1.0 said "(invalid Service)", as systemctl does).
const statusNotInstalled = "Not installed"

// serviceManager is how the administration commands and the menu reach the
// installed service and its configuration: the SCM and the registry on
// Windows, systemctl and the config file elsewhere.
type serviceManager interface {
	// LoadConfig reads the configuration. One that does not exist comes
	// back empty, ready to be saved, with a *configMissingError
	// (isConfigMissing): a change that adds to it creates it, other
	// commands say that it does not exist.
	LoadConfig() (*Config, error)
	// LockConfig takes the lock that serializes changes of the
	// configuration across processes, waiting up to configLockWait.
	LockConfig() (unlock func(), err error)
	// SaveConfig writes the configuration last loaded, changed, and tells
	// a running service to apply it. It is called under LockConfig, after
	// LoadConfig: editConfig does all three.
	SaveConfig(*Config) error
	// ConfigLocation says where the configuration is, for messages.
	ConfigLocation() string
	// ControlPath is the running service's control channel (control.go).
	ControlPath() string
	// Status is the service's state in the manual's words: Stopped,
	// Running, Start pending, ... or statusNotInstalled.
	Status() string
	// Start and Stop return an unchangedError when the service already
	// runs, or does not.
	Start() error
	Stop() error
}

// unchangedError is what Start says of a running service and Stop of a
// stopped one: the command says it and succeeds, as systemctl does.
type unchangedError string

func (e unchangedError) Error() string { return string(e) }

// isSubcommand reports whether args name one of the service and
// administration commands rather than the command-line relay.
func isSubcommand(args []string) bool {
	if len(args) == 0 {
		return false
	}
	_, ok := findCommand(args[0])
	return ok
}

// runSubcommand runs a service or administration command.
func runSubcommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := args[0]
	cmd, _ := findCommand(name)
	configPath, rest, err := configOption(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp %s: %v\n%s\n", name, err, commandUsage(cmd))
		return exitUsage
	}
	if slices.ContainsFunc(rest, isHelpArg) {
		printCommandHelp(stdout, cmd)
		return exitOK
	}
	if name == "service" {
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "relaytcp service: unexpected argument %q\n%s\n", rest[0], commandUsage(cmd))
			return exitUsage
		}
		return runService(configPath, stderr)
	}
	switch name {
	case "install", "uninstall", "backup-config", "restore-config", "close-running":
		return runInstall(name, rest, stdout, stderr)
	case "firewall":
		return runFirewall(rest, stdout, stderr)
	}
	m, err := newServiceManager(configPath)
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp %s: %v\n", name, err)
		return exitRuntime
	}
	switch name {
	case "admin":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "relaytcp admin: unexpected argument %q\n%s\n", rest[0], commandUsage(cmd))
			return exitUsage
		}
		return runAdmin(m, stdin, stdout)
	case "route":
		return runRouteCommand(m, rest, stdout, stderr)
	case "backend":
		return runBackendCommand(m, rest, stdout, stderr)
	case "status":
		return runStatusCommand(m, rest, stdout, stderr)
	}
	if name == "start" && len(rest) == 1 && strings.TrimLeft(rest[0], "-") == "if-configured" {
		// For installers: start only a service that has something to do.
		cfg, err := m.LoadConfig()
		if err != nil && !isConfigMissing(err) { // none is no routes
			fmt.Fprintf(stderr, "relaytcp start: %v\n", err)
			return exitConfig
		}
		if len(cfg.Routes) == 0 {
			fmt.Fprintln(stdout, "No routes configured: the service was not started")
			return exitOK
		}
		rest = nil
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "relaytcp %s: unexpected argument %q\n%s\n", name, rest[0], commandUsage(cmd))
		return exitUsage
	}
	switch name {
	case "start", "stop":
		op := m.Start
		if name == "stop" {
			op = m.Stop
		}
		var unchanged unchangedError
		if err := op(); errors.As(err, &unchanged) {
			fmt.Fprintf(stdout, "relaytcp %s: %v\n", name, err)
		} else if err != nil {
			fmt.Fprintf(stderr, "relaytcp %s: %v\n", name, err)
			return exitRuntime
		}
		state := m.Status()
		if name == "stop" && strings.HasPrefix(state, statusNotInstalled) {
			state = "Stopped" // a service started by hand, with no unit to ask
		}
		fmt.Fprintf(stdout, "Service : %s\nStatus  : %s\n", serviceName, state)
		return exitOK
	}
	return exitOK
}

// runStatusCommand runs "status [-json]": the manual's Status and
// Configuration blocks, then what the running service is doing; with
// -json, all of it as one JSON document. A configuration that cannot be
// read while the service runs is a warning: the service goes on with the
// one it applied, and its live status is what status is for.
func runStatusCommand(m serviceManager, args []string, stdout, stderr io.Writer) int {
	cmd, _ := findCommand("status")
	asJSON := false
	for _, a := range args {
		if a != "-json" && a != "--json" {
			fmt.Fprintf(stderr, "relaytcp status: unexpected argument %q\n%s\n", a, commandUsage(cmd))
			return exitUsage
		}
		asJSON = true
	}
	cfg, cfgErr := m.LoadConfig()
	if isConfigMissing(cfgErr) && configNeedsService && m.Status() == statusNotInstalled {
		// Windows: no service, so no Parameters key; status says Not
		// installed, and route add would refuse to create the key.
		cfgErr = nil
	}
	live, liveErr := liveStatus(m)
	if cfgErr != nil && live == nil {
		fmt.Fprintf(stderr, "relaytcp status: %v%s\n", cfgErr, missingHint(cfgErr))
		return configExitCode(cfgErr)
	}
	if liveErr != nil && !errors.Is(liveErr, errNotRunning) {
		fmt.Fprintf(stderr, "relaytcp status: %v\n", liveErr)
		return exitRuntime
	}
	if cfgErr != nil {
		fmt.Fprintf(stderr, "relaytcp status: warning: %v; the running service goes on with the configuration it applied last\n", cfgErr)
		cfg, live.ConfigError = nil, cfgErr.Error()
	}
	if asJSON {
		if live == nil {
			live = stoppedStatus(m, cfg)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(live)
		return exitOK
	}
	printStatus(stdout, m, cfg, live, liveErr)
	return exitOK
}

// liveStatus asks the running service for its status; errNotRunning
// when nothing answers.
func liveStatus(m serviceManager) (*ServiceStatus, error) {
	ans, err := askService(m.ControlPath(), controlRequest{Cmd: "status"})
	if err != nil {
		return nil, err
	}
	if ans.Status == nil {
		return nil, errors.New("the service's answer has no status")
	}
	return ans.Status, nil
}

// stoppedStatus is the JSON status of a service that does not run: its
// configuration, nothing listening.
func stoppedStatus(m serviceManager, cfg *Config) *ServiceStatus {
	st := newServiceStatus(serviceName, m.Status(), time.Time{})
	for n, r := range cfg.Routes {
		st.Routes = append(st.Routes, routeReport(n, r, RouteStatus{}, "the service is not running"))
	}
	return st
}

// runBackendCommand runs "backend disable|enable ROUTE HOST:PORT" through
// the running service's control channel.
func runBackendCommand(m serviceManager, args []string, stdout, stderr io.Writer) int {
	cmd, _ := findCommand("backend")
	if len(args) != 3 || (args[0] != "disable" && args[0] != "enable") {
		fmt.Fprintf(stderr, "relaytcp backend: want disable or enable, a route and a backend\n%s\n", commandUsage(cmd))
		return exitUsage
	}
	ans, err := askService(m.ControlPath(), controlRequest{Cmd: "backend", Action: args[0], Route: args[1], Backend: args[2]})
	switch {
	case err == nil:
		fmt.Fprintln(stdout, ans.Message)
		return exitOK
	case ans.Error != "": // the service refused the request
		fmt.Fprintf(stderr, "relaytcp backend: %v\n", err)
		return exitUsage
	case errors.Is(err, errNotRunning):
		fmt.Fprintf(stderr, "relaytcp backend: %v (nothing answers on %s)\n", err, m.ControlPath())
		return exitRuntime
	}
	fmt.Fprintf(stderr, "relaytcp backend: %v\n", err)
	return exitRuntime
}

// editError is a change that editConfig refused, with the exit code that
// says why.
type editError struct {
	code int
	err  error
}

func (e *editError) Error() string { return e.err.Error() }
func (e *editError) Unwrap() error { return e.err }

// refuse wraps an error of an edit function: the change is not valid
// (exitUsage).
func refuse(err error) error { return &editError{exitUsage, err} }

// editConfig makes one change of the configuration: under the lock that
// serializes changes across processes, it loads the configuration as it is
// now, lets edit change it, and saves it. Nothing is saved when edit fails.
// A configuration that does not exist is empty: a change that adds to it
// creates it. The error is an *editError whose code is the exit code:
// exitBusy when the lock was not free in time, exitConfig when the
// configuration cannot be read, exitNoConfig when it does not exist and
// edit failed, edit's own (see refuse), exitRuntime when saving failed.
func editConfig(m serviceManager, edit func(*Config) error) error {
	unlock, err := m.LockConfig()
	if err != nil {
		code := exitRuntime
		var busy errConfigBusy
		if errors.As(err, &busy) {
			code = exitBusy
		}
		return &editError{code, err}
	}
	defer unlock()
	cfg, loadErr := m.LoadConfig()
	if loadErr != nil && !isConfigMissing(loadErr) {
		return &editError{exitConfig, loadErr}
	}
	if err := edit(cfg); err != nil {
		if loadErr != nil { // "no route 0" would hide the cause
			return &editError{exitNoConfig, fmt.Errorf("%w%s", loadErr, missingHint(loadErr))}
		}
		var ee *editError
		if errors.As(err, &ee) {
			return ee
		}
		return &editError{exitRuntime, err}
	}
	if err := m.SaveConfig(cfg); err != nil {
		return &editError{exitRuntime, err}
	}
	return nil
}

// configOption takes "-config PATH" out of args, wherever it stands, in
// any of its spellings (-config PATH, -config=PATH, --config PATH,
// --config=PATH), and returns the other arguments in their order. Without
// it the path is $RELAYTCP_CONFIG, else DefaultConfigPath. No other
// argument of a command starts with "-config": route fields are
// OPTION=VALUE, and a host or port never starts with a dash.
func configOption(args []string) (path string, rest []string, err error) {
	given := false
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-"), "=")
		if name != "config" || !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		if given {
			return "", nil, fmt.Errorf("-config given twice")
		}
		given = true
		if !hasValue {
			if i+1 >= len(args) || args[i+1] == "" {
				return "", nil, fmt.Errorf("-config needs a file name")
			}
			if i++; strings.HasPrefix(args[i], "-") {
				return "", nil, fmt.Errorf("-config needs a file name, not %q (write -config=%s for a file named so)", args[i], args[i])
			}
			value = args[i]
		}
		if value == "" {
			return "", nil, fmt.Errorf("-config needs a file name")
		}
		path = value
	}
	if path == "" {
		path = cmp.Or(os.Getenv("RELAYTCP_CONFIG"), DefaultConfigPath)
	}
	return path, rest, nil
}

// routeLine is the manual's line for route n, with the bind address, the
// other backends and the options when there are any, and "disabled" last
// for a route switched off:
//
//	Route 0 : From local port 80 to IP web1 port 8080, also web2:8080, backup web9:8080 (leastconn, check 2s)
//	Route 2 : From local port 8082 to IP 127.0.0.1 port 80 (maxconn=5, disabled)
func routeLine(n int, r RouteSpec) string {
	from := "local " + r.localPorts()
	if r.BindAddr != "" {
		from = fmt.Sprintf("local address %s %s", r.BindAddr, r.localPorts())
	}
	more, settings := r.backendSummary()
	line := fmt.Sprintf("Route %d : From %s to IP %s %s%s", n, from, r.RemoteHost, portWord(r.RemotePort, r.RemotePortEnd), more)
	var extra []string
	if settings != "" {
		extra = append(extra, settings)
	}
	if opts := append(r.limitOptions(), r.tlsOptions()...); len(opts) > 0 { // tlsOptions: tlsoptions.go
		extra = append(extra, strings.Join(opts, " "))
	}
	if r.Disabled {
		extra = append(extra, "disabled")
	}
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}

// portWord writes "port 155" or "ports 8000-8099".
func portWord(first, last int) string {
	if last == 0 {
		return fmt.Sprintf("port %d", first)
	}
	return "ports " + portRange(first, last)
}

// printStatus prints the manual's Status and Configuration blocks, then
// the live status of the running service (live), or why there is none
// (liveErr). cfg nil is a configuration that cannot be read: the block says
// why (live.ConfigError).
func printStatus(w io.Writer, m serviceManager, cfg *Config, live *ServiceStatus, liveErr error) {
	state := m.Status()
	if live != nil && !strings.HasPrefix(state, "Running") && !strings.HasSuffix(state, "pending") {
		state = "Running" // by hand, not under the SCM or systemd
	}
	fmt.Fprintf(w, "Status\nService : %s\nStatus  : %s\n", serviceName, state)
	if note := firewallStatus(state); note != "" { // Windows: the rule RelayTCP missing or disabled
		fmt.Fprintln(w, note)
	}
	fmt.Fprintln(w)
	if cfg != nil {
		printConfig(w, "Configuration", m, cfg, live)
	} else {
		fmt.Fprintf(w, "Configuration\nConfig  : %s\nError   : %s\n", m.ConfigLocation(), live.ConfigError)
	}
	fmt.Fprintln(w)
	switch {
	case live != nil:
		printLiveStatus(w, live)
	case errors.Is(liveErr, errNotRunning):
		// Which service was looked for: another -config is another one.
		fmt.Fprintf(w, "Live    : none, no service answers on %s (config %s)\n", m.ControlPath(), m.ConfigLocation())
	default:
		fmt.Fprintf(w, "Live    : none (%v)\n", liveErr)
	}
}

// printConfig prints the configuration block under a title: where it is
// kept, then its settings and routes. The log directory is the one the
// running service reports (live), with today's connection log, when there
// is one: the service may expand LogDir's %VARIABLES% differently.
func printConfig(w io.Writer, title string, m serviceManager, cfg *Config, live *ServiceStatus) {
	fmt.Fprintln(w, title)
	fmt.Fprintf(w, "Config  : %s\n", m.ConfigLocation())
	logDir := cfg.LogDir
	switch {
	case live != nil && live.ConnectionLog != "":
		logDir = fmt.Sprintf("%s (today's connection log: %s)", live.LogDir, filepath.Base(live.ConnectionLog))
	case logDir == "":
		logDir = defaultLogDir() + " (default)"
	}
	fmt.Fprintf(w, "Log Dir : %s\n", logDir)
	if cfg.Debug {
		fmt.Fprintln(w, "Debug   : Active")
	}
	for i, r := range cfg.Routes {
		fmt.Fprintln(w, routeLine(i, r))
	}
	if len(cfg.Routes) == 0 {
		fmt.Fprintln(w, "(no routes)")
	}
}

// routeApplyWait bounds how long a route command waits for the running
// service to apply its change: under systemd it reloads at once, a service
// started by hand sees the file change within 2 s, and resolving a new
// route's names may take up to 10 s.
const routeApplyWait = 15 * time.Second

// awaitRoute waits until the running service has applied a change of
// route r, that is until its status lists r (present) or no longer does,
// and returns r's report when present.
func awaitRoute(m serviceManager, r RouteSpec, present bool) (RouteReport, error) {
	deadline := time.Now().Add(routeApplyWait)
	for {
		st, err := liveStatus(m)
		if err != nil {
			return RouteReport{}, fmt.Errorf("cannot tell whether the service applied it: %w", err)
		}
		found := slices.IndexFunc(st.Routes, func(rep RouteReport) bool {
			return rep.Listen == r.listen() && rep.Config == r.String()
		})
		if (found >= 0) == present {
			if found < 0 {
				return RouteReport{}, nil
			}
			return st.Routes[found], nil
		}
		if time.Now().After(deadline) {
			return RouteReport{}, fmt.Errorf("the running service has not applied it within %v (see relaytcp status)", routeApplyWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reportListening prints whether a route just added or enabled (done)
// listens, as the running service reports it (rep): "added; listening", or
// "added; not listening: REASON" and exit code 3, as for a range missing
// some of its ports.
func reportListening(stdout io.Writer, done string, rep RouteReport) int {
	switch {
	case !rep.Listening:
		fmt.Fprintf(stdout, "%s; not listening: %s\n", done, rep.Error)
		return exitBind
	case rep.Error != "": // a range missing some of its ports
		fmt.Fprintf(stdout, "%s; listening, %s\n", done, rep.Error)
		return exitBind
	}
	fmt.Fprintf(stdout, "%s; listening\n", done)
	return exitOK
}

// runRouteCommand runs "route list", "route add ROUTE", "route delete
// N|[ADDR]:PORT" and "route disable|enable N|[ADDR]:PORT". With a service
// running, add, delete, disable and enable wait until it has applied the
// change (awaitRoute); add and enable then say whether the route listens,
// exit code 3 when not, and disable says "disabled", with the open
// connections that drain.
func runRouteCommand(m serviceManager, args []string, stdout, stderr io.Writer) int {
	cmd, _ := findCommand("route")
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "relaytcp route: "+format+"\n", a...)
		if code == exitUsage {
			fmt.Fprintln(stderr, commandUsage(cmd))
		}
		return code
	}
	failEdit := func(err error) int {
		var ee *editError
		if errors.As(err, &ee) {
			return fail(ee.code, "%v", ee.err)
		}
		return fail(exitRuntime, "%v", err)
	}
	if len(args) == 0 {
		return fail(exitUsage, "missing list, add, delete, disable or enable")
	}
	switch args[0] {
	case "list":
		if len(args) > 1 {
			return fail(exitUsage, "unexpected argument %q", args[1])
		}
		cfg, err := m.LoadConfig()
		if err != nil {
			return fail(configExitCode(err), "%v%s", err, missingHint(err))
		}
		for i, r := range cfg.Routes {
			fmt.Fprintln(stdout, routeLine(i, r))
		}
		if len(cfg.Routes) == 0 {
			fmt.Fprintln(stdout, "(no routes)")
		}
		return exitOK
	case "add":
		r, err := routeSpecFromFields(args[1:])
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		_, notRunning := liveStatus(m)
		var n int
		err = editConfig(m, func(cfg *Config) error {
			if err := cfg.AddRoute(r); err != nil {
				return refuse(err)
			}
			n = len(cfg.Routes) - 1
			return nil
		})
		if err != nil {
			return failEdit(err)
		}
		fmt.Fprintln(stdout, routeLine(n, r))
		if notRunning != nil {
			return exitOK
		}
		// The route stays written whatever the service makes of it.
		rep, err := awaitRoute(m, r, true)
		if err != nil {
			return fail(exitRuntime, "added; %v", err)
		}
		return reportListening(stdout, "added", rep)
	case "disable", "enable":
		if len(args) != 2 {
			return fail(exitUsage, "%s takes one route: its number, or its local side (:PORT or ADDR:PORT)", args[0])
		}
		disable := args[0] == "disable"
		_, notRunning := liveStatus(m)
		n, r, err := switchRoute(m, routeBySelector(args[1]), disable)
		var same unchangedError
		switch {
		case errors.As(err, &same):
			fmt.Fprintf(stdout, "%s\nalready %s\n", routeLine(n, r), switchedWord(disable))
			return exitOK
		case err != nil:
			return failEdit(err)
		}
		fmt.Fprintln(stdout, routeLine(n, r))
		if notRunning != nil {
			fmt.Fprintln(stdout, switchedWord(disable))
			return exitOK
		}
		rep, err := awaitRoute(m, r, true)
		switch {
		case err != nil:
			return fail(exitRuntime, "%s; %v", switchedWord(disable), err)
		case disable:
			fmt.Fprintln(stdout, stateDisabled+drainNote(rep.Open))
			return exitOK
		}
		return reportListening(stdout, "enabled", rep)
	case "delete":
		if len(args) != 2 {
			return fail(exitUsage, "delete takes one route: its number, or its local side (:PORT or ADDR:PORT)")
		}
		_, notRunning := liveStatus(m)
		var n int
		var gone RouteSpec
		err := editConfig(m, func(cfg *Config) (err error) {
			if n, err = cfg.findRoute(args[1]); err != nil {
				return refuse(err)
			}
			gone = cfg.Routes[n]
			return cfg.DeleteRoute(n)
		})
		if err != nil {
			return failEdit(err)
		}
		fmt.Fprintf(stdout, "Deleted %s\n", routeLine(n, gone))
		if notRunning == nil {
			if _, err := awaitRoute(m, gone, false); err != nil {
				return fail(exitRuntime, "deleted; %v", err)
			}
		}
		return exitOK
	}
	return fail(exitUsage, "unknown route command %q", args[0])
}
