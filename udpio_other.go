//go:build !linux

package main

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
)

// readDatagrams calls handle for every datagram c receives until c is
// closed, with a buffer of its own. Errors a socket reports for an earlier
// datagram (Windows' WSAECONNRESET after an ICMP port unreachable, say) are
// skipped; a refusal (ECONNREFUSED: macOS, the BSDs) is counted in refused
// if it is not nil. These systems do not tell a socket's drops: drops
// stays as it is.
func readDatagrams(c *net.UDPConn, _ *socketDrops, refused *atomic.Int64, handle func(data []byte, from netip.AddrPort)) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if refused != nil && errors.Is(err, syscall.ECONNREFUSED) {
				refused.Add(1)
			}
			time.Sleep(time.Millisecond) // not a busy loop on a failing socket
			continue
		}
		handle(buf[:n], from)
	}
}
