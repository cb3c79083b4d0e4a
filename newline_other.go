//go:build !windows

package main

// newline ends the lines of the log files.
const newline = "\n"
