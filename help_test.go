package main

import (
	"strings"
	"testing"
	"time"
)

// TestUnknownCommand: a word that names no command is refused as one, with
// the nearest command when there is one, exit code 2; it used to be read as
// the relay's port ("missing remoteHost, remotePort").
func TestUnknownCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, `relaytcp: unknown command "stauts" (did you mean "status"?)`},
		{[]string{"rout", "list"}, `relaytcp: unknown command "rout" (did you mean "route"?)`},
		{[]string{"stp"}, `relaytcp: unknown command "stp" (did you mean "stop"?)`},
		{[]string{"backends", "disable"}, `relaytcp: unknown command "backends" (did you mean "backend"?)`},
		{[]string{"adm"}, `relaytcp: unknown command "adm" (did you mean "admin"?)`},
		{[]string{"frobnicate"}, `relaytcp: unknown command "frobnicate"`},
		{[]string{"abc", "host", "80"}, `relaytcp: unknown command "abc"`},
		{[]string{"help", "nonsense"}, `relaytcp: unknown command "nonsense"`},
		{[]string{"help", "stauts"}, `relaytcp: unknown command "stauts" (did you mean "status"?)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			p := startProc(t, tempDir(t), tt.args...)
			if code := p.wait(t, 20*time.Second); code != exitUsage {
				t.Fatalf("exit code %d; want %d\n%s", code, exitUsage, p.output())
			}
			got := p.stderrLines()
			if len(got) != 2 || got[0] != tt.want || got[1] != usageHint {
				t.Fatalf("stderr %q; want %q, then %q", got, tt.want, usageHint)
			}
		})
	}
}

// TestHelpCommand: "relaytcp help" is -h, "relaytcp help COMMAND" is
// "relaytcp COMMAND -h"; both exit 0.
func TestHelpCommand(t *testing.T) {
	h := startProc(t, tempDir(t), "-h")
	h.wait(t, 20*time.Second)
	p := startProc(t, tempDir(t), "help")
	if code := p.wait(t, 20*time.Second); code != 0 || p.output() != h.output() || !strings.Contains(p.output(), "  relaytcp help ") {
		t.Errorf("help: exit %d\n%s\nwant the output of -h, which lists help:\n%s", code, p.output(), h.output())
	}
	for _, name := range []string{"route", "status", "help"} {
		want := startProc(t, tempDir(t), name, "-h")
		want.wait(t, 20*time.Second)
		p := startProc(t, tempDir(t), "help", name)
		if code := p.wait(t, 20*time.Second); code != 0 || p.output() != want.output() || !strings.HasPrefix(p.output(), "stdout:\nusage: relaytcp "+name) {
			t.Errorf("help %s: exit %d\n%s\nwant the output of %s -h:\n%s", name, code, p.output(), name, want.output())
		}
	}
	p = startProc(t, tempDir(t), "help", "route", "status")
	if code := p.wait(t, 20*time.Second); code != exitUsage || !strings.Contains(p.output(), `relaytcp help: unexpected argument "status"`) {
		t.Errorf("help route status: exit %d\n%s", code, p.output())
	}
}

// TestNoArguments: no arguments prints the usage line and where to find
// more, as a usage error (exit 2); it used to say "missing listenPort, ...".
func TestNoArguments(t *testing.T) {
	p := startProc(t, tempDir(t))
	if code := p.wait(t, 20*time.Second); code != exitUsage {
		t.Fatalf("exit code %d; want %d\n%s", code, exitUsage, p.output())
	}
	if got := p.stderrLines(); len(got) != 2 || got[0] != usageLine || got[1] != usageHint {
		t.Fatalf("stderr %q; want the usage line, then %q", got, usageHint)
	}
}

// TestSuggestCommand: the suggestion is the command nearest to the word
// (one edit, a swap of two letters counting as one, or two edits; or a
// prefix), and none when several are as near or none is.
func TestSuggestCommand(t *testing.T) {
	for word, want := range map[string]string{
		"stauts": "status", "statsu": "status", "stat": "status", "sta": "",
		"start": "start", "strat": "start", "servce": "service", "serv": "service",
		"versoin": "version", "instal": "install", "uninstal": "uninstall",
		"x": "", "hello": "help", "zzzzzz": "", "st": "",
	} {
		if got := suggestCommand(word); got != want {
			t.Errorf("suggestCommand(%q) = %q; want %q", word, got, want)
		}
	}
}
