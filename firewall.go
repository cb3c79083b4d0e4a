package main

// The way through Windows Firewall: one inbound rule named RelayTCP that
// allows relaytcp.exe, TCP and UDP, on the Domain and Private profiles (and
// Public when asked). The MSI and relaytcp install add it, uninstall removes
// it (firewall_windows.go runs netsh). What is here is plain text, so that
// Linux tests check it: the FIREWALL setting, netsh's command lines, and
// the reading of "netsh advfirewall firewall show rule" for relaytcp status.
// Linux gets no rule: relaytcp changes no firewall there (docs/firewall.md).

import (
	"fmt"
	"strings"
)

// firewallRuleName is the rule's name, as wf.msc lists it.
const firewallRuleName = "RelayTCP"

// parseFirewallSetting parses the FIREWALL setting (the MSI's property,
// install -firewall): "" or "1" is the Domain and Private profiles,
// "public" adds Public, "0" is no rule (nil).
func parseFirewallSetting(s string) ([]string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "1":
		return []string{"domain", "private"}, nil
	case "public":
		return []string{"domain", "private", "public"}, nil
	case "0":
		return nil, nil
	}
	return nil, fmt.Errorf("invalid firewall setting %q: want public (Domain, Private and Public), 0 (no rule), or nothing (Domain and Private)", s)
}

// profileWords writes profiles as wf.msc names them: "Domain, Private".
func profileWords(profiles []string) string {
	words := make([]string, len(profiles))
	for i, p := range profiles {
		words[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(words, ", ")
}

// The command lines after "netsh", in the form Microsoft documents ("Netsh
// AdvFirewall Firewall Commands", learn.microsoft.com,
// previous-versions/windows/it-pro/windows-server-2008-r2-and-2008/dd734783):
// program="PATH" quoted as a whole value. A program rule names no
// protocol= and so covers every protocol, TCP and UDP (netsh's own help:
// "protocol=0-255|icmpv4|...|tcp|udp|any (default=any)").

// netshAddRule adds the inbound rule for exe on profiles.
func netshAddRule(exe string, profiles []string) string {
	return fmt.Sprintf(`advfirewall firewall add rule name=%s dir=in action=allow program="%s" enable=yes profile=%s description="%s"`,
		firewallRuleName, exe, strings.Join(profiles, ","), "Lets other machines reach the routes of relaytcp (added by its installer)")
}

// netshSetRule gives the rule RelayTCP this exe, its profiles, and enables
// it and allows again: what an administrator narrowed otherwise (remote
// addresses, local ports, interface types) stays.
func netshSetRule(exe string, profiles []string) string {
	return fmt.Sprintf(`advfirewall firewall set rule name=%s new program="%s" enable=yes action=allow profile=%s`,
		firewallRuleName, exe, strings.Join(profiles, ","))
}

// netshDeleteRule deletes every rule named RelayTCP.
func netshDeleteRule() string {
	return "advfirewall firewall delete rule name=" + firewallRuleName
}

// netshShowRule shows the rules named RelayTCP, every field; it needs no
// administrator (netsh advfirewall: "commands that display, but do not
// change settings").
func netshShowRule() string {
	return "advfirewall firewall show rule name=" + firewallRuleName + " verbose"
}

// shownRule is one rule as "show rule" prints it.
type shownRule struct {
	enabled  bool
	profiles string // "Domain,Private"
	program  string
}

// parseShownRules reads the output of "show rule": each rule starts at its
// "Rule Name:" line, then "Field:   value" lines. The field names are
// netsh's English ones; on a system in another language none is found,
// and ok is false: nothing can be said.
func parseShownRules(out string) (rules []shownRule, ok bool) {
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		field, value, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(field) {
		case "Rule Name":
			rules = append(rules, shownRule{})
		case "Enabled":
			if len(rules) > 0 {
				rules[len(rules)-1].enabled = strings.EqualFold(value, "Yes")
			}
		case "Profiles":
			if len(rules) > 0 {
				rules[len(rules)-1].profiles = value
			}
		case "Program":
			if len(rules) > 0 {
				rules[len(rules)-1].program = value
			}
		}
	}
	return rules, len(rules) > 0
}

// firewallNote is relaytcp status's line about the rule, from what "show
// rule" printed (out) and its exit code: a line when the rule is missing
// or disabled, "" when it is there and enabled, or when netsh's answer
// cannot be read (another language, a netsh that failed otherwise).
func firewallNote(code int, out string) string {
	const advice = "other machines may not reach the routes (relaytcp firewall add, elevated, adds it; see docs/firewall.md)"
	if code != 0 {
		if strings.Contains(out, "No rules match the specified criteria") {
			return "Firewall: no inbound rule " + firewallRuleName + " in Windows Firewall: " + advice
		}
		return ""
	}
	rules, ok := parseShownRules(out)
	if !ok {
		return ""
	}
	for _, r := range rules {
		if r.enabled {
			return ""
		}
	}
	return "Firewall: the inbound rule " + firewallRuleName + " is disabled in Windows Firewall: " + advice
}

// netshError is a netsh command that failed: its exit code and what it
// said.
type netshError struct {
	args string // the command line after "netsh"
	code int
	out  string
}

func (e *netshError) Error() string {
	said := strings.Join(strings.Fields(e.out), " ")
	if said == "" {
		said = "no message"
	}
	return fmt.Sprintf("netsh %s: exit code %d: %s", e.args, e.code, said)
}
