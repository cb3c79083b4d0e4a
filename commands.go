package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// More exit codes, for the service and administration commands.
const (
	exitConfig = 5 // the configuration cannot be read, or is invalid
	exitBusy   = 6 // another command kept the configuration locked too long
)

// serviceName is the service's name, as in RelayTCP 1.0.
const serviceName = "RelayTCPsvc"

// statusNotInstalled is the service's status when there is no such
// service (RelayTCP 1.0 said "(invalid Service)", as systemctl does).
const statusNotInstalled = "Not installed"

// serviceManager is how the administration commands and the menu reach the
// installed service and its configuration: the SCM and the registry on
// Windows, systemctl and the config file elsewhere.
type serviceManager interface {
	// LoadConfig reads the configuration.
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
	// Status is the service's state in the manual's words: Stopped,
	// Running, Start pending, ... or statusNotInstalled.
	Status() string
	Start() error
	Stop() error
}

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
	case "install", "uninstall", "backup-config", "restore-config":
		return runInstall(name, rest, stdout, stderr)
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
	}
	if name == "start" && len(rest) == 1 && strings.TrimLeft(rest[0], "-") == "if-configured" {
		// For installers: start only a service that has something to do.
		cfg, err := m.LoadConfig()
		if err != nil {
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
		if err := op(); err != nil {
			fmt.Fprintf(stderr, "relaytcp %s: %v\n", name, err)
			return exitRuntime
		}
		fmt.Fprintf(stdout, "Service : %s\nStatus  : %s\n", serviceName, m.Status())
		return exitOK
	default: // status
		cfg, err := m.LoadConfig()
		if err != nil {
			fmt.Fprintf(stderr, "relaytcp status: %v\n", err)
			return exitConfig
		}
		printStatus(stdout, m, cfg)
		return exitOK
	}
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
// The error is an *editError whose code is the exit code: exitBusy when the
// lock was not free in time, exitConfig when the configuration cannot be
// read, edit's own (see refuse), exitRuntime when saving failed.
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
	cfg, err := m.LoadConfig()
	if err != nil {
		return &editError{exitConfig, err}
	}
	if err := edit(cfg); err != nil {
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

// configOption takes "-config PATH" (or -config=PATH) from the start of args.
// Without it the path is $RELAYTCP_CONFIG, else DefaultConfigPath.
func configOption(args []string) (path string, rest []string, err error) {
	path = os.Getenv("RELAYTCP_CONFIG")
	if path == "" {
		path = DefaultConfigPath
	}
	if len(args) == 0 {
		return path, args, nil
	}
	switch a := strings.TrimPrefix(args[0], "-"); {
	case a == "-config" || a == "config":
		if len(args) < 2 || args[1] == "" {
			return "", nil, fmt.Errorf("-config needs a file name")
		}
		return args[1], args[2:], nil
	case strings.HasPrefix(a, "config=") || strings.HasPrefix(a, "-config="):
		_, p, _ := strings.Cut(a, "=")
		if p == "" {
			return "", nil, fmt.Errorf("-config needs a file name")
		}
		return p, args[1:], nil
	}
	return path, args, nil
}

// routeLine is the manual's line for route n, with the bind address, the
// other backends and the options when there are any:
//
//	Route 0 : From local port 80 to IP web1 port 8080, also web2:8080, backup web9:8080 (leastconn, check 2s)
func routeLine(n int, r RouteSpec) string {
	from := fmt.Sprintf("local port %d", r.LocalPort)
	if r.BindAddr != "" {
		from = fmt.Sprintf("local address %s port %d", r.BindAddr, r.LocalPort)
	}
	more, settings := r.backendSummary()
	line := fmt.Sprintf("Route %d : From %s to IP %s port %d%s", n, from, r.RemoteHost, r.RemotePort, more)
	var extra []string
	if settings != "" {
		extra = append(extra, settings)
	}
	if opts := r.limitOptions(); len(opts) > 0 {
		extra = append(extra, strings.Join(opts, " "))
	}
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}

// printStatus prints the manual's Status and Configuration blocks.
func printStatus(w io.Writer, m serviceManager, cfg *Config) {
	fmt.Fprintf(w, "Status\nService : %s\nStatus  : %s\n\n", serviceName, m.Status())
	printConfig(w, "Configuration", cfg)
}

// printConfig prints the configuration block under a title.
func printConfig(w io.Writer, title string, cfg *Config) {
	fmt.Fprintln(w, title)
	logDir := cfg.LogDir
	if logDir == "" {
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

// runRouteCommand runs "route list", "route add ROUTE" and "route delete
// N|[ADDR]:PORT".
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
		return fail(exitUsage, "missing list, add or delete")
	}
	switch args[0] {
	case "list":
		if len(args) > 1 {
			return fail(exitUsage, "unexpected argument %q", args[1])
		}
		cfg, err := m.LoadConfig()
		if err != nil {
			return fail(exitConfig, "%v", err)
		}
		for i, r := range cfg.Routes {
			fmt.Fprintln(stdout, routeLine(i, r))
		}
		return exitOK
	case "add":
		r, err := routeSpecFromFields(args[1:])
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
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
		return exitOK
	case "delete":
		if len(args) != 2 {
			return fail(exitUsage, "delete takes one route: its number, or its local side (:PORT or ADDR:PORT)")
		}
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
		return exitOK
	}
	return fail(exitUsage, "unknown route command %q", args[0])
}
