package main

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is the buffers of one recvmmsg: udpBatchSize datagrams of up to
// 64 KiB each, their addresses, and their control messages (the socket's
// drop count, SO_RXQ_OVFL). Batches are pooled: a socket that waits for
// datagrams holds none.
const udpBatchSize = 8

type udpBatch struct {
	bufs  [udpBatchSize][1 << 16]byte
	iovs  [udpBatchSize]unix.Iovec
	names [udpBatchSize]unix.RawSockaddrAny
	ctrls [udpBatchSize][controlSize]byte
	hdrs  [udpBatchSize]mmsghdr
}

// controlSize holds one control message of 4 bytes (CMSG_SPACE(4)), and
// room to spare; the buffer's start is aligned as cmsghdr wants (8 bytes,
// after names).
const controlSize = 32

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

var udpBatches = sync.Pool{New: func() any {
	b := new(udpBatch)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Control = &b.ctrls[i][0]
	}
	return b
}}

// readDatagrams calls handle for every datagram c receives until c is
// closed. It waits in the runtime's poller holding no buffer, and reads up
// to udpBatchSize datagrams per system call (recvmmsg) into a pooled batch
// while they come. handle must not keep data. Errors a socket reports for
// an earlier datagram (an ICMP port unreachable, say) are skipped, and
// counted in refused if it is not nil. The kernel's drop count that comes
// with the datagrams once the socket has dropped one (countDrops) goes to
// drops.
func readDatagrams(c *net.UDPConn, drops *socketDrops, refused *atomic.Int64, handle func(data []byte, from netip.AddrPort)) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	for {
		var failed unix.Errno
		err := raw.Read(func(fd uintptr) bool {
			b := udpBatches.Get().(*udpBatch)
			defer udpBatches.Put(b)
			for {
				for i := range b.hdrs {
					b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrAny
					b.hdrs[i].hdr.SetControllen(controlSize)
					b.hdrs[i].hdr.Flags = 0
				}
				r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), udpBatchSize,
					unix.MSG_DONTWAIT, 0, 0)
				switch {
				case errno == unix.EAGAIN:
					return false // wait for more, holding nothing
				case errno == unix.EINTR:
					continue
				case errno == unix.ECONNREFUSED || errno == unix.EHOSTUNREACH || errno == unix.ENETUNREACH:
					// An error of an earlier datagram (an ICMP
					// unreachable); the next read goes on.
					if refused != nil {
						refused.Add(1)
					}
					continue
				case errno != 0:
					failed = errno // out of memory, say: try again a little later
					return true
				}
				for i := range int(r) {
					var from netip.AddrPort
					if b.hdrs[i].hdr.Namelen > 0 {
						from = rawSockaddrAddrPort(&b.names[i])
					}
					if b.hdrs[i].hdr.Controllen > 0 {
						if v, ok := dropCountOf(b.ctrls[i][:b.hdrs[i].hdr.Controllen]); ok {
							drops.note(v)
						}
					}
					handle(b.bufs[i][:b.hdrs[i].len], from)
				}
			}
		})
		if err != nil {
			return // closed
		}
		if failed != 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// dropCountOf finds the kernel's drop count (SOL_SOCKET, SO_RXQ_OVFL) in a
// datagram's control messages, without allocating.
func dropCountOf(ctrl []byte) (uint32, bool) {
	for len(ctrl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(ctrl) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && h.Len >= unix.SizeofCmsghdr+4 {
			return *(*uint32)(unsafe.Pointer(&ctrl[unix.SizeofCmsghdr])), true
		}
		next := unix.CmsgSpace(int(h.Len) - unix.SizeofCmsghdr)
		if next > len(ctrl) {
			return 0, false
		}
		ctrl = ctrl[next:]
	}
	return 0, false
}
