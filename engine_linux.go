package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The Linux relay engine: one event loop, raw sockets, no goroutine per
// connection.
//
// A Go relay built on net.TCPConn pays, per connection, for what the net
// package does for every socket (getsockname, getpeername, SO_ERROR,
// TCP_NODELAY and keepalive setsockopts, registering and unregistering with
// the runtime's poller) and for the goroutine hand-offs between accept, dial
// and copy: about 30 system calls and several thread wake-ups per relayed
// connection, where HAProxy needs about 19 (perf stat on scripts/bench.sh).
// The engine does what HAProxy does: the listening sockets, the clients and
// the remote sockets are registered edge-triggered in one epoll set, and one
// goroutine accepts, connects, reads and writes with non-blocking system
// calls as they become ready. Accepted sockets inherit TCP_NODELAY and
// keepalive from their listener. Small data moves with read and write
// through one buffer shared by the whole loop; a direction whose read fills
// that buffer is bulk and moves with splice through a pipe from a small
// pool, so the kernel copies nothing. An idle connection holds two sockets
// and a small struct: no goroutine, no buffer, no pipe.
//
// Each loop is a goroutine that waits in epoll_wait itself (see loop).
// Other goroutines (timers, Stop, name resolution) hand work to the loop
// with submit, which wakes it through an eventfd.

const (
	// engineBufferSize is the loop's read buffer; a read that fills it
	// makes its direction bulk.
	engineBufferSize = 16 << 10
	// spliceChunk is what one splice asks the kernel to move, and the size
	// of the pipes.
	spliceChunk = 1 << 20
	// maxFreePipes bounds the pipes kept for the next bulk direction.
	maxFreePipes = 4
	// roundBudget bounds the reads and writes one direction makes before
	// the loop turns to other connections; acceptBudget does the same for
	// accepts on one listener.
	roundBudget  = 16
	acceptBudget = 64
	// busyWait bounds a wait that keeps the loop's processor; yieldEvery
	// is how often the loop yields it, under the scheduler's 10 ms
	// preemption period.
	busyWait   = 4 * time.Millisecond
	yieldEvery = 8 * time.Millisecond
)

// maxEngines bounds the engines of a relay: each keeps an OS thread busy.
const maxEngines = 8

// engineCount is how many engines a relay runs: one per processor the
// process was given when it first asked (GOMAXPROCS, which follows the CPU
// quota), up to maxEngines.
var engineCount = sync.OnceValue(func() int {
	return min(runtime.GOMAXPROCS(0), maxEngines)
})

// reserveSpareProc makes sure the process has a processor (P) more than
// its n engines: a busy engine keeps its P even while it waits for events
// (engine.loop), and the other goroutines (the control channel, the
// goroutine relay, the timers) need one. It is checked each time a relay
// starts its engines, as something may have set GOMAXPROCS since (go test
// does, between a benchmark's runs).
func reserveSpareProc(n int) {
	if runtime.GOMAXPROCS(0) <= n {
		runtime.GOMAXPROCS(n + 1)
	}
}

// Keys of the epoll set: the event's Fd field carries an id, its Pad field
// says which socket of that id it is.
const (
	sideClient   = 0
	sideRemote   = 1
	sideListener = 2
	sideWake     = 3
)

// engine is the event loop of a Relay.
type engine struct {
	epfd  int // the epoll set
	wake  int // eventfd that submit writes to
	index int // which of the relay's engines: its slot in the routes' counters

	mu     sync.Mutex
	cmds   []func()
	closed bool
	done   chan struct{}

	// Owned by the loop goroutine.
	flows       map[uint32]*flow
	listeners   map[uint32]*engineListener
	nextID      uint32
	buf         []byte
	pipes       []*pipePair
	again       []*flow // flows that used their round budget
	acceptAgain []*engineListener
	now         time.Time
	paces       map[*flow]*flowPace // the flows whose route has a cap (engine_pace_linux.go)
}

// engineListener is a route's listening socket as the engine sees it.
type engineListener struct {
	id      uint32
	l       *tcpRoute
	sock    *listenSock
	waiting bool // a back-off timer will call accept
	queued  bool // in acceptAgain
}

