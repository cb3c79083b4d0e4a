package main

// The engine's part of the PROXY protocol (proxyproto.go): reading a
// client's header before a backend is picked (acceptproxy=1), and sending
// one to the backend once it answers (proxy=v1|v2).

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// awaitHeader makes a new flow wait for its client's PROXY header, for at
// most the connect timeout, before a backend is picked.
func (e *engine) awaitHeader(f *flow) {
	f.dialing.awaitingHeader = true
	timeout := f.cfg.connectTimeout()
	f.timer = time.AfterFunc(timeout, func() {
		e.submit(func() {
			if f.dialing != nil && f.dialing.awaitingHeader && !f.ended {
				e.refuseHeader(f, fmt.Errorf("no PROXY header within %v", timeout))
			}
		})
	})
	e.readHeader(f) // it may have come with the connection
}

// readHeader looks at what the client has sent (without taking it): once
// it holds a whole header, the header alone is read, the client is the one
// it names, and a backend is picked; the bytes after it stay in the socket
// and are relayed as usual. A client that sends something else, or ends
// before its header does, is refused.
func (e *engine) readHeader(f *flow) {
	n, _, err := unix.Recvfrom(f.fd[sideClient], e.buf[:maxProxyV2], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return
	case err != nil:
		e.refuseHeader(f, fmt.Errorf("no PROXY header: %w", os.NewSyscallError("recvfrom", err)))
		return
	}
	h, size, err := parseProxyHeader(e.buf[:n])
	if errors.Is(err, errProxyIncomplete) {
		if n == 0 || f.peerDone[sideClient] {
			what := "truncated PROXY header"
			if n == 0 {
				what = "no PROXY header"
			}
			e.refuseHeader(f, fmt.Errorf("%s: the client ended after %d bytes", what, n))
		}
		return // the rest comes with the next edge
	}
	if err != nil {
		e.refuseHeader(f, err)
		return
	}
	if got, err := rawRead(f.fd[sideClient], e.buf[:size]); got != size {
		e.refuseHeader(f, fmt.Errorf("read the PROXY header: %d of %d bytes, %v", got, size, err))
		return
	}
	f.dialing.awaitingHeader = false
	f.timer.Stop()
	f.timer = nil
	if !h.local {
		f.dialing.clientAP, f.dialing.dstAP = h.src, h.dst
		f.client = h.src.String()
	}
	if why := f.cfg.denies(f.dialing.clientAP.Addr()); why != "" {
		f.l.refused(f.cfg, &f.l.stats.slots[e.index], f.client, why, refusedByACL)
		e.finish(f, true)
		return
	}
	var admitted bool
	if f.hold, admitted = f.l.admitNamed(f.cfg, f.dialing.clientAP); !admitted { // limits: per client (clientlimits.go)
		e.finish(f, true)
		return
	}
	e.nextBackend(f, nil)
}

// refuseHeader refuses a client whose PROXY header is missing or invalid:
// it is reset without a byte relayed, and reported.
func (e *engine) refuseHeader(f *flow, why error) {
	f.dialing.awaitingHeader = false
	f.l.refused(f.cfg, &f.l.stats.slots[e.index], f.client, why.Error(), refusedByProxy)
	e.finish(f, true)
}

// sendProxyHeader writes the route's PROXY header to a backend that has
// just answered, before anything else: the client, and the address it
// connected to. What the socket does not take now goes first with the
// client's bytes; it is not counted as relayed.
func (e *engine) sendProxyHeader(f *flow) error {
	dst := f.dialing.dstAP
	if !dst.IsValid() {
		var err error
		if dst, err = rawGetsockname(f.fd[sideClient]); err != nil {
			return os.NewSyscallError("getsockname", err)
		}
	}
	hdr := proxyHeaderBytes(f.cfg.Proxy, f.dialing.clientAP, dst)
	n, err := rawWrite(f.fd[sideRemote], hdr)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		return os.NewSyscallError("write", err)
	}
	if n = max(n, 0); n < len(hdr) {
		f.dirs[0].pending = hdr[n:]
		f.dirs[0].bytes -= int64(len(hdr) - n) // counted when written, but not relayed
	}
	return nil
}
