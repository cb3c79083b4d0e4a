package main

// Windows Firewall's rule RelayTCP through netsh advfirewall (firewall.go
// has the command lines and reads netsh's answers): added by the MSI
// (relaytcp firewall add [FIREWALL]) and relaytcp install, removed by their
// uninstall, read by relaytcp status.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc/eventlog"
)

// netshWait bounds one netsh command: it talks to the firewall service,
// which answers in well under a second.
const netshWait = 30 * time.Second

// netshPath is the system's netsh.exe, by its full path: a netsh.exe in
// the current directory or on PATH is never run.
func netshPath() (string, error) {
	dir, err := windows.GetSystemDirectory()
	if err != nil {
		return "", fmt.Errorf("find the system directory: %w", err)
	}
	return filepath.Join(dir, "netsh.exe"), nil
}

// runNetsh runs netsh with args, the command line after "netsh" as
// firewall.go writes it (passed as it is: program="PATH" keeps its quotes),
// and returns what it printed and its exit code. err is a netsh that could
// not be run at all.
func runNetsh(args string) (out string, code int, err error) {
	exe, err := netshPath()
	if err != nil {
		return "", 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), netshWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: syscall.EscapeArg(exe) + " " + args, HideWindow: true}
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		return string(b), exit.ExitCode(), nil
	case err != nil:
		return string(b), 0, fmt.Errorf("run %s: %w", exe, err)
	}
	return string(b), 0, nil
}

// addFirewallRule makes the rule RelayTCP the one inbound rule that allows
// exe on profiles, so that a repair or a second install leaves exactly
// one. The one rule there already is changed in place (netshSetRule): the
// remote addresses an administrator narrowed it to stay. Else every rule of
// that name goes (none, or several, or an answer this code cannot read)
// and the rule is added. No profiles (FIREWALL=0) leaves none.
func addFirewallRule(exe string, profiles []string) error {
	out, code, err := runNetsh(netshShowRule())
	if err != nil {
		return err
	}
	args := netshAddRule(exe, profiles)
	if rules, ok := parseShownRules(out); code == 0 && ok && len(rules) == 1 && len(profiles) > 0 {
		args = netshSetRule(exe, profiles)
	} else if err := removeFirewallRule(); err != nil || len(profiles) == 0 {
		return err
	}
	out, code, err = runNetsh(args)
	if err != nil {
		return err
	}
	if code != 0 {
		return &netshError{args, code, out}
	}
	return nil
}

// removeFirewallRule deletes every rule named RelayTCP. netsh's delete
// fails (exit code 1, "No rules match the specified criteria." in the
// system's language) when there is none: that is no failure, as show rule
// failing too confirms in any language. A rule still there is one.
func removeFirewallRule() error {
	args := netshDeleteRule()
	out, code, err := runNetsh(args)
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	if _, showCode, err := runNetsh(netshShowRule()); err == nil && showCode != 0 {
		return nil
	}
	return &netshError{args, code, out}
}

// firewallStatus is relaytcp status's line about the rule (firewallNote),
// or "" when there is nothing to say: the rule is there and enabled, netsh
// could not tell, or the service is not installed (state).
func firewallStatus(state string) string {
	if strings.HasPrefix(state, statusNotInstalled) {
		return ""
	}
	out, code, err := runNetsh(netshShowRule())
	if err != nil {
		return ""
	}
	return firewallNote(code, out)
}

// runFirewall runs "relaytcp firewall add [public|0]" and "relaytcp
// firewall remove", the installer's commands: the MSI runs them with its
// FIREWALL property. A failure is told on stderr and in the Application
// event log (event 100, Warning), and is exit code 1, which the MSI logs
// and ignores: the install goes on without the rule.
func runFirewall(args []string, stdout, stderr io.Writer) int {
	cmd, _ := findCommand("firewall")
	var err error
	switch {
	case len(args) >= 1 && len(args) <= 2 && args[0] == "add":
		setting := strings.Join(args[1:], "")
		profiles, perr := parseFirewallSetting(setting)
		if perr != nil {
			fmt.Fprintf(stderr, "relaytcp firewall: %v\n%s\n", perr, commandUsage(cmd))
			reportFirewallFailure(perr)
			return exitUsage
		}
		saveFirewallSetting(setting, stderr)
		err = installFirewallRule(profiles, stdout)
	case len(args) == 1 && args[0] == "remove":
		err = uninstallFirewallRule(stdout)
	default:
		fmt.Fprintf(stderr, "relaytcp firewall: want add [public|0] or remove\n%s\n", commandUsage(cmd))
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp firewall: %v\n", err)
		reportFirewallFailure(err)
		return exitRuntime
	}
	return exitOK
}

