package main

import (
	"fmt"
	"io"
	"strings"
)

// command is one of relaytcp's subcommands, as the help lists it.
type command struct {
	name    string
	usage   string // the arguments after the name
	summary string // one line
	details string // more lines for "relaytcp NAME -h"; may be empty
	hidden  bool   // run by the installer, not listed
}

// commands are the subcommands, in the order the help lists them. The
// command-line relay (relaytcp listenPort remoteHost remotePort) is the
// default when the first argument names none of them.
var commands = []command{
	{name: "service", usage: "[-config PATH]", summary: "run the configured routes as the service (started by the SCM or systemd)",
		details: "On Windows the Service Control Manager starts it (net start RelayTCPsvc); on Linux\n" +
			"systemd does (scripts/relaytcp.service), or run it in the foreground by hand.\n" +
			"The configuration is the registry's Parameters key on Windows, the config file elsewhere."},
	{name: "admin", usage: "[-config PATH]", summary: "the administration menu: status, start and stop, add and delete routes",
		details: "Type the number of a choice and Enter. Answers are read line by line, so the menu can be\nscripted through a pipe."},
	{name: "route", usage: "[-config PATH] list | add ROUTE | delete N|[ADDR]:PORT", summary: "list, add or delete routes",
		details: "  list                      print the routes, numbered from 0\n" +
			"  add [ADDR:]LOCALPORT REMOTEHOST REMOTEPORT [OPTION=VALUE ...]\n" +
			"                            add a route (options: " + routeOptionNames + ");\n" +
			"                            LOCALPORT may be a range FIRST-LAST, REMOTEPORT one port or a range as long\n" +
			"  delete N                  delete route number N (the numbers after it move down)\n" +
			"  delete :PORT | ADDR:PORT  delete the route listening there (no number can shift under it);\n" +
			"                            :PORT/udp names a UDP route, a port of a range deletes the whole range\n" +
			"A running service applies a change at once. Changes by several commands at once are\n" +
			"applied one after the other (a lock), never lost."},
	{name: "start", usage: "[-config PATH]", summary: "start the service"},
	{name: "stop", usage: "[-config PATH]", summary: "stop the service (open connections may finish for 5 s)"},
	{name: "status", usage: "[-config PATH] [-json]", summary: "show whether the service runs, its configuration and what each route is doing",
		details: "The live part (connections, bytes, backends) comes from the running service's control\n" +
			"channel, which only administrators may use (Linux: root or the service's user).\n" +
			"  -json   the same as one JSON document (see the README, Monitoring)"},
	{name: "backend", usage: "[-config PATH] disable|enable ROUTE HOST:PORT", summary: "take a backend of a route out of service (its open connections finish), or put it back",
		details: "ROUTE is the route's number or its local side (:155). The running service keeps the\n" +
			"state until the backend is enabled again or the service restarts; a reload keeps it."},
	{name: "install", summary: "Windows: create the RelayTCPsvc service and its event source (the MSI does this too)"},
	{name: "uninstall", summary: "Windows: remove the service and its event source; the logs are kept"},
	{name: "version", summary: "print the version and commit"},
	{name: "backup-config", summary: "Windows: copy the configuration aside (run by the MSI before an upgrade)", hidden: true},
	{name: "restore-config", summary: "Windows: copy it back (run by the MSI after an upgrade)", hidden: true},
	{name: "close-running", summary: "Windows: ask the running admin menus and relays of this relaytcp.exe to close (run by the MSI's uninstall)", hidden: true},
}

// findCommand returns the subcommand called name.
func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandList is the help's list of subcommands.
func commandList() string {
	var b strings.Builder
	b.WriteString("Commands:\n")
	for _, c := range commands {
		if c.hidden {
			continue
		}
		fmt.Fprintf(&b, "  relaytcp %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("  relaytcp COMMAND -h the usage of one command")
	return b.String()
}

// commandUsage is the first line of a command's help and of its errors.
func commandUsage(c command) string {
	return strings.TrimSpace("usage: relaytcp " + c.name + " " + osUsage(c.usage))
}

// printCommandHelp prints "relaytcp NAME -h".
func printCommandHelp(w io.Writer, c command) {
	fmt.Fprintln(w, commandUsage(c))
	fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", c.details)
	}
	if strings.Contains(commandUsage(c), "-config") {
		fmt.Fprintf(w, "\n-config PATH names the configuration file (Linux; default %s, or $RELAYTCP_CONFIG).\n", DefaultConfigPath)
	}
	if more := osCommandHelp(c); more != "" {
		fmt.Fprintf(w, "\n%s\n", more)
	}
}

// isHelpArg reports whether arg asks for help.
func isHelpArg(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "-?", "/?":
		return true
	}
	return false
}
