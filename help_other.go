//go:build !windows

package main

// osUsage is a command's usage as written in the list of commands: the
// configuration file's -config PATH is there.
func osUsage(usage string) string { return usage }

// osCommandHelp adds nothing here to a command's help.
func osCommandHelp(command) string { return "" }
