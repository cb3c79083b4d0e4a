//go:build !windows

package main

import (
	"io"
	"os"
)

// withElevation runs the command line: elevation is a Windows matter (on
// Linux the files and systemctl say what root must do).
func withElevation(args []string, stdin *os.File, stdout, stderr io.Writer, run runFunc) int {
	return run(args, stdin, stdout, stderr)
}
