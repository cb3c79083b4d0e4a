package main

import (
	"strings"

	"golang.org/x/sys/windows"
)

// commandLine is the process's command line after its program name, as
// the caller wrote it: quotes included, which os.Args would take out.
func commandLine() string {
	line := strings.TrimLeft(windows.UTF16PtrToString(windows.GetCommandLine()), " ")
	if strings.HasPrefix(line, `"`) {
		if end := strings.Index(line[1:], `"`); end >= 0 {
			return strings.TrimSpace(line[end+2:])
		}
		return ""
	}
	_, rest, _ := strings.Cut(line, " ")
	return strings.TrimSpace(rest)
}
