// Command netsh-recorder stands in for netsh.exe in the wine tests of the
// Windows Firewall rule (scripts/wine-service-test.sh,
// scripts/wine-msi-test.sh): wine's own netsh.exe is a silent stub that
// does nothing and exits 0, so the tests put this program at the path
// relaytcp runs, C:\windows\system32\netsh.exe, and read what it recorded.
//
// It keeps its state in C:\netsh-recorder (the test creates it):
//
//	calls.log  one line per call: its command line after the program name,
//	           as relaytcp wrote it (quotes kept)
//	trace.log  one line per call: when, which process, its exit code and
//	           how many rules there were before and after, then the command
//	           line (what a failed test prints to explain itself)
//	rules.txt  the rules added, one line each: the add command line
//	fail       when present, "CODE MESSAGE": every add and delete prints
//	           MESSAGE and exits with CODE, as netsh refusing a change does
//	lock       locked while a call runs: calls that overlap (two installers'
//	           actions, a test's netsh beside an installer's) take turns, so
//	           none reads rules.txt before another's change is written; a
//	           change is written to rules.txt.tmp and renamed over rules.txt,
//	           so a reader never sees a file half written
//
// and answers "advfirewall firewall add|set|delete|show rule name=N ..." as
// netsh does in English: set, delete and show with no such rule say "No
// rules match the specified criteria." with exit code 1; set changes the
// values given after "new" (the rule's line keeps its order, and gains the
// values it lacked); show prints each rule in netsh's form (Rule Name, a
// dashed line, Field: value).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stateDir is where the recorder keeps its files.
const stateDir = `C:\netsh-recorder`

func main() {
	line := commandLine()
	unlock, err := lockState()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netsh-recorder: %v\n", err)
		os.Exit(99)
	}
	appendFile(filepath.Join(stateDir, "calls.log"), line+"\n")
	before := len(readRules())
	out, code := answer(line)
	trace := fmt.Sprintf("%s pid %d exit %d rules %d->%d: %s\n",
		time.Now().Format("15:04:05.000"), os.Getpid(), code, before, len(readRules()), line)
	appendFile(filepath.Join(stateDir, "trace.log"), trace)
	unlock()
	fmt.Print(out)
	os.Exit(code)
}

// answer carries out the command line and returns what netsh prints and
// its exit code. It runs under the lock (lockState).
func answer(line string) (string, int) {
	words := splitCommandLine(line)
	if len(words) < 4 || words[0] != "advfirewall" || words[1] != "firewall" || words[3] != "rule" {
		return "The following command was not found: " + line + ".\n", 1
	}
	verb, opts := words[2], options(words[4:])
	if verb != "show" {
		if data, err := os.ReadFile(filepath.Join(stateDir, "fail")); err == nil {
			code, msg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
			n, _ := strconv.Atoi(code)
			return "\r\n" + msg + "\r\n\r\n", n
		}
	}
	rules := readRules()
	named := func(r string) bool { return options(splitCommandLine(r)[4:])["name"] == opts["name"] }
	switch verb {
	case "add":
		writeRules(append(rules, line))
		return "Ok.\r\n\r\n", 0
	case "set":
		newAt := -1
		for i, w := range words {
			if w == "new" {
				newAt = i
			}
		}
		if newAt < 0 {
			return "\r\nA value after new is needed.\r\n\r\n", 1
		}
		changed := 0
		for i, r := range rules {
			if named(r) {
				rules[i] = setValues(r, words[newAt+1:])
				changed++
			}
		}
		if changed == 0 {
			return noMatch, 1
		}
		writeRules(rules)
		return fmt.Sprintf("\r\nUpdated %d rule(s).\r\nOk.\r\n\r\n", changed), 0
	case "delete":
		var kept []string
		for _, r := range rules {
			if !named(r) {
				kept = append(kept, r)
			}
		}
		if len(kept) == len(rules) {
			return noMatch, 1
		}
		writeRules(kept)
		return fmt.Sprintf("\r\nDeleted %d rule(s).\r\nOk.\r\n\r\n", len(rules)-len(kept)), 0
	case "show":
		var out strings.Builder
		for _, r := range rules {
			if named(r) {
				showRule(&out, options(splitCommandLine(r)[4:]))
			}
		}
		if out.Len() == 0 {
			return noMatch, 1
		}
		return out.String() + "Ok.\r\n\r\n", 0
	}
	return "The following command was not found: " + line + ".\n", 1
}

