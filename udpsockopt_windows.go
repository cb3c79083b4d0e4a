package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// rcvBufCapHint says what capped a receive buffer.
const rcvBufCapHint = "(the system's limit)"

// setRcvBuf gives socket fd a receive buffer of n bytes (Windows' default
// is 64 KiB) and returns what it got.
func setRcvBuf(fd uintptr, n int) (granted int, forced bool, err error) {
	if err := windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_RCVBUF, n); err != nil {
		got, _ := windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_RCVBUF)
		return got, false, os.NewSyscallError("setsockopt SO_RCVBUF", err)
	}
	got, err := windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_RCVBUF)
	if err != nil {
		return 0, false, os.NewSyscallError("getsockopt SO_RCVBUF", err)
	}
	return min(got, n), false, nil
}

// applyRcvBuf gives socket fd the buffer another socket of its route was
// granted, in one system call.
func applyRcvBuf(fd uintptr, n int, _ bool) {
	windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_RCVBUF, n)
}

// countDrops does nothing: Windows does not count a socket's drops.
func countDrops(uintptr) {}

// socketDropCount: Windows does not tell.
func socketDropCount(uintptr) (uint32, bool) { return 0, false }
