package main

import "io"

// escKey is the byte the ESC key sends.
const escKey = 0x1b

// readEscape reads key presses from r until the ESC key, then calls
// onEscape. It returns at the first read error (end of input).
func readEscape(r io.Reader, onEscape func()) {
	buf := make([]byte, 64)
	for {
		n, err := r.Read(buf)
		if isEscapeKey(buf[:n]) {
			onEscape()
			return
		}
		if err != nil {
			return
		}
	}
}

// isEscapeKey reports whether one read from the terminal holds a press of
// the ESC key itself, not the escape sequence of another key: the arrows and
// function keys send ESC followed by '[' or 'O' in the same read.
func isEscapeKey(p []byte) bool {
	for i, b := range p {
		if b == escKey && (i+1 == len(p) || (p[i+1] != '[' && p[i+1] != 'O')) {
			return true
		}
	}
	return false
}
