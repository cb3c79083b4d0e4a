package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// More exit codes, for the service and administration commands.
const (
	exitConfig = 5 // the configuration cannot be read, or is invalid
)

// serviceName is the service's name, as in RelayTCP 1.0.
const serviceName = "RelayTCPsvc"

// serviceManager is how the administration commands and the menu reach the
// installed service and its configuration: the SCM and the registry on
// Windows, systemctl and the config file elsewhere.
type serviceManager interface {
	// LoadConfig reads the configuration.
	LoadConfig() (*Config, error)
	// SaveConfig writes it, and tells a running service to apply it.
	SaveConfig(*Config) error
	// ConfigLocation says where the configuration is, for messages.
	ConfigLocation() string
	// Status is the service's state in the manual's words: Stopped,
	// Running, Start pending, ... or "(invalid Service)" when it is not
	// installed.
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
	switch args[0] {
	case "service", "admin", "route", "start", "stop", "status", "install", "uninstall",
		"backup-config", "restore-config":
		return true
	}
	return false
}

// runSubcommand runs a service or administration command.
func runSubcommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := args[0]
	configPath, rest, err := configOption(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp %s: %v\n", name, err)
		return exitUsage
	}
	if name == "service" {
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "relaytcp service: unexpected argument %q\n", rest[0])
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
		fmt.Fprintf(stderr, "relaytcp %s: unexpected argument %q\n", name, rest[0])
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

// routeLine is the manual's line for route n, with the bind address and
// the options when there are any.
func routeLine(n int, r RouteSpec) string {
	from := fmt.Sprintf("local port %d", r.LocalPort)
	if r.BindAddr != "" {
		from = fmt.Sprintf("local address %s port %d", r.BindAddr, r.LocalPort)
	}
	line := fmt.Sprintf("Route %d : From %s to IP %s port %d", n, from, r.RemoteHost, r.RemotePort)
	if opts := r.Options(); len(opts) > 0 {
		line += " (" + strings.Join(opts, " ") + ")"
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

// runRouteCommand runs "route list", "route add LOCALPORT REMOTEHOST
// REMOTEPORT" and "route delete N".
func runRouteCommand(m serviceManager, args []string, stdout, stderr io.Writer) int {
	usage := "usage: relaytcp route [-config PATH] list | add LOCALPORT REMOTEHOST REMOTEPORT | delete N"
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "relaytcp route: "+format+"\n", a...)
		if code == exitUsage {
			fmt.Fprintln(stderr, usage)
		}
		return code
	}
	if len(args) == 0 {
		return fail(exitUsage, "missing list, add or delete")
	}
	cfg, err := m.LoadConfig()
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	switch args[0] {
	case "list":
		if len(args) > 1 {
			return fail(exitUsage, "unexpected argument %q", args[1])
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
		if err := cfg.AddRoute(r); err != nil {
			return fail(exitUsage, "%v", err)
		}
		if err := m.SaveConfig(cfg); err != nil {
			return fail(exitRuntime, "%v", err)
		}
		fmt.Fprintln(stdout, routeLine(len(cfg.Routes)-1, r))
		return exitOK
	case "delete":
		if len(args) != 2 {
			return fail(exitUsage, "delete takes one route number")
		}
		n, err := parseRouteNumber(args[1], len(cfg.Routes))
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		gone := cfg.Routes[n]
		cfg.DeleteRoute(n)
		if err := m.SaveConfig(cfg); err != nil {
			return fail(exitRuntime, "%v", err)
		}
		fmt.Fprintf(stdout, "Deleted %s\n", routeLine(n, gone))
		return exitOK
	}
	return fail(exitUsage, "unknown route command %q", args[0])
}