// noMatch is netsh's answer when no rule has the name.
const noMatch = "\r\nNo rules match the specified criteria.\r\n\r\n"

// readRules is the lines of rules.txt, blank ones aside.
func readRules() []string {
	data, _ := os.ReadFile(filepath.Join(stateDir, "rules.txt"))
	var rules []string
	for _, r := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(r) != "" {
			rules = append(rules, r)
		}
	}
	return rules
}

// writeRules replaces rules.txt with rules, whole: written beside it and
// renamed over it, so that a reader sees the old rules or the new ones.
func writeRules(rules []string) {
	path := filepath.Join(stateDir, "rules.txt")
	text := ""
	for _, r := range rules {
		text += r + "\n"
	}
	if err := os.WriteFile(path+".tmp", []byte(text), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		fail(err)
	}
}

// fail ends the recorder on a state file it cannot use: exit code 99, a
// code no netsh answer has.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "netsh-recorder: %v\n", err)
	os.Exit(99)
}

// showRule writes a rule to w as "show rule ... verbose" prints it.
func showRule(w io.Writer, o map[string]string) {
	field := func(name, value string) { fmt.Fprintf(w, "%-38s%s\r\n", name+":", value) }
	enabled := "Yes"
	if strings.EqualFold(o["enable"], "no") {
		enabled = "No"
	}
	var profiles []string
	for _, p := range strings.Split(o["profile"], ",") {
		if p != "" {
			profiles = append(profiles, strings.ToUpper(p[:1])+p[1:])
		}
	}
	fmt.Fprint(w, "\r\n")
	field("Rule Name", o["name"])
	fmt.Fprint(w, strings.Repeat("-", 70)+"\r\n")
	field("Description", o["description"])
	field("Enabled", enabled)
	field("Direction", map[string]string{"in": "In", "out": "Out"}[o["dir"]])
	field("Profiles", strings.Join(profiles, ","))
	field("Grouping", "")
	field("LocalIP", "Any")
	field("RemoteIP", "Any")
	field("Protocol", "Any")
	field("Edge traversal", "No")
	field("Program", o["program"])
	field("InterfaceTypes", "Any")
	field("Security", "NotRequired")
	field("Rule source", "Local Setting")
	field("Action", "Allow")
}

// setValues returns the rule's line with the NAME=VALUE words of values in
// place of its own (or added at its end). A value with a space, a program
// and a description are quoted, as relaytcp writes them.
func setValues(rule string, values []string) string {
	words := splitCommandLine(rule)
	for _, v := range values {
		key, _, _ := strings.Cut(v, "=")
		found := false
		for i, w := range words {
			if k, _, _ := strings.Cut(w, "="); strings.EqualFold(k, key) {
				words[i], found = v, true
			}
		}
		if !found {
			words = append(words, v)
		}
	}
	for i, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok && (strings.Contains(v, " ") || k == "program" || k == "description") {
			words[i] = k + `="` + v + `"`
		}
	}
	return strings.Join(words, " ")
}

// options maps the NAME=VALUE words of a command line.
func options(words []string) map[string]string {
	o := map[string]string{}
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok {
			o[strings.ToLower(k)] = v
		}
	}
	return o
}

// splitCommandLine splits a command line at the spaces outside quotes and
// takes the quotes out, as netsh reads program="C:\Program Files\x.exe".
func splitCommandLine(line string) []string {
	var words []string
	var word strings.Builder
	quoted, any := false, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted, any = !quoted, true
		case c == ' ' && !quoted:
			if any {
				words = append(words, word.String())
			}
			word.Reset()
			any = false
		default:
			word.WriteRune(c)
			any = true
		}
	}
	if any {
		words = append(words, word.String())
	}
	return words
}

func appendFile(path, text string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		fail(err)
	}
}