// pipePair is a splice pipe.
type pipePair struct{ r, w int }

// flow is one relayed connection in the engine: its lifecycle
// (lifecycle.go), and its sockets and directions.
type flow struct {
	connLife
	id uint32
	// paced: the flow's pacing is in engine.paces (rate=, connrate=:
	// engine_pace_linux.go). Here, in the padding after id, it costs the
	// record nothing; a pointer would take it out of its size class.
	paced bool
	l     *tcpRoute
	e     *engine
	fd    [2]int // client, remote; -1 once closed
	// While connLife.attempt is set the flow is connecting: no Opened or
	// Closed event before.
	ended    bool
	queued   bool // in engine.again
	canRead  [2]bool
	peerDone [2]bool // the socket reported the peer's end (RDHUP, HUP, ERR)
	reset    [2]bool // the socket reported an error (ERR): its direction goes first
	// cut: the side was reset before its end, as its pending error said
	// when a write or the error event took it, so the end its reads now
	// return is not one.
	cut      [2]bool
	canWrite [2]bool
	// A side is gone: the other side, drainSide, gets what is queued for
	// it before it is closed (drainThenClose).
	draining   bool
	drainReset bool // close drainSide with a reset once drained
	// watching: a side has ended while its direction holds data that the
	// other side, drainSide, does not take: the timer checks that it
	// moves (watchStall, stall.go).
	watching  bool
	drainSide int8
	stall     stallClock  // drainSide's progress, while draining or watching
	dirs      [2]flowDir  // client→remote, remote→client
	timer     *time.Timer // connect timeout; then onTimer: idle timeout, stall and drain checks
	// lastActive is when data last moved, as time since connLife.start.
	lastActive time.Duration
}

// flowDir is one direction of a flow: bytes read from fd[d] are written to
// fd[1-d].
type flowDir struct {
	pending []byte    // read, not yet written (the peer is slow)
	pipe    *pipePair // while bulk data is in flight
	inPipe  int32     // bytes in the pipe, at most spliceChunk (int32: the record stays small)
	bulk    bool
	eof     bool // the source ended and the end was passed on
	dead    bool // the destination is gone (a write failed): nothing moves
	bytes   int64
}

// newEngine creates the epoll set and the eventfd and starts the loop of
// the relay's engine number index.
func newEngine(index int) (*engine, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Pad: sideWake}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	e := &engine{
		epfd: epfd, wake: wake, index: index, done: make(chan struct{}),
		flows: make(map[uint32]*flow), listeners: make(map[uint32]*engineListener),
		buf: make([]byte, engineBufferSize),
	}
	go e.loop()
	return e, nil
}

// submit runs fn in the loop goroutine. It reports false if the engine is
// closed (fn will not run).
func (e *engine) submit(fn func()) bool {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	e.cmds = append(e.cmds, fn)
	first := len(e.cmds) == 1
	e.mu.Unlock()
	if first {
		var one = [8]byte{1}
		unix.Write(e.wake, one[:])
	}
	return true
}

// Close stops the loop and releases the epoll set, the eventfd and the
// pipes. Every flow must have ended before.
func (e *engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	var one = [8]byte{1}
	unix.Write(e.wake, one[:]) // wakes the loop, which sees closed
	<-e.done
	err := unix.Close(e.epfd)
	unix.Close(e.wake)
	for _, p := range e.pipes {
		p.close()
	}
	e.pipes = nil
	return err
}

