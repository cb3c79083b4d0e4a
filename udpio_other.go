//go:build !linux

package main

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// readDatagrams calls handle for every datagram c receives until c is
// closed, with a buffer of its own. Errors a socket reports for an earlier
// datagram (Windows' WSAECONNRESET after an ICMP port unreachable, say) are
// skipped.
func readDatagrams(c *net.UDPConn, handle func(data []byte, from netip.AddrPort)) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // not a busy loop on a failing socket
			continue
		}
		handle(buf[:n], from)
	}
}
