package main

// Counting what a UDP route does not relay, by reason, so that an
// administrator can tell a burst from a policy and from a fault (README,
// "UDP routes"): queue (a receive queue was full), denied (allow=/deny=),
// maxconn (a cap) and backend (none could be reached, or it refused).
//
// The kernel counts the datagrams a socket drops because its receive queue
// is full. On Linux each socket of a UDP route hands that count over with
// every datagram it receives once it has dropped one (SO_RXQ_OVFL, read by
// readDatagrams without a system call of its own), and Status reads it from
// the route's listening sockets (SO_MEMINFO, one system call per socket),
// so that the drops at the end of a burst show before the next datagram.
// A session's socket is read when the session ends.

import (
	"net"
	"sync/atomic"
)

// socketDrops is a socket's count of datagrams the kernel dropped because
// its receive queue was full, as far as the relay has seen it (Linux; the
// other systems do not tell, and it stays 0). The kernel's counter is 32
// bits; this one extends it: its low 32 bits are the kernel's value, and a
// value older than the one seen (it came with a datagram read after a
// fresher one was looked up) is ignored.
type socketDrops struct{ n atomic.Uint64 }

// note records the kernel's counter v.
func (d *socketDrops) note(v uint32) {
	for {
		old := d.n.Load()
		next := old&^0xffffffff | uint64(v)
		if next < old {
			next += 1 << 32 // the kernel's counter wrapped
		}
		if next == old || next-old >= 1<<31 { // unchanged, or older than old
			return
		}
		if d.n.CompareAndSwap(old, next) {
			return
		}
	}
}

// lookUp records the kernel's counter of socket c as it is now, where the
// system tells it.
func (d *socketDrops) lookUp(c *net.UDPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		if v, ok := socketDropCount(fd); ok {
			d.note(v)
		}
	})
}

// total is the datagrams dropped so far.
func (d *socketDrops) total() int64 { return int64(d.n.Load()) }

// dropHeld counts the n datagrams a session held while its backend was
// being connected, lost because it ended first: at a session cap (evicted),
// or for want of a backend (no backend could be reached, or none before
// the idle timeout). A stopping route's are not counted: it relays nothing
// more.
func (u *udpRoute) dropHeld(n int, reason error) {
	switch {
	case n == 0 || reason == errStopped:
	case reason == errEvicted:
		u.stats.udp.capDrops.Add(int64(n))
	default:
		u.stats.udp.backendDrops.Add(int64(n))
	}
}

// lookUp reads the kernel's drop counts of the route's listening
// sockets as they are now: a datagram brings the count of its socket, so
// without this the drops at the end of a burst would show only with the
// next datagram. (Sessions' sockets bring theirs with the backends'
// answers, and are read when they end: a lookup per session on every
// status would cost as many system calls as sessions.)
func (u *udpRoute) lookUp() {
	u.mu.Lock()
	socks := make([]*udpSock, 0, len(u.socks))
	for _, s := range u.socks {
		socks = append(socks, s)
	}
	u.mu.Unlock()
	for _, s := range socks {
		s.drops.lookUp(s.conn)
	}
}