// loop waits for events and handles them until Close.
//
// While connections keep coming, the loop waits in a raw epoll_pwait of at
// most busyWait, keeping its processor (P): a wait the scheduler knows of
// lets the system monitor hand the P to another thread after 20 µs, and
// getting it back costs thread wake-ups, for every round of events: they
// were 40% of the relay's context switches under a connection-rate load.
// The relay runs one more P than it has engines (engineCount) for its other
// goroutines. A wait that times out makes the loop idle: it then blocks
// through the scheduler until the next event. The loop yields now and then,
// and after a signal, so the scheduler never has to preempt it and a
// stop-the-world never waits.
func (e *engine) loop() {
	defer close(e.done)
	events := make([]unix.EpollEvent, 256)
	idle := false
	lastYield := time.Now()
	for {
		var n int
		var err error
		switch {
		case len(e.again) > 0 || len(e.acceptAgain) > 0:
			n, err = epollWaitRaw(e.epfd, events, 0) // work left over: only collect what is ready
		case idle:
			n, err = unix.EpollWait(e.epfd, events, -1)
		default:
			n, err = epollWaitRaw(e.epfd, events, int(busyWait/time.Millisecond))
			idle = err == nil && n == 0
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				runtime.Gosched() // the signal may be a preemption request
				continue
			}
			return
		}
		if n > 0 {
			idle = false
		}
		e.now = time.Now()
		for _, ev := range events[:n] {
			e.dispatch(ev)
		}
		if !e.runCommands() {
			return
		}
		e.runAgain()
		if e.now.Sub(lastYield) >= yieldEvery {
			lastYield = e.now
			runtime.Gosched()
		}
	}
}

// dispatch handles one epoll event.
func (e *engine) dispatch(ev unix.EpollEvent) {
	id := uint32(ev.Fd)
	switch ev.Pad {
	case sideWake:
		var b [8]byte
		unix.Read(e.wake, b[:])
	case sideListener:
		if el, ok := e.listeners[id]; ok {
			e.accept(el, false)
		}
	case sideClient, sideRemote:
		f, ok := e.flows[id]
		if !ok {
			return
		}
		side := int(ev.Pad)
		if f.draining {
			switch {
			case side != int(f.drainSide):
			case ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
				e.finish(f, true) // that peer is gone too
			case ev.Events&unix.EPOLLIN != 0:
				e.discardUnread(f, side)
			}
			return
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			f.canRead[side] = true
		}
		if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			f.peerDone[side] = true
		}
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			f.canWrite[side] = true
		}
		if f.attempt != nil {
			switch {
			case f.attempt.awaitingHeader && side == sideClient:
				e.readHeader(f)
			case side == sideRemote:
				e.connectDone(f, ev.Events)
			}
			return
		}
		if ev.Events&unix.EPOLLERR != 0 {
			f.reset[side] = true
			if f.dirs[side].eof {
				// Nothing more is read from this side: its reset ends the
				// flow now, even if nothing would write to it soon.
				e.endAfterReset(f, side)
				return
			}
			// Reads from this side return what its peer sent before the
			// reset, then an end: relay delivers that first, as the other
			// peer's kernel would have without a relay. The error is
			// taken now, before a write can: EPIPE says the peer's end
			// came first, anything else that the end read later is a cut.
			if err := socketError(f.fd[side]); err != nil && !errors.Is(err, unix.EPIPE) {
				f.cut[side] = true
			}
		}
		e.relay(f)
	}
}

// runCommands runs what other goroutines submitted. It reports false once
// the engine is closed.
func (e *engine) runCommands() bool {
	e.mu.Lock()
	cmds, closed := e.cmds, e.closed
	e.cmds = nil
	e.mu.Unlock()
	for _, fn := range cmds {
		fn()
	}
	return !closed
}

// runAgain gives the flows and listeners that used their budget another
// round.
func (e *engine) runAgain() {
	flows, lns := e.again, e.acceptAgain
	e.again, e.acceptAgain = nil, nil
	for _, f := range flows {
		f.queued = false
		if !f.ended {
			e.relay(f)
		}
	}
	for _, el := range lns {
		el.queued = false
		e.accept(el, false)
	}
}

// newID returns an id no flow or listener uses.
func (e *engine) newID() uint32 {
	for {
		e.nextID++
		if _, ok := e.flows[e.nextID]; ok {
			continue
		}
		if _, ok := e.listeners[e.nextID]; ok {
			continue
		}
		return e.nextID
	}
}

