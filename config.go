package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the service's configuration, wherever it is stored.
type Config struct {
	// LogDir is where the connection and data logs go; empty means the
	// platform's default (defaultLogDir).
	LogDir string
	// Debug turns the data logs on.
	Debug bool
	// MaxConn caps the open connections of all routes together; 0 is no
	// cap (each route may have its own maxconn= too).
	MaxConn int
	// ClientMaxConn caps the open connections of one client (as each
	// route's clientprefix4=/clientprefix6= group it) across all routes
	// together; 0 is no cap (clientlimits.go).
	ClientMaxConn int
	// LogRetentionDays deletes connection and data logs older than that
	// many days, once a day; 0 keeps everything.
	LogRetentionDays int
	// MetricsAddr, when not empty, is where the service serves /metrics
	// for Prometheus (IP:PORT, metrics.go); empty is off.
	MetricsAddr string
	// Routes, numbered from 0 in this order.
	Routes []RouteSpec
}

// Validate checks the routes as a whole: two routes may not listen on the
// same port of the same address (a route on every interface takes the port
// on all of them).
func (c *Config) Validate() error {
	for i, r := range c.Routes {
		if err := c.conflict(r, i); err != nil {
			return fmt.Errorf("route %d: %w", i, err)
		}
	}
	return nil
}

// conflict says which of the first n routes listens where r would.
func (c *Config) conflict(r RouteSpec, n int) error {
	for i, old := range c.Routes[:n] {
		if !old.overlaps(r) {
			continue
		}
		if shared, err := sniShares(old, r); shared { // a port shared by sni=: sniroute.go
			if err != nil {
				return err
			}
			continue
		}
		switch {
		case old.BindAddr == r.BindAddr && old.LocalPort == r.LocalPort && old.LocalPortEnd == r.LocalPortEnd:
			return fmt.Errorf("local port %s is already used by route %d", r.key(), i)
		case r.LocalPortEnd != 0:
			return fmt.Errorf("local port %d of %s is already used by route %d (%s)", r.firstShared(old), r.key(), i, old.key())
		case old.LocalPortEnd != 0:
			return fmt.Errorf("local port %s is already used by route %d (%s)", r.key(), i, old.key())
		}
		return fmt.Errorf("local port %s overlaps route %d on %s", r.key(), i, old.key())
	}
	return nil
}

// AddRoute appends a route, refusing one whose local port is taken.
func (c *Config) AddRoute(r RouteSpec) error {
	if err := c.conflict(r, len(c.Routes)); err != nil {
		return err
	}
	c.Routes = append(c.Routes, r)
	return nil
}

// DeleteRoute removes route n; the routes after it move down by one.
func (c *Config) DeleteRoute(n int) error {
	if n < 0 || n >= len(c.Routes) {
		return fmt.Errorf("no route %d (%s)", n, routeRange(len(c.Routes)))
	}
	c.Routes = append(c.Routes[:n], c.Routes[n+1:]...)
	return nil
}

// routeRange describes the valid route numbers.
func routeRange(n int) string {
	switch n {
	case 0:
		return "there are no routes"
	case 1:
		return "the only route is 0"
	}
	return fmt.Sprintf("routes are 0 to %d", n-1)
}

// parseRouteNumber parses a route number given by the user.
func parseRouteNumber(s string, count int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid route number %q (%s)", s, routeRange(count))
	}
	if n >= count {
		return 0, fmt.Errorf("no route %d (%s)", n, routeRange(count))
	}
	return n, nil
}

// findRoute returns the number of a route given as "route delete" takes
// it: its number, or its local side (:PORT or PORT for a route on every
// interface, ADDR:PORT, [IPV6]:PORT), which no other change can shift. A
// port without an address also names the route bound to one address when
// no other route of its protocol has that port (routeAt).
func (c *Config) findRoute(s string) (int, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, ":") {
		return parseRouteNumber(s, len(c.Routes))
	}
	local, proto, hasProto := strings.Cut(s, "/")
	if hasProto && proto != "tcp" && proto != "udp" {
		return 0, fmt.Errorf("invalid local side %q: the protocol after / is tcp or udp", s)
	}
	bind, first, last, err := parseLocal(local)
	if err != nil {
		return 0, err
	}
	if !hasProto {
		// Without /udp or /tcp: the route there, if only one protocol has one.
		tcp, err := c.routeAt(s, bind, first, last, "")
		if err != nil {
			return 0, err
		}
		udp, err := c.routeAt(s, bind, first, last, "udp")
		if err != nil {
			return 0, err
		}
		switch {
		case tcp >= 0 && udp >= 0:
			return 0, fmt.Errorf("routes %d and %d listen on %s, TCP and UDP: say %s/tcp or %s/udp", tcp, udp, s, s, s)
		case tcp >= 0:
			return tcp, nil
		case udp >= 0:
			return udp, nil
		}
		return 0, fmt.Errorf("no route listens on %s", s)
	}
	if proto == "tcp" {
		proto = ""
	}
	i, err := c.routeAt(s, bind, first, last, proto)
	if err != nil {
		return 0, err
	}
	if i < 0 {
		return 0, fmt.Errorf("no route listens on %s", s)
	}
	return i, nil
}

