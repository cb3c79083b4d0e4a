//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// watchEscape calls onEscape when the ESC key is pressed on the terminal f.
// It switches the terminal to cbreak mode (keys arrive at once, without echo;
// Ctrl-C still sends SIGINT). It returns a restore function that puts the
// terminal back, safe to call more than once, and whether f is a terminal;
// when it is not, nothing is changed or read.
func watchEscape(f *os.File, onEscape func()) (restore func(), isTerminal bool) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return func() {}, false
	}
	cbreak := *saved
	cbreak.Lflag &^= unix.ICANON | unix.ECHO
	cbreak.Cc[unix.VMIN] = 1
	cbreak.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &cbreak); err != nil {
		return func() {}, true
	}
	var once sync.Once
	restore = func() {
		once.Do(func() { unix.IoctlSetTermios(fd, ioctlSetTermios, saved) })
	}
	go readEscape(f, onEscape)
	return restore, true
}
