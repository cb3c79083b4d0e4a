//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package main

import "os"

// watchEscape is not supported here: only signals stop the relay.
func watchEscape(f *os.File, onEscape func()) (restore func(), isTerminal bool) {
	return func() {}, false
}
