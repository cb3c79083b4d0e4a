package main

import (
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// copySplices: io.Copy between two *net.TCPConn splices here, so a
// connection that neither logs nor times out copies with it, and counts its
// bytes when a direction ends.
const copySplices = true

// socketGone reports whether c's connection has failed or been reset: its
// TCP state is CLOSE.
func socketGone(c *net.TCPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	gone := true
	raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		gone = err != nil || info.State == unix.BPF_TCP_CLOSE
	})
	return gone
}

// waitDelivered returns once c's peer has acknowledged what is queued for
// it (SIOCOUTQ), or that has not shrunk for drainStall, or stop reports
// true, checking every drainPoll (see engine.resetAfterDelivery).
func waitDelivered(c *net.TCPConn, stop func() bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	queued := func() int {
		n := 0
		if raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }) != nil {
			return 0
		}
		return n
	}
	left, since := queued(), time.Now()
	for left > 0 && !stop() && time.Since(since) < drainStall {
		time.Sleep(drainPoll)
		if n := queued(); n < left {
			left, since = n, time.Now()
		}
	}
}

// discardUnread reads and drops what c's peer sent that is still queued in
// the socket, without waiting.
func discardUnread(c *net.TCPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		var buf [16 << 10]byte
		for range 64 {
			if n, err := unix.Read(int(fd), buf[:]); n <= 0 || err != nil {
				return
			}
		}
	})
}

// endWasCut reports whether the end just read from src is a reset rather
// than the peer's end. A socket that is still open (not CLOSE) had a real
// end. Once it is closed, its pending error says: ECONNRESET (or another)
// a cut, EPIPE a reset after the end. No error means a write of the other
// direction (writerDone: that direction is over) took it: that direction
// marks cut before it is done, so wait for it (it is ending: its write
// failed, or it already ended).
func endWasCut(src *net.TCPConn, cut, writerDone *atomic.Bool) bool {
	if cut.Load() {
		return true
	}
	if !socketGone(src) {
		return false
	}
	raw, err := src.SyscallConn()
	if err != nil {
		return false
	}
	soErr := 0
	raw.Control(func(fd uintptr) { soErr, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR) })
	switch unix.Errno(soErr) {
	case 0:
		for range 1000 {
			if writerDone.Load() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		return cut.Load()
	case unix.EPIPE:
		return false
	default:
		return true
	}
}