// addSockets makes the engine accept the route's clients on its listening
// sockets socks. It runs in the loop.
func (e *engine) addSockets(l *tcpRoute, socks []*listenSock) error {
	for i, s := range socks {
		el := &engineListener{id: e.newID(), l: l, sock: s}
		// Every engine waits on the socket; exclusive: an incoming client
		// wakes one of them, not all.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET | unix.EPOLLEXCLUSIVE, Fd: int32(el.id), Pad: sideListener}
		if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			e.removeSockets(socks[:i])
			return fmt.Errorf("epoll_ctl listener: %w", err)
		}
		e.listeners[el.id] = el
		e.accept(el, false) // clients may have queued already
	}
	return nil
}

// removeSockets forgets listening sockets; closing them takes them out of
// the epoll set, and their events until then are ignored. It runs in the
// loop.
func (e *engine) removeSockets(socks []*listenSock) {
	gone := make(map[*listenSock]bool, len(socks))
	for _, s := range socks {
		gone[s] = true
	}
	for id, el := range e.listeners {
		if gone[el.sock] {
			delete(e.listeners, id)
		}
	}
}

// takeListener returns a descriptor of ln's socket that is not in the
// runtime's poller, and closes ln.
func takeListener(ln *net.TCPListener) (int, error) {
	raw, err := ln.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		ln.Close()
		return -1, err
	}
	if dupErr != nil {
		ln.Close()
		return -1, fmt.Errorf("dup listening socket: %w", dupErr)
	}
	ln.Close() // the socket stays open through fd
	return fd, nil
}

// stopListening makes a listening socket taken by takeListener refuse new
// clients and reset those queued; its descriptor stays open, and accepts
// on it fail (EINVAL).
func stopListening(fd int) { unix.Shutdown(fd, unix.SHUT_RD) }

// closeListenerFD closes a listening socket taken by takeListener.
func closeListenerFD(fd int) { unix.Close(fd) }

// forgetSockets makes the engine forget listening sockets and returns
// once it has, or once the loop of a closing engine has returned: either
// way, the engine no longer uses them.
func (e *engine) forgetSockets(socks []*listenSock) {
	done := make(chan struct{})
	if e.submit(func() { e.removeSockets(socks); close(done) }) {
		select {
		case <-done:
		case <-e.done: // the loop ended without running it
		}
		return
	}
	<-e.done
}

// accept accepts the listener's queued clients, within the budget. While
// the route has a resource incident it accepts one client per back-off
// period (afterWait: the period is over).
func (e *engine) accept(el *engineListener, afterWait bool) {
	if afterWait {
		el.waiting = false
	}
	if el.waiting {
		return
	}
	if _, ok := e.listeners[el.id]; !ok {
		return
	}
	l := el.l
	for i := range acceptBudget {
		if !(afterWait && i == 0) {
			if wait := l.incidentBackoff(); wait > 0 {
				el.waiting = true
				time.AfterFunc(wait, func() { e.submit(func() { e.accept(el, true) }) })
				return
			}
		}
		nfd, client, aerr := rawAccept4(el.sock.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case aerr == nil:
			e.newFlow(l, nfd, client, el.sock.port)
		case errors.Is(aerr, unix.EAGAIN):
			return
		case errors.Is(aerr, unix.EINVAL):
			delete(e.listeners, el.id) // the socket stopped listening (closeSocks)
			return
		case errors.Is(aerr, unix.EINTR), errors.Is(aerr, unix.ECONNABORTED):
		default:
			l.resourceError(&net.OpError{Op: "accept", Net: "tcp", Addr: el.sock.addr, Err: os.NewSyscallError("accept4", aerr)})
		}
	}
	if !el.queued {
		el.queued = true
		e.acceptAgain = append(e.acceptAgain, el)
	}
}

// armTimer makes the timer of a connected flow call onTimer after d.
func (e *engine) armTimer(f *flow, d time.Duration) {
	if f.timer == nil {
		f.timer = time.AfterFunc(d, func() { e.submit(func() { e.onTimer(f) }) })
		return
	}
	f.timer.Reset(d)
}

// onTimer runs when the timer of a connected flow fires: it checks what
// the flow waits for. A check that was already on its way when the flow
// moved on to another wait does that one's check instead, early.
func (e *engine) onTimer(f *flow) {
	switch {
	case f.ended:
	case f.draining:
		e.checkDrain(f)
	case f.watching:
		e.checkStall(f)
	default:
		e.checkIdle(f)
	}
}

