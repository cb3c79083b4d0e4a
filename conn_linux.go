package main

import (
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// copySplices: io.Copy between two *net.TCPConn splices here, so a
// connection that neither logs nor times out copies with it, and counts its
// bytes when a direction ends. Such a connection is on the goroutine relay
// only when the engines could not start, and its splice's writes cannot be
// watched from outside: a side that stalls there is cut by idle= alone.
const copySplices = true

// tcpInfo returns c's TCP_INFO, or nil once c is closed or failing that.
func tcpInfo(c *net.TCPConn) *unix.TCPInfo {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var info *unix.TCPInfo
	raw.Control(func(fd uintptr) {
		info, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	return info
}

// socketGone reports whether c's connection has failed or been reset: its
// TCP state is CLOSE.
func socketGone(c *net.TCPConn) bool {
	info := tcpInfo(c)
	return info == nil || info.State == unix.BPF_TCP_CLOSE
}

// peerEnded reports whether c's peer has ended its side, by its FIN or by a
// reset, whether or not the bytes before it have been read: the TCP state
// is one that follows the peer's FIN, or CLOSE.
func peerEnded(c *net.TCPConn) bool {
	info := tcpInfo(c)
	if info == nil {
		return false
	}
	switch info.State {
	case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_LAST_ACK, unix.BPF_TCP_CLOSING, unix.BPF_TCP_TIME_WAIT, unix.BPF_TCP_CLOSE:
		return true
	}
	return false
}

// acknowledged returns the bytes c's peer has acknowledged (TCP_INFO's
// bytes_acked): it grows while the peer takes data, even during one long
// write.
func acknowledged(c *net.TCPConn) int64 {
	if info := tcpInfo(c); info != nil {
		return int64(info.Bytes_acked)
	}
	return 0
}

// waitDelivered waits until c's peer has acknowledged what is queued for it
// (SIOCOUTQ), checking every drainPoll, or until stop reports true (see
// engine.resetAfterDelivery). It reports false if that stopped shrinking
// for drainStall first: the peer stalled.
func waitDelivered(c *net.TCPConn, stop func() bool) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	queued := func() int {
		n := 0
		if raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }) != nil {
			return 0
		}
		return n
	}
	var clock stallClock
	left := queued()
	clock.start(-int64(left), time.Now())
	for left > 0 && !stop() {
		time.Sleep(drainPoll)
		left = queued()
		if clock.stalled(-int64(left), time.Now()) {
			return false
		}
	}
	return true
}

// discardQueued reads and drops what c's peer sent that is still queued in
// the socket, without waiting.
func discardQueued(c *net.TCPConn) {
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
