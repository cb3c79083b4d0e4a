//go:build !windows

package main

import (
	"os"
	"strings"
)

// commandLine is the arguments, joined: there is no raw command line
// outside Windows (the recorder runs under wine; this lets it build
// everywhere).
func commandLine() string { return strings.Join(os.Args[1:], " ") }