// checkIdle ends the flow if nothing moved for the whole idle timeout, or
// waits for the rest of it.
func (e *engine) checkIdle(f *flow) {
	idle := f.cfg.IdleTimeout
	if idle <= 0 {
		return
	}
	if f.paced && e.waitsForChunk(f) {
		f.lastActive = time.Since(f.start) // held back by a cap, not idle
	}
	wait, expired := f.idleExpired(time.Since(f.start) - f.lastActive)
	if expired {
		e.abort(f, errIdle)
		return
	}
	e.armTimer(f, wait)
}

// relay moves what it can in both directions.
func (e *engine) relay(f *flow) {
	first := 0
	if f.reset[1] && !f.reset[0] {
		first = 1 // the remote side's last data before its reset
	}
	for i := range 2 {
		if f.ended {
			return
		}
		e.move(f, first^i)
	}
	// Until a side has ended, a blocked direction is nobody's business but
	// the idle timeout's: four flags are all a healthy flow pays here.
	if !f.watching && !f.ended && !f.draining && (f.peerDone[0] || f.peerDone[1] || f.reset[0] || f.reset[1]) {
		e.watchStall(f)
	}
}

// watchStall starts the stall watch (stall.go) of a flow one of whose
// sides has ended, if that side's direction holds data the other side
// does not take. A flow that relays normally, or whose peers are both
// still there, has none.
func (e *engine) watchStall(f *flow) {
	for s := range 2 {
		dir := &f.dirs[s]
		if !(f.peerDone[s] || f.reset[s]) || len(dir.pending) == 0 && dir.inPipe == 0 {
			continue
		}
		o := 1 - s
		mark, _ := e.progress(f, o)
		f.watching, f.drainSide = true, int8(o)
		f.stall.start(mark, e.now)
		e.armTimer(f, stallPoll)
		return
	}
}

// checkStall runs every stallPoll while a flow is watched: it resets the
// flow once drainSide has taken nothing for drainStall, and ends the watch
// once the direction to that side holds nothing (it was written, as the
// goroutine relay's watch ends with its write). The idle timeout still
// counts meanwhile.
func (e *engine) checkStall(f *flow) {
	o := int(f.drainSide)
	if dir := &f.dirs[1-o]; dir.dead || len(dir.pending) == 0 && dir.inPipe == 0 {
		f.watching = false
		e.checkIdle(f)
		return
	}
	mark, _ := e.progress(f, o)
	if f.stall.stalled(mark, e.now) {
		e.abort(f, stallReason(o == sideClient))
		return
	}
	if f.cfg.IdleTimeout > 0 {
		if _, expired := f.idleExpired(e.now.Sub(f.start) - f.lastActive); expired {
			e.abort(f, errIdle)
			return
		}
	}
	f.timer.Reset(stallPoll)
}

// progress returns a count that grows while the flow moves toward its side
// o (what o has acknowledged of what was written to it, and what was
// written the other way: an answer that flows keeps the flow alive), and
// what o has not acknowledged yet (SIOCOUTQ).
func (e *engine) progress(f *flow, o int) (mark int64, queued int) {
	queued, err := unix.IoctlGetInt(f.fd[o], unix.SIOCOUTQ)
	if err != nil {
		queued = 0
	}
	return f.dirs[1-o].bytes - int64(queued) + f.dirs[o].bytes, queued
}

