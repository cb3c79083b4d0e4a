package main

import (
	"embed"
	"slices"
	"strings"
	"testing"
)

// netshAnswers are netsh's answers that TestFirewallNote reads, embedded:
// the Windows test binary runs under wine away from the source tree.
//
//go:embed testdata/netsh/*.txt
var netshAnswers embed.FS

// TestFirewallSetting: the FIREWALL property and install -firewall.
func TestFirewallSetting(t *testing.T) {
	for in, want := range map[string][]string{
		"":       {"domain", "private"},
		"1":      {"domain", "private"},
		"public": {"domain", "private", "public"},
		"Public": {"domain", "private", "public"},
		"0":      nil,
	} {
		if got, err := parseFirewallSetting(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("parseFirewallSetting(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := parseFirewallSetting("private")
	if want := `invalid firewall setting "private": want public (Domain, Private and Public), 0 (no rule), or nothing (Domain and Private)`; err == nil || err.Error() != want {
		t.Errorf("parseFirewallSetting(private): %v; want %q", err, want)
	}
	if got := profileWords([]string{"domain", "private", "public"}); got != "Domain, Private, Public" {
		t.Errorf("profileWords: %q", got)
	}
}

// TestNetshCommandLines: the rule is one inbound program rule named
// RelayTCP, allowed, enabled, with no protocol= (any: TCP and UDP), the
// program's path quoted as Microsoft's reference writes it.
func TestNetshCommandLines(t *testing.T) {
	got := netshAddRule(`C:\Program Files\RelayTCP\relaytcp.exe`, []string{"domain", "private"})
	want := `advfirewall firewall add rule name=RelayTCP dir=in action=allow program="C:\Program Files\RelayTCP\relaytcp.exe" enable=yes profile=domain,private description="Lets other machines reach the routes of relaytcp (added by its installer)"`
	if got != want {
		t.Errorf("add rule:\n got %s\nwant %s", got, want)
	}
	if got := netshDeleteRule(); got != "advfirewall firewall delete rule name=RelayTCP" {
		t.Errorf("delete rule: %s", got)
	}
	if got := netshShowRule(); got != "advfirewall firewall show rule name=RelayTCP verbose" {
		t.Errorf("show rule: %s", got)
	}
}

// TestFirewallNote reads netsh's answers to "advfirewall firewall show
// rule name=RelayTCP verbose" as testdata/netsh/ holds them. Their text is
// netsh's English output on Windows 10 and 11, CRLF line ends: a blank
// line, "Rule Name:" and the name, a line of 70 dashes, then one
// "Field:" per line padded to column 39 (Description only with verbose;
// Program for a program rule), "Ok." at the end; and, for no rule,
// "No rules match the specified criteria." with exit code 1. Microsoft's
// reference for the command (learn.microsoft.com, "Netsh AdvFirewall
// Firewall Commands", previous-versions/windows/it-pro/
// windows-server-2008-r2-and-2008/dd734783, "show rule") documents its
// parameters, not a sample of this output: the field names are the ones
// netsh prints and that wf.msc's columns match (Enabled, Profiles,
// Program, Action). scripts/wine/netsh-recorder prints the same form.
func TestFirewallNote(t *testing.T) {
	read := func(name string) string {
		data, err := netshAnswers.ReadFile("testdata/netsh/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	rules, ok := parseShownRules(read("show-rule-enabled.txt"))
	if !ok || len(rules) != 1 || !rules[0].enabled || rules[0].profiles != "Domain,Private" || rules[0].program != `C:\Program Files\RelayTCP\relaytcp.exe` {
		t.Errorf("the enabled rule read as %+v, %v", rules, ok)
	}
	advice := "other machines may not reach the routes (relaytcp firewall add, elevated, adds it; see docs/firewall.md)"
	for _, tt := range []struct {
		file string
		code int
		want string
	}{
		{"show-rule-enabled.txt", 0, ""},
		{"show-rule-two.txt", 0, ""}, // one of them is enabled
		{"show-rule-disabled.txt", 0, "Firewall: the inbound rule RelayTCP is disabled in Windows Firewall: " + advice},
		{"show-rule-none.txt", 1, "Firewall: no inbound rule RelayTCP in Windows Firewall: " + advice},
	} {
		if got := firewallNote(tt.code, read(tt.file)); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.file, got, tt.want)
		}
	}
	// What cannot be read says nothing: wine's netsh (a silent stub), a
	// system in another language, a firewall service that does not run.
	for _, tt := range []struct {
		code int
		out  string
	}{
		{0, ""},
		{0, "\r\nRegelname:                            RelayTCP\r\nAktiviert:                            Nein\r\nOk.\r\n"},
		{1, "An error occurred while attempting to contact the Windows Firewall service. Make sure that the service is running and try your request again.\r\n"},
	} {
		if got := firewallNote(tt.code, tt.out); got != "" {
			t.Errorf("firewallNote(%d, %q) = %q; want nothing", tt.code, tt.out, got)
		}
	}
}

// TestNetshError: a failed netsh command names the command, its exit
// code and what netsh said, on one line.
func TestNetshError(t *testing.T) {
	err := &netshError{netshDeleteRule(), 1, "\r\nThe requested operation requires elevation (Run as administrator).\r\n\r\n"}
	want := "netsh advfirewall firewall delete rule name=RelayTCP: exit code 1: The requested operation requires elevation (Run as administrator)."
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err.Error(), want)
	}
	if strings.Contains((&netshError{"x", 5, ""}).Error(), ":  ") {
		t.Error("an empty message leaves a gap")
	}
}

// TestNetshSetRule: the rule there already gets the exe, the profiles, and
// is enabled and allowed again, nothing more: remote addresses stay.
func TestNetshSetRule(t *testing.T) {
	got := netshSetRule(`C:\Program Files\RelayTCP\relaytcp.exe`, []string{"domain", "private", "public"})
	want := `advfirewall firewall set rule name=RelayTCP new program="C:\Program Files\RelayTCP\relaytcp.exe" enable=yes action=allow profile=domain,private,public`
	if got != want {
		t.Errorf("set rule:\n got %s\nwant %s", got, want)
	}
}
