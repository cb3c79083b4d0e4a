package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Idle connections without goroutines (Linux).
//
// A goroutine blocked in io.Copy holds its grown stack and, while splicing,
// a pipe (2 fds and the kernel's pipe buffer) for as long as its connection
// is idle: about 59 KiB of machine memory per idle relayed connection here
// (../shared/PERFORMANCE-FACTS.md). Instead, a direction with nothing to
// read parks in the idlePoller: its source socket is registered one-shot in
// an epoll set of our own, and no goroutine, buffer or pipe is held. When
// the socket becomes readable, the poller starts a goroutine that reads with
// a plain non-blocking read into a pooled buffer and writes it on; when a
// read fills the buffer the flow is bulk, and the goroutine lets the kernel
// move it with io.Copy between the two TCP connections (splice) until the
// flow pauses for spliceIdleGrace. Go's own netpoller keeps its registration of the same sockets;
// the two epoll sets do not interfere.

const (
	// pumpBufferSize is the read buffer of an active direction.
	pumpBufferSize = 16 << 10
	// spliceIdleGrace is how long a bulk direction waits for more data in
	// splice, holding a pipe, before it goes back to reading and parking.
	spliceIdleGrace = 50 * time.Millisecond
)

// idlePoller waits, in one goroutine, for any parked direction's source to
// become readable. The epoll fd itself is waited on through Go's netpoller
// (an epoll set is readable when it has events), so the loop goroutine parks
// like any network goroutine instead of holding a thread in epoll_wait.
type idlePoller struct {
	ep   *os.File // the epoll set
	epfd int
	raw  syscall.RawConn

	// buffers holds the read buffers of active directions; a parked
	// direction holds none.
	buffers sync.Pool

	mu      sync.Mutex
	parked  map[uint32]*halfConn
	nextKey uint32
	closed  bool
	done    chan struct{}
}

// newIdlePoller creates the epoll set and starts its loop.
func newIdlePoller() (*idlePoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("set epoll fd non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "relaytcp-idle-poller")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("idle poller: %w", err)
	}
	p := &idlePoller{ep: ep, epfd: epfd, raw: raw, parked: make(map[uint32]*halfConn), done: make(chan struct{})}
	p.buffers.New = func() any { b := make([]byte, pumpBufferSize); return &b }
	go p.loop()
	return p, nil
}

// loop hands every direction whose source became readable to a new
// goroutine, until Close.
func (p *idlePoller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var waitErr error
		err := p.raw.Read(func(fd uintptr) bool {
			n, waitErr = unix.EpollWait(int(fd), events, 0)
			// Nothing ready: wait in Go's netpoller for the set to be.
			return waitErr != nil || n > 0
		})
		if err != nil {
			return // the poller was closed
		}
		if waitErr != nil {
			if errors.Is(waitErr, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			key := uint32(ev.Fd)
			p.mu.Lock()
			h, ok := p.parked[key]
			delete(p.parked, key)
			p.mu.Unlock()
			if ok {
				go h.pump()
			}
		}
	}
}

// Close stops the loop and releases the epoll set. Parked directions must
// have been ended (their connections aborted) before.
func (p *idlePoller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ep.Close() // wakes the loop: its raw Read fails
	<-p.done
	return err
}

// attach makes the direction use poller p.
func (h *halfConn) attach(p *idlePoller) {
	h.poller = p
	h.raw, _ = h.src.SyscallConn()
}

// park waits in the poller, without a goroutine, until src is readable. If
// the direction cannot be parked it is ended with the error.
func (h *halfConn) park() {
	p := h.poller
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		h.finish(errStopped)
		return
	}
	for {
		p.nextKey++
		if _, taken := p.parked[p.nextKey]; !taken {
			break
		}
	}
	// The key is copied: once registered, the direction may wake, run and
	// park again (a new key) in another goroutine before Control returns.
	key := p.nextKey
	h.key = key
	p.parked[key] = h
	op := unix.EPOLL_CTL_MOD
	if !h.added {
		op = unix.EPOLL_CTL_ADD
	}
	h.added = true
	p.mu.Unlock()

	// Control holds the fd open, so it cannot be closed and its number
	// reused by another connection while it is registered.
	var ctlErr error
	err := h.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(key)}
		ctlErr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err == nil && ctlErr != nil {
		err = fmt.Errorf("epoll_ctl: %w", ctlErr)
	}
	if err != nil {
		if p.take(key, h) {
			h.finish(err)
		}
		return
	}
	// An abort that ran before we were in the map could not end us.
	if h.conn.isAborted() && p.take(key, h) {
		h.finish(errStopped)
	}
}

// take removes h from the parked set if it is still parked under key. It
// reports whether it did; if so, the caller owns h.
func (p *idlePoller) take(key uint32, h *halfConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.parked[key] != h {
		return false
	}
	delete(p.parked, key)
	return true
}

// unpark takes the direction out of the poller. It reports whether it was
// parked; if so, the caller owns it (no goroutine will be started for it).
func (h *halfConn) unpark() bool {
	p := h.poller
	if p == nil {
		return false
	}
	p.mu.Lock()
	key := h.key // written under p.mu by park
	p.mu.Unlock()
	return p.take(key, h)
}

// pump relays what src has to read, then parks the direction again.
func (h *halfConn) pump() {
	buffers := &h.poller.buffers
	bufp := buffers.Get().(*[]byte)
	defer func() {
		if bufp != nil {
			buffers.Put(bufp)
		}
	}()
	for {
		buf := *bufp
		n, err := h.readNow(buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			buffers.Put(bufp)
			bufp = nil
			h.park()
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			h.finish(err)
			return
		case n == 0:
			h.finish(nil) // EOF
			return
		}
		h.conn.touch()
		nw, err := h.dst.Write(buf[:n])
		h.bytes.Add(int64(nw))
		if err != nil {
			h.finish(err)
			return
		}
		if n < len(buf) {
			// Most likely all there was. Parking is level-triggered, so
			// anything that came meanwhile wakes us at once: this saves
			// the read that would only say EAGAIN.
			buffers.Put(bufp)
			bufp = nil
			h.park()
			return
		}
		if h.spliceWhileBusy() {
			return
		}
	}
}

// spliceWhileBusy lets the kernel move a bulk flow: io.Copy between the two
// TCP connections (splice), with a read deadline so that it returns, and
// gives its pipe back, once src has had nothing to read for spliceIdleGrace.
// It reports whether the direction has ended.
func (h *halfConn) spliceWhileBusy() (ended bool) {
	for {
		if err := h.src.SetReadDeadline(time.Now().Add(spliceIdleGrace)); err != nil {
			h.finish(err)
			return true
		}
		n, err := io.Copy(h.dst, h.src)
		h.bytes.Add(n)
		if n > 0 {
			h.conn.touch()
		}
		switch {
		case err == nil:
			h.finish(nil) // EOF
			return true
		case !errors.Is(err, os.ErrDeadlineExceeded):
			h.finish(err)
			return true
		case n == 0: // quiet for a whole grace period: back to reading
			if err := h.src.SetReadDeadline(time.Time{}); err != nil {
				h.finish(err)
				return true
			}
			return false
		}
	}
}

// readNow reads what src has without waiting: EAGAIN means nothing yet.
func (h *halfConn) readNow(buf []byte) (int, error) {
	var n int
	var rerr error
	err := h.raw.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return true // never wait in Go's poller: parking is ours
	})
	if err != nil {
		return 0, err // the connection was closed
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, nil
}
