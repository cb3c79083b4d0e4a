package main

// Reading the message a client sends before its data (a PROXY header, a
// TLS ClientHello): bytes are read as they come until the message's parser
// has all of it, within one deadline.

import (
	"errors"
	"net"
	"time"
)

// prefixMessage says how readPrefix reads one kind of message.
type prefixMessage struct {
	// size is the buffer's first size; it doubles as bytes come, up to
	// limit, which parse must reach a verdict within.
	size, limit int
	// incomplete is the error parse returns while it needs more bytes.
	incomplete error
	// parse looks at all the bytes so far: nil when they hold the whole
	// message, incomplete to read on, another error to give up with.
	parse func(buf []byte) error
	// ended is told of a read that brought no bytes (the client closed,
	// the timeout passed, an error) with the number of bytes so far: its
	// error ends the read, nil reads on.
	ended func(n int, timedOut bool, err error) error
}

// readPrefix reads c's first bytes, waiting at most timeout for all of
// them, until m.parse finds its message in them, and returns every byte
// it read: the message and those the client sent after it, or on an error
// those that came before it.
func readPrefix(c net.Conn, timeout time.Duration, m prefixMessage) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, m.size)
	for {
		err := m.parse(buf)
		if !errors.Is(err, m.incomplete) {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(2*cap(buf), m.limit)-len(buf))...)[:len(buf)]
		}
		n, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			continue
		}
		var ne net.Error
		timedOut := errors.As(rerr, &ne) && ne.Timeout()
		if err := m.ended(len(buf), timedOut, rerr); err != nil {
			return buf, err
		}
	}
}