// move relays direction d of f until its source has nothing to read or its
// destination cannot take more, or the round budget is used.
func (e *engine) move(f *flow, d int) {
	dir := &f.dirs[d]
	if dir.dead || f.draining {
		return
	}
	src, dst := f.fd[d], f.fd[1-d]
	for range roundBudget {
		// First pass on what is in flight.
		if len(dir.pending) > 0 {
			if !f.canWrite[1-d] {
				return
			}
			nw, err := rawWrite(dst, dir.pending)
			n, ok := e.wrote(f, d, nw, err)
			if !ok {
				return
			}
			dir.pending = dir.pending[n:]
			if len(dir.pending) == 0 {
				dir.pending = nil
			}
			continue
		}
		if dir.inPipe > 0 {
			if !f.canWrite[1-d] {
				return
			}
			nw, err := rawSplice(dir.pipe.r, dst, int(dir.inPipe), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			n, ok := e.wrote(f, d, nw, err)
			if !ok {
				return
			}
			dir.inPipe -= int32(n)
			continue
		}
		if dir.eof || !f.canRead[d] {
			e.putPipe(dir)
			return
		}
		want := len(e.buf)
		if dir.bulk {
			want = spliceChunk
		}
		limit := want
		if f.paced || f.route.stats.limits.paced() { // rate=, connrate=: engine_pace_linux.go
			limit = e.paceRead(f, d, want)
		}
		if limit == 0 {
			e.putPipe(dir) // the chunk is not due: the pace timer resumes
			return
		}
		var n int
		var err error
		if dir.bulk {
			if dir.pipe == nil {
				if dir.pipe, err = e.getPipe(); err != nil {
					// Out of descriptors, say: copy instead.
					if f.paced {
						e.settlePace(f, d, 0)
					}
					dir.bulk = false
					continue
				}
			}
			n, err = rawSplice(src, dir.pipe.w, limit, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		} else {
			n, err = rawRead(src, e.buf[:limit])
		}
		if f.paced {
			e.settlePace(f, d, n)
		}
		switch {
		case errors.Is(err, unix.EAGAIN):
			f.canRead[d] = false
			e.putPipe(dir)
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			e.resetAfterDelivery(f, d, os.NewSyscallError("read", err))
			return
		case n == 0 && f.cut[d]:
			e.resetAfterDelivery(f, d, os.NewSyscallError("read", unix.ECONNRESET))
			return
		case n == 0:
			e.ended(f, d)
			if f.reset[d] && !f.ended {
				e.endAfterReset(f, d)
			}
			return
		}
		if f.timer != nil {
			f.lastActive = e.now.Sub(f.start)
		}
		if dir.bulk {
			dir.inPipe = int32(n)
			if n < engineBufferSize && n < limit {
				dir.bulk = false // a trickle: back to read and write
			}
			continue
		}
		if n == len(e.buf) {
			dir.bulk = true
		} else if n < limit && !f.peerDone[d] {
			// A short read took all there was: skip the read that would
			// only say EAGAIN; new data brings a new edge. (Not once the
			// peer's end was reported: its edge has come already, and the
			// next read sees it.)
			f.canRead[d] = false
		}
		w, err := rawWrite(dst, e.buf[:n])
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			e.writeFailed(f, d, err)
			return
		}
		w = max(w, 0)
		dir.bytes += int64(w)
		if w < n {
			f.canWrite[1-d] = false
			dir.pending = append([]byte(nil), e.buf[w:n]...)
			return
		}
		if !f.canRead[d] {
			return
		}
	}
	if !f.queued {
		f.queued = true
		e.again = append(e.again, f)
	}
}

// wrote accounts for a write of direction d: it returns how many bytes it
// moved and whether the direction may go on (false: the destination is
// full, or the flow ended).
func (e *engine) wrote(f *flow, d, n int, err error) (int, bool) {
	switch {
	case errors.Is(err, unix.EAGAIN):
		f.canWrite[1-d] = false
		return 0, false
	case errors.Is(err, unix.EINTR):
		return 0, true
	case err != nil:
		e.writeFailed(f, d, err)
		return 0, false
	}
	f.dirs[d].bytes += int64(n)
	return n, true
}

// writeFailed handles a failed write of direction d: its destination, side
// 1-d, is gone (reset). While that side's own direction has not ended,
// what its peer sent before going may still wait in the relay: direction d
// stops (what it carries cannot be delivered any more) and side 1-d is
// read first, until its end (endAfterReset) or its error
// (resetAfterDelivery) ends the flow. Once it has ended, the flow ends as
// endAfterReset does. Other write errors reset both sides at once.
func (e *engine) writeFailed(f *flow, d int, err error) {
	gone := 1 - d
	if !(errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET)) {
		e.abort(f, os.NewSyscallError("write", err))
		return
	}
	if f.dirs[gone].eof {
		e.endAfterReset(f, gone) // all it sent was passed on
		return
	}
	if f.dirs[gone].dead {
		e.abort(f, os.NewSyscallError("write", err)) // both sides are gone
		return
	}
	f.dirs[d].dead = true
	f.dirs[d].pending = nil
	f.reset[gone], f.canRead[gone] = true, true
	if errors.Is(err, unix.ECONNRESET) {
		f.cut[gone] = true // the write took the reset: see flow.cut
	}
	if !f.queued {
		f.queued = true
		e.again = append(e.again, f)
	}
}

