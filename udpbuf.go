package main

// The receive buffers of UDP routes' sockets. A burst of datagrams waits
// in the kernel's receive queue of the route's socket until the relay reads
// it; the system's default queue (net.core.rmem_default on Linux, 208 KiB:
// about 256 small datagrams) overflows under a burst of a few hundred
// clients, and a datagram that does not fit is dropped. So every socket of
// a UDP route, its listening sockets and its sessions' backend sockets,
// asks for rcvbuf= (4 MiB by default). The buffer is a limit, not an
// allocation: it costs memory only while datagrams wait in it.
//
// Where the system caps it (net.core.rmem_max on Linux), SO_RCVBUFFORCE
// goes past the cap when the relay may (root, or CAP_NET_ADMIN); else the
// route keeps what it got and says so once, with a BufferCapped event.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Receive buffer sizes: the default of a UDP route's sockets and the
// bounds of rcvbuf=.
const (
	defaultRcvBuf = 4 << 20
	minRcvBuf     = 4 << 10
	maxRcvBuf     = 1 << 30
)

// parseRcvBuf parses rcvbuf='s value: bytes, or a number of KiB (256K) or
// MiB (4M), from 4K to 1024M.
func parseRcvBuf(s string) (int, error) {
	digits, unit := s, 1
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		digits, unit = s[:len(s)-1], 1<<10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		digits, unit = s[:len(s)-1], 1<<20
	}
	n, err := strconv.Atoi(digits)
	if err != nil || strings.TrimLeft(digits, "0123456789") != "" || n < minRcvBuf/unit || n > maxRcvBuf/unit || n*unit < minRcvBuf {
		return 0, fmt.Errorf("invalid rcvbuf=%s: want a size from 4K to 1024M, in bytes or with K or M (powers of 1024), such as 256K or 4M", s)
	}
	return n * unit, nil
}

// formatRcvBuf writes a size as rcvbuf= takes it: 4M, 256K, or bytes.
func formatRcvBuf(n int) string {
	switch {
	case n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	}
	return strconv.Itoa(n)
}

// bufferSize writes a size for people: 4 MiB, 416 KiB, 5000 bytes.
func bufferSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

// rcvBuf is the receive buffer of a UDP route's sockets: the size asked
// (rcvbuf=, or defaultRcvBuf), and what the system granted its listening
// sockets (the smallest, for a range), and whether that took
// SO_RCVBUFFORCE. Its sessions' sockets get the same with one system call
// each.
type rcvBuf struct {
	asked, granted int
	forced         bool
	err            error       // the system refused the size (granted is then the socket's default)
	dial           *net.Dialer // for the sessions: their sockets get the same
}

// rcvBufFor is the buffer a UDP route asks for.
func rcvBufFor(rt Route) int {
	if rt.RcvBuf > 0 {
		return rt.RcvBuf
	}
	return defaultRcvBuf
}

// rcvBufControl returns a net.ListenConfig Control function that gives
// each listening socket the receive buffer asked and turns on its drop
// count (Linux), and records in got what the system granted.
func rcvBufControl(asked int, got *rcvBuf) func(network, address string, c syscall.RawConn) error {
	*got = rcvBuf{asked: asked, granted: asked}
	return func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			granted, forced, err := setRcvBuf(fd, asked)
			if err != nil && got.err == nil {
				got.err = err
			}
			if granted < got.granted {
				got.granted = granted
			}
			got.forced = got.forced || forced
			countDrops(fd)
		})
	}
}

// dialer is the net.Dialer of the route's sessions: their backend sockets
// get what its listening sockets got (nothing, the system's default, if
// the system refused the size).
func (b *rcvBuf) dialer() *net.Dialer {
	granted, forced, set := b.granted, b.forced, b.err == nil
	return &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			if set {
				applyRcvBuf(fd, granted, forced)
			}
			countDrops(fd)
		})
	}}
}

// shortfall says how the buffer granted falls short of the one asked, or
// "" if it does not.
func (b *rcvBuf) shortfall() string {
	if b.err != nil {
		return fmt.Sprintf("receive buffer %s asked: %v; it has %s", bufferSize(b.asked), b.err, bufferSize(b.granted))
	}
	if b.granted >= b.asked {
		return ""
	}
	return fmt.Sprintf("receive buffer %s asked, %s granted %s", bufferSize(b.asked), bufferSize(b.granted), rcvBufCapHint)
}
