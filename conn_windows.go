package main

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/windows"
)

// sioTCPInfo is SIO_TCP_INFO (mstcpip.h, Windows 10 1703 and later): a TCP
// socket's TCP_INFO_v0.
const sioTCPInfo = windows.IOC_INOUT | windows.IOC_VENDOR | 39

// tcpInfoV0 is TCP_INFO_v0 (88 bytes, the same for 386 and amd64): its
// State, a TCPSTATE, is all the stall watch reads.
type tcpInfoV0 struct {
	State uint32
	_     [84]byte
}

// TCPSTATE values that follow the peer's FIN or a reset.
const (
	tcpStateClosed    = 0
	tcpStateCloseWait = 7
	tcpStateClosing   = 8
	tcpStateLastAck   = 9
	tcpStateTimeWait  = 10
)

// peerEnded reports whether c's peer has ended its side, by its FIN or by a
// reset, whether or not the bytes before it have been read (the stall
// watch: halfConn.checkStall). A Windows without SIO_TCP_INFO says
// nothing, and the watch cuts nothing.
func peerEnded(c *net.TCPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ended := false
	raw.Control(func(fd uintptr) {
		var version uint32 // TCP_INFO_v0
		var info tcpInfoV0
		var n uint32
		err := windows.WSAIoctl(windows.Handle(fd), sioTCPInfo,
			(*byte)(unsafe.Pointer(&version)), uint32(unsafe.Sizeof(version)),
			(*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), &n, nil, 0)
		if err != nil {
			// A reset connection may have no TCP state left to report.
			ended = errors.Is(err, windows.WSAECONNRESET) || errors.Is(err, windows.WSAECONNABORTED) || errors.Is(err, windows.WSAENOTCONN)
			return
		}
		switch info.State {
		case tcpStateClosed, tcpStateCloseWait, tcpStateClosing, tcpStateLastAck, tcpStateTimeWait:
			ended = true
		}
	})
	return ended
}
