package main

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The engine's system calls. Every socket and pipe the engine uses is
// non-blocking, so none of these calls waits (epollWaitRaw only briefly):
// they are made raw, without entering and leaving the scheduler's
// system-call state (x/sys/unix's wrappers do both for every call, a few
// percent of the relay's CPU at a high connection rate). The accept and
// connect wrappers also convert the address without allocating a Sockaddr.

// rawErr turns a raw call's errno into an error, nil for none.
func rawErr(errno unix.Errno) error {
	if errno != 0 {
		return errno
	}
	return nil
}

// epollWaitRaw is epoll_pwait without entering the scheduler's system-call
// state, the one call here that may wait (at most msec): the calling
// goroutine keeps its P while the kernel waits (engine.loop).
func epollWaitRaw(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func rawRead(fd int, p []byte) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), rawErr(errno)
}

func rawWrite(fd int, p []byte) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), rawErr(errno)
}

// rawClose closes fd. Sockets are never closed with a lingering timeout
// (closeReset sets a zero one), so close does not wait.
func rawClose(fd int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return rawErr(errno)
}

func rawShutdown(fd, how int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return rawErr(errno)
}

// rawSplice moves up to n bytes from rfd to wfd without offsets.
func rawSplice(rfd, wfd, n, flags int) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), uintptr(flags))
	return int(r), rawErr(errno)
}

func rawSocket(family, typ, proto int) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), uintptr(typ), uintptr(proto))
	return int(r), rawErr(errno)
}

func rawSetsockoptInt(fd, level, name, value int) error {
	v := int32(value)
	_, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&v)), 4, 0)
	return rawErr(errno)
}

func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return rawErr(errno)
}

// rawAccept4 accepts a client of the listening socket fd and returns its
// address, IPv4-mapped IPv6 addresses unmapped.
func rawAccept4(fd, flags int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)), uintptr(flags), 0, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	return int(r), rawSockaddrAddrPort(&rsa), nil
}

// rawGetsockname returns the local address of socket fd.
func rawGetsockname(fd int) (netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	return rawSockaddrAddrPort(&rsa), nil
}

// rawConnect starts connecting the non-blocking socket fd to ap.
func rawConnect(fd int, ap netip.AddrPort) error {
	var errno unix.Errno
	if ap.Addr().Is4() {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: networkPort(ap.Port()), Addr: ap.Addr().As4()}
		_, _, errno = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: networkPort(ap.Port()), Addr: ap.Addr().As16(), Scope_id: zoneID(ap.Addr().Zone())}
		_, _, errno = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
	}
	return rawErr(errno)
}
