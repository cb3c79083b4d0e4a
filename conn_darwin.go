package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// TCP states (netinet/tcp_fsm.h) that follow the peer's FIN or a reset.
const (
	tcpsClosed    = 0
	tcpsCloseWait = 5
	tcpsClosing   = 7
	tcpsLastAck   = 8
	tcpsTimeWait  = 10
)

// peerEnded reports whether c's peer has ended its side, by its FIN or by a
// reset, whether or not the bytes before it have been read (the stall
// watch: halfConn.checkStall): TCP_CONNECTION_INFO's state says so.
func peerEnded(c *net.TCPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ended := false
	raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPConnectionInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
		if err != nil {
			return
		}
		switch info.State {
		case tcpsClosed, tcpsCloseWait, tcpsClosing, tcpsLastAck, tcpsTimeWait:
			ended = true
		}
	})
	return ended
}
