package main

import (
	"io"
	"os"
	"slices"
)

// runFunc is run's shape: a command line to an exit code.
type runFunc func(args []string, stdin *os.File, stdout, stderr io.Writer) int

// commandNeedsElevation reports whether command name changes the service
// or its configuration, or uses the service's control channel: on Windows
// that needs an elevated process (elevate_windows.go). The command-line
// relay, status, version and help never do. The commands the MSI runs
// (backup-config, ...) are not relaunched: the installer runs them
// elevated, and no prompt can show where it runs them. firewall is run by
// the MSI too, elevated (so never relaunched there), and by administrators
// whom status sends to it.
func commandNeedsElevation(name string) bool {
	switch name {
	case "admin", "route", "start", "stop", "backend", "install", "uninstall", "firewall":
		return true
	}
	return false
}

// needsElevation reports whether the command line args needs an elevated
// process: a command that commandNeedsElevation names, unless it only asks
// for its help; of the route commands, add and delete (route list reads
// what every user may read; a route without a verb is a usage error).
func needsElevation(args []string) bool {
	if len(args) == 0 || !commandNeedsElevation(args[0]) || slices.ContainsFunc(args[1:], isHelpArg) {
		return false
	}
	if args[0] == "route" {
		return len(args) > 1 && args[1] != "list"
	}
	return true
}
