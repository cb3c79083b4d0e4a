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
//	rules.txt  the rules added, one line each: the add command line
//	fail       when present, "CODE MESSAGE": every add and delete prints
//	           MESSAGE and exits with CODE, as netsh refusing a change does
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
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// stateDir is where the recorder keeps its files.
const stateDir = `C:\netsh-recorder`

func main() {
	line := commandLine()
	appendFile(filepath.Join(stateDir, "calls.log"), line+"\n")
	words := splitCommandLine(line)
	if len(words) < 4 || words[0] != "advfirewall" || words[1] != "firewall" || words[3] != "rule" {
		fmt.Println("The following command was not found: " + line + ".")
		os.Exit(1)
	}
	verb, opts := words[2], options(words[4:])
	if verb != "show" {
		if data, err := os.ReadFile(filepath.Join(stateDir, "fail")); err == nil {
			code, msg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
			n, _ := strconv.Atoi(code)
			fmt.Print("\r\n" + msg + "\r\n\r\n")
			os.Exit(n)
		}
	}
	rulesFile := filepath.Join(stateDir, "rules.txt")
	data, _ := os.ReadFile(rulesFile)
	var rules []string
	for _, r := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(r) != "" {
			rules = append(rules, r)
		}
	}
	named := func(r string) bool { return options(splitCommandLine(r)[4:])["name"] == opts["name"] }
	switch verb {
	case "add":
		appendFile(rulesFile, line+"\n")
		fmt.Print("Ok.\r\n\r\n")
	case "set":
		newAt := -1
		for i, w := range words {
			if w == "new" {
				newAt = i
			}
		}
		if newAt < 0 {
			fmt.Print("\r\nA value after new is needed.\r\n\r\n")
			os.Exit(1)
		}
		changed := 0
		for i, r := range rules {
			if named(r) {
				rules[i] = setValues(r, words[newAt+1:])
				changed++
			}
		}
		if changed == 0 {
			noMatch()
		}
		os.WriteFile(rulesFile, []byte(strings.Join(rules, "\n")+"\n"), 0o644)
		fmt.Printf("\r\nUpdated %d rule(s).\r\nOk.\r\n\r\n", changed)
	case "delete":
		var kept []string
		for _, r := range rules {
			if !named(r) {
				kept = append(kept, r)
			}
		}
		if len(kept) == len(rules) {
			noMatch()
		}
		os.WriteFile(rulesFile, []byte(strings.Join(kept, "\n")+"\n"), 0o644)
		fmt.Printf("\r\nDeleted %d rule(s).\r\nOk.\r\n\r\n", len(rules)-len(kept))
	case "show":
		shown := 0
		for _, r := range rules {
			if named(r) {
				showRule(options(splitCommandLine(r)[4:]))
				shown++
			}
		}
		if shown == 0 {
			noMatch()
		}
		fmt.Print("Ok.\r\n\r\n")
	default:
		fmt.Println("The following command was not found: " + line + ".")
		os.Exit(1)
	}
}

// noMatch is netsh's answer when no rule has the name.
func noMatch() {
	fmt.Print("\r\nNo rules match the specified criteria.\r\n\r\n")
	os.Exit(1)
}

// showRule prints a rule as "show rule ... verbose" does.
func showRule(o map[string]string) {
	field := func(name, value string) { fmt.Printf("%-38s%s\r\n", name+":", value) }
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
	fmt.Print("\r\n")
	field("Rule Name", o["name"])
	fmt.Print(strings.Repeat("-", 70) + "\r\n")
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
		fmt.Fprintf(os.Stderr, "netsh-recorder: %v\n", err)
		os.Exit(99)
	}
	defer f.Close()
	f.WriteString(text)
}