// ended handles the end of direction d's source: the end is passed on as a
// half-close, and the flow ends when both directions have.
func (e *engine) ended(f *flow, d int) {
	f.dirs[d].eof = true
	e.putPipe(&f.dirs[d])
	f.endedCleanly(d == sideClient)
	if f.dirs[1-d].eof {
		e.finish(f, false)
		return
	}
	if err := rawShutdown(f.fd[1-d], unix.SHUT_WR); err != nil && !errors.Is(err, unix.ENOTCONN) {
		e.abort(f, os.NewSyscallError("shutdown", err))
	}
}

// endAfterReset ends a flow whose side s reset after its end was passed on
// to the other side: all that s sent has been passed on, so the other side
// is closed normally once it has taken it (drainThenClose), as without a
// relay its peer would have had it all and the end.
func (e *engine) endAfterReset(f *flow, s int) {
	e.discardUnread(f, 1-s)
	err := socketError(f.fd[s])
	if err == nil {
		err = unix.ECONNRESET
	}
	e.drainThenClose(f, s, os.NewSyscallError("read", err), false)
}

// resetAfterDelivery ends a flow whose side s failed mid-stream (its peer
// reset, say): what the relay took from s before the failure has all been
// written to the other side, but a slow reader there may not have it yet,
// and a reset now would discard it. The other side is therefore reset only
// once it has acknowledged everything queued for it (drainThenClose).
func (e *engine) resetAfterDelivery(f *flow, s int, reason error) {
	if f.dirs[s].dead {
		e.abort(f, reason) // the other side is gone too
		return
	}
	e.drainThenClose(f, s, reason, true)
}

// drainThenClose ends a flow whose side s is gone: s is closed now, the
// other side once it has acknowledged everything queued for it, or once
// that stops shrinking for drainStall (reset: with a reset, else
// normally). Until then nothing more is relayed, and what the other side
// sends is read and dropped: left unread, it would make its close a reset
// that discards the queue.
func (e *engine) drainThenClose(f *flow, s int, reason error, reset bool) {
	f.endWith(reason)
	o := 1 - s
	mark, queued := e.progress(f, o)
	if queued <= 0 {
		e.finish(f, reset)
		return
	}
	rawClose(f.fd[s])
	f.fd[s] = -1
	f.draining, f.drainReset, f.watching = true, reset, false
	f.drainSide = int8(o)
	f.stall.start(mark, e.now)
	e.armTimer(f, drainPoll)
}

// discardUnread reads and drops what side s has sent that the relay has
// not read (bounded: the drain goes on reading it as it comes).
func (e *engine) discardUnread(f *flow, s int) {
	for range roundBudget {
		if n, err := rawRead(f.fd[s], e.buf); n <= 0 || err != nil {
			return
		}
	}
}

// checkDrain runs every drainPoll while a flow drains: see
// drainThenClose. A side that stalls is closed all the same, and the
// Closed line says so.
func (e *engine) checkDrain(f *flow) {
	mark, queued := e.progress(f, int(f.drainSide))
	switch {
	case queued <= 0:
		e.finish(f, f.drainReset)
	case f.stall.stalled(mark, e.now):
		f.reason = stallReason(f.drainSide == sideClient)
		e.finish(f, f.drainReset)
	default:
		f.timer.Reset(drainPoll)
	}
}

// abort ends the flow at once, resetting both sides so that each peer
// learns that the stream did not end cleanly. The reason is kept unless an
// error came first.
func (e *engine) abort(f *flow, reason error) {
	if f.ended {
		return
	}
	f.endWith(reason)
	e.finish(f, true)
}

