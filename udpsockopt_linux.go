package main

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rcvBufCapHint says what capped a receive buffer, and what lifts the cap.
const rcvBufCapHint = "(net.core.rmem_max); run as root or raise net.core.rmem_max"

// setRcvBuf gives socket fd a receive buffer of n bytes and returns what
// it got. SO_RCVBUF is capped by net.core.rmem_max; past it SO_RCVBUFFORCE
// works for root (CAP_NET_ADMIN), and fails with EPERM for others, who keep
// the cap. Linux doubles the value set, for its bookkeeping, and reports
// the double: granted is in the same terms as n.
func setRcvBuf(fd uintptr, n int) (granted int, forced bool, err error) {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n); err != nil {
		got, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		return got / 2, false, os.NewSyscallError("setsockopt SO_RCVBUF", err)
	}
	got, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0, false, os.NewSyscallError("getsockopt SO_RCVBUF", err)
	}
	if granted = got / 2; granted >= n {
		return n, false, nil
	}
	if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
		return granted, false, nil
	}
	return n, true, nil
}

// applyRcvBuf gives socket fd the buffer another socket of its route was
// granted, as it was (forced: with SO_RCVBUFFORCE), in one system call.
// Should it fail, the socket keeps the system's default.
func applyRcvBuf(fd uintptr, n int, forced bool) {
	opt := unix.SO_RCVBUF
	if forced {
		opt = unix.SO_RCVBUFFORCE
	}
	unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n)
}

// countDrops makes socket fd hand the kernel's count of the datagrams it
// dropped with each datagram it receives (SO_RXQ_OVFL: readDatagrams reads
// it). It costs nothing until a datagram has been dropped.
func countDrops(fd uintptr) {
	unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
}

// skMeminfoDrops is the place of the drop count in SO_MEMINFO's answer
// (linux/sock_diag.h, SK_MEMINFO_DROPS, since Linux 4.6).
const skMeminfoDrops = 8

// socketDropCount returns the kernel's count of the datagrams socket fd
// dropped (SO_MEMINFO), if the kernel tells.
func socketDropCount(fd uintptr) (uint32, bool) {
	var info [16]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 || size < (skMeminfoDrops+1)*4 {
		return 0, false
	}
	return info[skMeminfoDrops], true
}