// routeAt is routeOn for a local side as the user wrote it (given, for
// errors): without an address (:8082) it also finds the route of protocol
// proto bound to one address (127.0.0.1:8082) when that route is the only
// one with the port; when several are, the error names them.
func (c *Config) routeAt(given, bind string, first, last int, proto string) (int, error) {
	if i := c.routeOn(bind, first, last, proto); i >= 0 || bind != "" {
		if err := c.sniAmbiguous(given, i); err != nil { // routes sharing the port by sni=: sniroute.go
			return 0, err
		}
		return i, nil
	}
	var found []string
	n := -1
	for i, r := range c.Routes {
		if r.Proto == proto && (r.LocalPort == first && r.LocalPortEnd == last || last == 0 && r.hasPort(first)) {
			found = append(found, fmt.Sprintf("route %d on %s", i, r.listen()))
			n = i
		}
	}
	if len(found) > 1 {
		return 0, fmt.Errorf("%s names several routes: %s; give the address too", given, strings.Join(found, ", "))
	}
	return n, nil
}

// routeOn returns the number of the route of protocol proto ("" for
// TCP) whose local side is bind and the ports first-last (last 0: one
// port, which may also be a port of a range), or -1.
func (c *Config) routeOn(bind string, first, last int, proto string) int {
	for i, r := range c.Routes {
		if r.BindAddr == bind && r.LocalPort == first && r.LocalPortEnd == last && r.Proto == proto {
			return i
		}
	}
	for i, r := range c.Routes {
		if r.BindAddr == bind && last == 0 && r.hasPort(first) && r.Proto == proto {
			return i
		}
	}
	return -1
}

// parseDebug parses the Debug setting: "1" on, "0" or empty off.
func parseDebug(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "1":
		return true, nil
	case "0", "":
		return false, nil
	}
	return false, fmt.Errorf("invalid debug value %q (want 0 or 1)", s)
}

// The config file (Linux and other non-Windows systems).
//
//	# relaytcp service configuration
//	logdir /var/log/relaytcp
//	debug 0
//	route 155 192.168.1.200 110
//	route 1088 www.example.com 80
//
// Blank lines and lines starting with # are kept as they are when the file
// is rewritten.

// DefaultConfigPath is where the service and the route commands look for
// their configuration, unless RELAYTCP_CONFIG or -config says otherwise.
const DefaultConfigPath = "/etc/relaytcp/relaytcp.conf"

// configFile is a config file as read, so that saving it keeps its lines:
// its comments, its order, and the lines of the settings and routes that
// did not change (configsave.go).
type configFile struct {
	path  string
	lines []string
	eol   string            // "\r\n" when the file ends its lines so, else "\n"
	was   map[string]string // the settings as read (Config.settings)
}

// loadConfigFile reads and parses a config file. A file that does not
// exist (or a symbolic link to nothing) is a *configMissingError, which
// comes with an empty configuration and file: "route add" creates the file
// from them; the service and the other commands report it.
func loadConfigFile(path string) (*Config, *configFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Config{}, &configFile{path: path, eol: "\n"}, missingConfigFile(path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := parseConfig(path, string(data))
	if err != nil {
		return nil, nil, err
	}
	f := &configFile{path: path, eol: "\n", was: cfg.settings()}
	if strings.Contains(string(data), "\r\n") {
		f.eol = "\r\n"
	}
	if len(data) > 0 {
		f.lines = strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n"), "\n")
	}
	return cfg, f, nil
}

// configMissingError says that the configuration does not exist: no config
// file, or no Parameters key on Windows. It is not an empty configuration:
// a running service keeps its routes, "relaytcp service" does not start,
// and the commands other than "route add" say so (exitNoConfig).
type configMissingError struct {
	what string // "config file /etc/relaytcp/relaytcp.conf", `registry key HKLM\...`
	why  string // more, or ""
}

func (e *configMissingError) Error() string {
	if e.why != "" {
		return e.what + " does not exist (" + e.why + ")"
	}
	return e.what + " does not exist"
}

// Unwrap makes errors.Is(err, fs.ErrNotExist) true.
func (e *configMissingError) Unwrap() error { return os.ErrNotExist }

// isConfigMissing reports whether err says that the configuration does not
// exist.
func isConfigMissing(err error) bool {
	var missing *configMissingError
	return errors.As(err, &missing)
}

// missingConfigFile is the error for a config file path that does not
// exist; a symbolic link to nothing is named with the file it points to.
func missingConfigFile(path string) error {
	err := &configMissingError{what: "config file " + path}
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, _ := writeTarget(path)
		err.why = "a symbolic link to " + target + ", which does not exist"
	}
	return err
}