// installFirewallRule adds the rule for this relaytcp.exe, the one the
// service runs, and says what it allows.
func installFirewallRule(profiles []string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find relaytcp.exe: %w", err)
	}
	if err := addFirewallRule(exe, profiles); err != nil {
		return fmt.Errorf("could not add the Windows Firewall rule %s (other machines may not reach the routes; see docs/firewall.md): %w", firewallRuleName, err)
	}
	if len(profiles) == 0 {
		fmt.Fprintf(stdout, "Windows Firewall rule %s: none (firewall setting 0)\n", firewallRuleName)
		return nil
	}
	fmt.Fprintf(stdout, "Windows Firewall rule %s added: inbound TCP and UDP to %s, profiles %s\n", firewallRuleName, exe, profileWords(profiles))
	return nil
}

// firewallSettingKey and firewallSettingValue keep the firewall setting
// of the last install, in HKLM\SOFTWARE\RelayTCP beside ConfigBackup (and,
// like it, kept after an uninstall): the MSI reads it (RegistrySearch)
// when an upgrade or a repair is given no FIREWALL, so that FIREWALL=public
// or FIREWALL=0 lasts.
const (
	firewallSettingKey   = `SOFTWARE\RelayTCP`
	firewallSettingValue = "Firewall"
)

// saveFirewallSetting keeps setting ("" is "1") for the next install. A
// failure is only told: the rule matters more.
func saveFirewallSetting(setting string, stderr io.Writer) {
	setting = cmp.Or(strings.ToLower(strings.TrimSpace(setting)), "1")
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, firewallSettingKey, registry.SET_VALUE)
	if err == nil {
		err = k.SetStringValue(firewallSettingValue, setting)
		k.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp firewall: warning: could not keep the setting %s in HKLM\\%s\\%s: %v\n", setting, firewallSettingKey, firewallSettingValue, err)
	}
}

// uninstallFirewallRule removes the rule, and says so.
func uninstallFirewallRule(stdout io.Writer) error {
	if err := removeFirewallRule(); err != nil {
		return fmt.Errorf("could not remove the Windows Firewall rule %s (remove it with wf.msc): %w", firewallRuleName, err)
	}
	fmt.Fprintf(stdout, "Windows Firewall rule %s removed\n", firewallRuleName)
	return nil
}

// reportFirewallFailure writes a failure of the installer's firewall
// command to the Application event log: the MSI keeps no program's output.
func reportFirewallFailure(err error) {
	if l, lerr := eventlog.Open(serviceName); lerr == nil {
		l.Warning(eventService, "relaytcp firewall: "+err.Error())
		l.Close()
	}
}

// firewallOption takes install's "-firewall public|0" (also -firewall=...,
// --firewall) out of args: the rule's profiles, as the MSI's FIREWALL
// property gives them.
func firewallOption(args []string) (profiles []string, rest []string, err error) {
	setting, given := "", false
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "firewall" || !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		if given {
			return nil, nil, errors.New("-firewall given twice")
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, errors.New("-firewall needs public or 0")
			}
			i++
			value = args[i]
		}
		setting, given = value, true
		if setting == "" {
			return nil, nil, errors.New("-firewall needs public or 0")
		}
	}
	profiles, err = parseFirewallSetting(setting)
	return profiles, rest, err
}

// warnFirewall tells that install or uninstall (command) could not add or
// remove the firewall rule: a warning, since the service itself is
// installed or removed.
func warnFirewall(command string, err error, stderr io.Writer) {
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp %s: warning: %v\n", command, err)
	}
}
