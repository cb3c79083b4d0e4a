//go:build unix && !linux

package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// rcvBufCapHint says what capped a receive buffer, and what lifts the cap.
const rcvBufCapHint = "(kern.ipc.maxsockbuf); raise kern.ipc.maxsockbuf"

// setRcvBuf gives socket fd a receive buffer of n bytes and returns what
// it got. The BSDs and macOS refuse a size over their cap (ENOBUFS) rather
// than cap it: the size is halved until it is taken.
func setRcvBuf(fd uintptr, n int) (granted int, forced bool, err error) {
	for size := n; size >= minRcvBuf; size /= 2 {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		if err == nil {
			return size, false, nil
		}
		if !errors.Is(err, unix.ENOBUFS) {
			break
		}
	}
	got, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	return got, false, os.NewSyscallError("setsockopt SO_RCVBUF", err)
}

// applyRcvBuf gives socket fd the buffer another socket of its route was
// granted, in one system call.
func applyRcvBuf(fd uintptr, n int, _ bool) {
	unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
}

// countDrops does nothing: these systems do not count a socket's drops.
func countDrops(uintptr) {}

// socketDropCount: these systems do not tell.
func socketDropCount(uintptr) (uint32, bool) { return 0, false }