// parseConfig parses the config file text; name is used in errors.
func parseConfig(name, text string) (*Config, error) {
	cfg := &Config{}
	seenLogDir, seenDebug := false, false
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		where := fmt.Sprintf("%s:%d", name, i+1)
		key, rest := splitSetting(line)
		switch {
		case key == "" || strings.HasPrefix(key, "#"):
		case key == "logdir":
			if seenLogDir {
				return nil, fmt.Errorf("%s: logdir given twice", where)
			}
			if rest == "" {
				return nil, fmt.Errorf("%s: logdir needs a directory", where)
			}
			seenLogDir, cfg.LogDir = true, rest
		case key == "debug":
			if seenDebug {
				return nil, fmt.Errorf("%s: debug given twice", where)
			}
			d, err := parseDebug(rest)
			if err != nil || rest == "" {
				return nil, fmt.Errorf("%s: invalid debug value %q (want 0 or 1)", where, rest)
			}
			seenDebug, cfg.Debug = true, d
		case key == "maxconn" || key == "logretention" || key == "clientmaxconn":
			if seen[key] {
				return nil, fmt.Errorf("%s: %s given twice", where, key)
			}
			seen[key] = true
			n, err := parseCount(key, rest)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			switch key {
			case "maxconn":
				cfg.MaxConn = n
			case "clientmaxconn":
				cfg.ClientMaxConn = n
			default:
				cfg.LogRetentionDays = n
			}
		case key == "metrics":
			if seen[key] {
				return nil, fmt.Errorf("%s: metrics given twice", where)
			}
			seen[key] = true
			addr, err := parseMetricsAddr(rest)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			cfg.MetricsAddr = addr
		case key == "route":
			r, err := ParseRouteSpec(rest)
			if err != nil {
				return nil, fmt.Errorf("%s: route %d: %v", where, len(cfg.Routes), err)
			}
			cfg.Routes = append(cfg.Routes, r)
		default:
			return nil, fmt.Errorf("%s: unknown setting %q (want logdir, debug, maxconn, clientmaxconn, logretention, metrics or route)", where, key)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return cfg, nil
}

// splitSetting splits a config line into its first word and the rest,
// trimmed (a logdir may contain spaces).
func splitSetting(line string) (key, rest string) {
	line = strings.TrimSpace(line)
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i], strings.TrimSpace(line[i+1:])
	}
	return line, ""
}

// settingNames are the single-value settings of the config file, in the
// order a new file lists them.
var settingNames = []string{"logdir", "debug", "maxconn", "clientmaxconn", "logretention", "metrics"}

// settings returns the single-value settings as the file writes them; ""
// is a setting's default.
func (c *Config) settings() map[string]string {
	v := map[string]string{"logdir": c.LogDir, "debug": "", "maxconn": "", "clientmaxconn": "", "logretention": "", "metrics": c.MetricsAddr}
	if c.Debug {
		v["debug"] = "1"
	}
	if c.MaxConn > 0 {
		v["maxconn"] = strconv.Itoa(c.MaxConn)
	}
	if c.ClientMaxConn > 0 {
		v["clientmaxconn"] = strconv.Itoa(c.ClientMaxConn)
	}
	if c.LogRetentionDays > 0 {
		v["logretention"] = strconv.Itoa(c.LogRetentionDays)
	}
	return v
}

// parseCount parses a positive whole number setting.
func parseCount(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("invalid %s %q (want a whole number, 1 or more)", what, s)
	}
	return n, nil
}

// configLockWait bounds how long a change of the configuration waits for
// another one (another route command, an admin menu saving) to finish.
const configLockWait = 30 * time.Second

// errConfigBusy says the configuration's lock was not free within wait.
type errConfigBusy time.Duration

func (e errConfigBusy) Error() string {
	return fmt.Sprintf("another relaytcp command kept the configuration locked for %v; nothing was changed", time.Duration(e))
}
