package main

import "strings"

// osUsage is a command's usage without -config PATH, which names the
// configuration file of Linux: on Windows the configuration is the
// registry's Parameters key.
func osUsage(usage string) string {
	return strings.TrimSpace(strings.ReplaceAll(usage, "[-config PATH]", ""))
}

// osCommandHelp is what a command's help says on Windows only: where the
// configuration lives, for the commands that read it, and that a command
// needing an administrator asks for it.
func osCommandHelp(c command) string {
	var more []string
	if strings.Contains(c.usage, "-config") {
		more = append(more, `The configuration is in the registry: HKLM\`+parametersKey+`.`)
	}
	if commandNeedsElevation(c.name) {
		who := "It needs"
		if c.name == "route" {
			who = "route add, delete, disable and enable need" // list does not
		}
		more = append(more, who+" an elevated process: started from a normal prompt, relaytcp asks\n"+
			"Windows to run it as administrator (the UAC prompt), and says so when that is refused.")
	}
	return strings.Join(more, "\n")
}
