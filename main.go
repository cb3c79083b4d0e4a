// Command relaytcp relays TCP connections: every connection accepted on a
// local port is forwarded to a remote host and port, byte for byte, in both
// directions. It is a modern RelayTCP 1.0, for Windows and Linux:
//
//	relaytcp 1001 10.3.100.14 25        relay local port 1001 to 10.3.100.14:25
//	relaytcp 1001 mail.example.com 25 -d  the same, logging all data in hex
//
// The relay core (relay.go) runs any number of routes; the command line runs
// one of them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0 // stopped normally
	exitRuntime = 1 // failed after start, or an internal error
	exitUsage   = 2 // invalid arguments
	exitBind    = 3 // the listen port could not be bound
	exitResolve = 4 // the remote host name could not be resolved
)

// version and commit are set at build time with
// -ldflags "-X main.version=1.2.3 -X main.commit=abcdef". When they are
// not, the module's build information fills them in (versionOf).
var (
	version = ""
	commit  = ""
)

func main() {
	os.Exit(withElevation(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, run))
}

// run dispatches the command line and returns the exit code.
func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	}
	if len(args) == 0 && startedAsService() {
		// Registered without the "service" argument (by hand, say).
		return runSubcommand([]string{"service"}, stdin, stdout, stderr)
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s\n%s\n", usageLine, usageHint)
		return exitUsage
	}
	if args[0] == "help" {
		return runHelp(args[1:], stdout, stderr)
	}
	if isSubcommand(args) {
		return runSubcommand(args, stdin, stdout, stderr)
	}
	if looksLikeCommand(args[0]) {
		return unknownCommand(args[0], stderr)
	}
	opts, err := parseArgs(args)
	if errors.Is(err, errHelp) {
		printHelp(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp: %v\n%s\n", err, usageLine)
		return exitUsage
	}
	return runCommandLineRelay(opts, stdin, stdout, stderr)
}

// buildVersion returns the version without a leading "v", and the commit
// (versionOf).
func buildVersion() (v, c string) {
	info, _ := debug.ReadBuildInfo()
	return versionOf(info, version, commit)
}

// versionOf returns the version and commit set with -ldflags (ldVersion,
// ldCommit), else those Go recorded in the binary (info, nil when there is
// none): go build in a git checkout records the commit, and whether the
// tree had changes (then the commit ends in -dirty), and since Go 1.24 a
// version from the tags; go run and -buildvcs=false record neither.
func versionOf(info *debug.BuildInfo, ldVersion, ldCommit string) (v, c string) {
	v, c = ldVersion, ldCommit
	if info != nil {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		var revision, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if c == "" && revision != "" {
			c = revision
			if modified == "true" {
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = "0.0.0-dev"
	}
	if c == "" {
		c = "unknown"
	}
	return strings.TrimPrefix(v, "v"), c
}

// versionLine is what "relaytcp version" prints; a build without a commit
// says why, so that nobody looks for a fault.
func versionLine() string {
	v, c := buildVersion()
	if c == "unknown" {
		c += ": this build has no version control information; go run and -buildvcs=false leave it out, go build in a git checkout records it"
	}
	return fmt.Sprintf("relaytcp %s (commit %s)", v, c)
}

// runCommandLineRelay is the manual's RELAYTCP tool: one route from
// opts.listenPort to the remote host, until ESC, Ctrl-C or SIGTERM.
func runCommandLineRelay(opts cliOptions, stdin *os.File, stdout, stderr io.Writer) int {
	v, _ := buildVersion()
	fmt.Fprintf(stdout, "RelayTCP v%s - Relay of TCP/IP sessions\n", v)

	spec := opts.routeSpec()
	if err := spec.resolveBackends(context.Background(), func(b hostError, fatal bool) {
		if fatal {
			fmt.Fprintf(stderr, "I can't resolve %s (%v)\n", b.host, b.err)
		} else {
			fmt.Fprintf(stderr, "I can't resolve %s (%v): relaying to the other backends\n", b.host, b.err)
		}
	}); err != nil {
		return exitResolve
	}

	// Certificates and CA files are read before listening: a bad one is
	// an argument's fault, not the port's (tlsroute.go).
	if _, err := newRouteTLS(spec.TLSOptions, nil); err != nil {
		fmt.Fprintf(stderr, "relaytcp: %v\n", err)
		return exitUsage
	}

	out, errs := newLineQueue(stdout, "\n"), newLineQueue(stderr, "\n")
	defer errs.Close()
	defer out.Close()
	relay := &Relay{Events: func(e Event) {
		switch e.Kind {
		case ConnOpened, ConnClosed, SessionOpened, SessionClosed:
			if !opts.quiet {
				out.Print(e.String())
			}
		case BackendUp:
			out.Print(e.String())
		default:
			errs.Print(e.String())
		}
	}}
	route := spec.Route()
	if opts.dataLog {
		route.DataLogDir = "."
	}
	running, partial, err := startOn(relay, 0, route)
	switch {
	case partial != nil:
		if !running {
			out.Close()
		}
		fmt.Fprintf(stderr, "Not bound to %s !\n", partial.Ports())
	case err != nil:
		out.Close()
		fmt.Fprintf(stderr, "Not bound to %s ! (%s)\n", spec.localPorts(), bindReason(err))
	}
	if !running {
		return exitBind
	}

	if opts.metricsAddr != "" {
		started := time.Now()
		status := func() *ServiceStatus {
			st := newServiceStatus("relaytcp", "Running", started)
			st.Routes = append(st.Routes, routeReport(0, spec, relay.Status()[0], ""))
			return st
		}
		m, err := serveMetrics(opts.metricsAddr, status)
		if err != nil {
			relay.Shutdown(context.Background())
			out.Close()
			fmt.Fprintf(stderr, "Not bound to %s ! (metrics: %s)\n", opts.metricsAddr, bindReason(err))
			return exitBind
		}
		defer m.close()
	}

	// A first ESC or signal starts the drain; a second one ends it at once.
	stop := make(chan struct{}, 2)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	restore, isTerminal := watchEscape(stdin, func() { stop <- struct{}{} })
	defer restore()
	// Uninstalling relaytcp.exe (Windows) stops the relay as ESC does.
	defer watchCloseRequest(func() {
		out.Print("relaytcp is being uninstalled: the relay stops")
		select {
		case stop <- struct{}{}:
		default:
		}
	})()

	out.Print("Listening on " + spec.localPorts())
	ready := "Ready to relay data to " + route.describe() + spec.protoSuffix()
	if _, settings := spec.backendSummary(); settings != "" {
		ready += " (" + settings + ")"
	}
	out.Print(ready)
	if isTerminal {
		out.Print("[ESC to cancel]")
	}

	select {
	case <-stop:
	case <-signals:
	}
	restore()
	out.Print("Closing connections...")
	stopWithDrain(opts.drain, signals, relay.Shutdown)
	out.Print("It's all !")
	return exitOK
}

// stopWithDrain calls stop with a context that ends after the drain time,
// or at once when another signal arrives.
func stopWithDrain(drain time.Duration, signals <-chan os.Signal, stop func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	go func() {
		select {
		case <-signals:
			cancel()
		case <-ctx.Done():
		}
	}()
	stop(ctx)
}
