package main

import (
	"os"
	"sync"

	"golang.org/x/sys/windows"
)

// watchEscape calls onEscape when the ESC key is pressed on the console f.
// It turns off the console's line input and echo (Ctrl-C still interrupts).
// It returns a restore function that puts the console mode back, safe to
// call more than once, and whether f is a console; when it is not, nothing
// is changed or read.
func watchEscape(f *os.File, onEscape func()) (restore func(), isTerminal bool) {
	h := windows.Handle(f.Fd())
	var saved uint32
	if err := windows.GetConsoleMode(h, &saved); err != nil {
		return func() {}, false
	}
	keys := saved &^ (windows.ENABLE_LINE_INPUT | windows.ENABLE_ECHO_INPUT)
	if err := windows.SetConsoleMode(h, keys); err != nil {
		return func() {}, true
	}
	var once sync.Once
	restore = func() {
		once.Do(func() { windows.SetConsoleMode(h, saved) })
	}
	go readEscape(f, onEscape)
	return restore, true
}