// fail ends a flow whose remote side could not be reached: the client is
// reset.
func (e *engine) fail(f *flow, err error) {
	if f.ended {
		return
	}
	f.connLife.fail(err)
	e.finish(f, true)
}

// finish closes the flow's sockets (reset: with RST) and pipes, reports it
// closed if it had opened, and counts it done.
func (e *engine) finish(f *flow, reset bool) {
	f.ended = true
	if f.timer != nil {
		f.timer.Stop()
	}
	if f.paced {
		e.dropPace(f)
	}
	for side, fd := range f.fd {
		if fd < 0 {
			continue
		}
		if reset {
			closeReset(fd)
		} else {
			rawClose(fd)
		}
		f.fd[side] = -1
	}
	for d := range f.dirs {
		dir := &f.dirs[d]
		if dir.pipe != nil {
			if dir.inPipe > 0 {
				dir.pipe.close() // holds data that will never be sent
				dir.pipe = nil
			} else {
				e.putPipe(dir)
			}
		}
		dir.pending = nil
	}
	delete(e.flows, f.id)
	if f.attempt == nil { // it had opened
		f.slot.sent.Add(f.dirs[0].bytes)
		f.slot.received.Add(f.dirs[1].bytes)
		f.closed(traffic{sent: f.dirs[0].bytes, received: f.dirs[1].bytes})
	} else {
		f.abandoned()
	}
	f.l.connDone(f)
}

// routeBytes returns, for each route of stats, what the engine has
// relayed each way: its closed flows' (its own slot) and its open flows'
// so far. The loop reads both in one turn, in which no flow can move from
// one to the other.
func (e *engine) routeBytes(stats map[int]*routeStats) map[int][2]int64 {
	done := make(chan map[int][2]int64, 1)
	if !e.submit(func() {
		sums := make(map[int][2]int64, len(stats))
		for id, st := range stats {
			slot := &st.slots[e.index]
			sums[id] = [2]int64{slot.sent.Load(), slot.received.Load()}
		}
		for _, f := range e.flows {
			if f.attempt == nil {
				b := sums[f.l.id]
				sums[f.l.id] = [2]int64{b[0] + f.dirs[0].bytes, b[1] + f.dirs[1].bytes}
			}
		}
		done <- sums
	}) {
		return nil
	}
	select {
	case sums := <-done:
		return sums
	case <-e.done: // the loop ended without running it
		return nil
	}
}

// liveBytes is 0: the engine counts its open flows' bytes itself
// (routeBytes), in its own turn.
func (f *flow) liveBytes() (sent, received int64) { return 0, 0 }

// abort ends the flow from another goroutine (Stop, Shutdown). The engine
// outlives every flow, so the submission cannot be refused.
func (f *flow) abort(reason error) {
	f.e.submit(func() { f.e.abort(f, reason) })
}

// getPipe returns a pipe for a bulk direction.
func (e *engine) getPipe() (*pipePair, error) {
	if n := len(e.pipes); n > 0 {
		p := e.pipes[n-1]
		e.pipes = e.pipes[:n-1]
		return p, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	// A bigger pipe moves more per splice; the default works too.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, spliceChunk)
	return &pipePair{r: fds[0], w: fds[1]}, nil
}

// putPipe gives an empty direction's pipe back to the pool.
func (e *engine) putPipe(dir *flowDir) {
	p := dir.pipe
	if p == nil || dir.inPipe > 0 {
		return
	}
	dir.pipe = nil
	if len(e.pipes) < maxFreePipes {
		e.pipes = append(e.pipes, p)
		return
	}
	p.close()
}

func (p *pipePair) close() {
	rawClose(p.r)
	rawClose(p.w)
}

// socketError returns the pending error of a socket (SO_ERROR), if any.
func socketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

// closeReset closes a socket with an RST instead of a FIN.
func closeReset(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	rawClose(fd)
}

// listenControl sets the relay options on a listening socket, for its
// accepted sockets to inherit.
func listenControl(network, address string, c syscall.RawConn) error {
	var optErr error
	err := c.Control(func(fd uintptr) { optErr = setRelayOptions(int(fd)) })
	if err != nil {
		return err
	}
	return optErr
}
