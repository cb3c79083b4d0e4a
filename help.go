package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
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
	{name: "route", usage: "[-config PATH] list | add ROUTE | delete N|[ADDR]:PORT | disable|enable N|[ADDR]:PORT", summary: "list, add, delete, disable or enable routes",
		details: "  list                      print the routes, numbered from 0\n" +
			"  add [ADDR:]LOCALPORT REMOTEHOST REMOTEPORT [OPTION=VALUE ...]\n" +
			"                            add a route (options: " + routeOptionNames + ");\n" +
			"                            LOCALPORT may be a range FIRST-LAST, REMOTEPORT one port or a range as long\n" +
			"  delete N                  delete route number N (the numbers after it move down)\n" +
			"  delete :PORT | ADDR:PORT  delete the route listening there (no number can shift under it);\n" +
			"                            :PORT/udp names a UDP route, a port of a range deletes the whole range;\n" +
			"                            :PORT also names a route bound to one address when no other has that port\n" +
			"  disable N | :PORT         switch a route off, keeping its line and options (disabled=1): it\n" +
			"                            listens on nothing, its port is free, its open connections may\n" +
			"                            finish for 5 s; a port of a range disables the whole range\n" +
			"  enable N | :PORT          switch it on again\n" +
			"A running service applies a change at once: add, delete, disable and enable wait for it;\n" +
			"add and enable then say whether the route listens (\"added; not listening: REASON\" is\n" +
			"exit code 3; the route stays written). Changes by several commands at once are applied\n" +
			"one after the other (a lock), never lost."},
	{name: "start", usage: "[-config PATH]", summary: "start the service",
		details: "Windows: through the Service Control Manager. Linux: systemctl start relaytcp; where\n" +
			"systemd does not run, it says how to run relaytcp service yourself."},
	{name: "stop", usage: "[-config PATH]", summary: "stop the service (open connections may finish for 5 s)",
		details: "Windows: through the Service Control Manager. Linux: systemctl stop relaytcp when systemd\n" +
			"runs it; a service started by hand (relaytcp service -config PATH) is asked to stop\n" +
			"through its control channel."},
	{name: "status", usage: "[-config PATH] [-json]", summary: "show whether the service runs, its configuration and what each route is doing",
		details: "The live part (connections, bytes, backends) comes from the running service's control\n" +
			"channel, which only administrators may use (Linux: root or the service's user).\n" +
			"  -json   the same as one JSON document (see the README, Monitoring)"},
	{name: "backend", usage: "[-config PATH] disable|enable ROUTE HOST:PORT", summary: "take a backend of a route out of service (its open connections finish), or put it back",
		details: "ROUTE is the route's number or its local side (:155, 127.0.0.1:155; :155 also names the\n" +
			"route on 127.0.0.1:155 when no other route has port 155). The running service keeps the\n" +
			"state until the backend is enabled again or the service restarts; a reload keeps it."},
	{name: "install", usage: "[-firewall public|0]", summary: "Windows: create the RelayTCPsvc service, its event source and firewall rule (the MSI does this too)",
		details: "The Windows Firewall rule RelayTCP allows relaytcp.exe inbound, TCP and UDP, on the Domain and\n" +
			"Private profiles; -firewall public adds the Public profile, -firewall 0 adds no rule."},
	{name: "uninstall", summary: "Windows: remove the service, its event source and its firewall rule; the logs are kept"},
	{name: "firewall", usage: "add [public|0] | remove", summary: "Windows: add the Windows Firewall rule RelayTCP that lets other machines reach the routes, or remove it",
		details: "  add          the rule: inbound TCP and UDP to this relaytcp.exe, Domain and Private profiles\n" +
			"  add public   the same, and the Public profile\n" +
			"  add 0        no rule (any rule RelayTCP is removed)\n" +
			"  remove       remove the rule\n" +
			"The MSI runs it with its FIREWALL property; install and uninstall do the same. A rule\n" +
			"there already keeps the remote addresses it was narrowed to (see docs/firewall.md)."},
	{name: "version", summary: "print the version and commit"},
	{name: "help", usage: "[COMMAND]", summary: "print this; with a COMMAND, its usage (as relaytcp COMMAND -h)"},
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
		fmt.Fprintf(w, "\n-config PATH names the configuration file (Linux; default %s, or $RELAYTCP_CONFIG);\nit may stand anywhere on the line, also as -config=PATH or --config PATH.\n", DefaultConfigPath)
	}
	if more := osCommandHelp(c); more != "" {
		fmt.Fprintf(w, "\n%s\n", more)
	}
}

// usageHint follows the usage line when relaytcp has no arguments, and an
// unknown command.
const usageHint = "run relaytcp -h for the options and commands"

// runHelp runs "relaytcp help [COMMAND]": -h, or COMMAND -h.
func runHelp(args []string, stdout, stderr io.Writer) int {
	c, _ := findCommand("help")
	if slices.ContainsFunc(args, isHelpArg) {
		printCommandHelp(stdout, c)
		return exitOK
	}
	switch len(args) {
	case 0:
		printHelp(stdout)
		return exitOK
	case 1:
		c, ok := findCommand(args[0])
		if !ok {
			return unknownCommand(args[0], stderr)
		}
		printCommandHelp(stdout, c)
		return exitOK
	}
	fmt.Fprintf(stderr, "relaytcp help: unexpected argument %q\n%s\n", args[1], commandUsage(c))
	return exitUsage
}

// printHelp prints "relaytcp -h": the relay's usage, then the commands.
func printHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\n%s\n", usageText, commandList())
}

// unknownCommand refuses a first argument that names no command, with the
// command it was probably meant to be.
func unknownCommand(name string, stderr io.Writer) int {
	msg := fmt.Sprintf("unknown command %q", name)
	if near := suggestCommand(name); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	fmt.Fprintf(stderr, "relaytcp: %s\n%s\n", msg, usageHint)
	return exitUsage
}

// looksLikeCommand reports whether the first argument is a word, and so
// meant as a command rather than the relay's local port: the local side
// ([ADDR:]PORT, [IPV6]:PORT) starts with a digit, a colon or a bracket,
// and an option with a dash.
func looksLikeCommand(arg string) bool {
	if arg == "" || !unicode.IsLetter(rune(arg[0])) {
		return false
	}
	return !strings.ContainsAny(arg, ":.[]")
}

// suggestCommand returns the listed command nearest to word: one it is the
// start of, else one at most two edits away (a swap of two letters is
// one) when word is long enough for that to mean something; "" when none
// is, or when several are as near.
func suggestCommand(word string) string {
	best, bestScore, tie := "", 3, false
	for _, c := range commands {
		if c.hidden {
			continue
		}
		score := editDistance(word, c.name)
		if len(word) >= 2 && strings.HasPrefix(c.name, word) {
			score = 0
		} else if score == 0 || 2*score > len(word) {
			continue
		}
		switch {
		case score < bestScore:
			best, bestScore, tie = c.name, score, false
		case score == bestScore:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours, each
// one edit (so "stauts" is one edit from "status", two from "start").
func editDistance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// isHelpArg reports whether arg asks for help.
func isHelpArg(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "-?", "/?":
		return true
	}
	return false
}
