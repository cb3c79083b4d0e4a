package main

// The engine's connecting side: a new client's flow, the backend it tries
// next (backends.go), the non-blocking connect and what its first event
// says. engine_linux.go is the loop and the relaying.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// newFlow takes an accepted client: refuses it, or registers it and starts
// connecting to a backend.
func (e *engine) newFlow(l *routeListener, fd int, client netip.AddrPort, port int) {
	cfg := l.cfg.Load()
	if why, kind := l.refusal(cfg, client.Addr()); why != "" {
		closeReset(fd)
		l.refused(cfg, &l.stats.slots[e.index], client.String(), why, kind)
		return
	}
	hold, ok := l.admit(cfg, client) // limits: per client (clientlimits.go)
	if !ok {
		closeReset(fd)
		return
	}
	f := &flow{id: e.newID(), l: l, e: e, fd: [2]int{fd, -1}, start: e.now, cfg: cfg,
		client:  client.String(),
		dialing: &flowDial{clientAP: client, offset: cfg.remoteOffset(port)}, hold: hold}
	if !l.track(f) {
		hold.release()
		rawClose(fd)
		return
	}
	l.relay.open.Add(1)
	l.wg.Add(1)
	e.flows[f.id] = f
	if err := e.register(f, sideClient); err != nil {
		e.fail(f, err)
		return
	}
	if cfg.AcceptProxy {
		e.awaitHeader(f)
		return
	}
	e.nextBackend(f, nil)
}

// nextBackend starts connecting to the next backend in balance order
// (backendPool.pick) once the current one failed with err (nil: there is
// none yet). The client's bytes wait in its socket meanwhile, for the
// backend that answers. When every backend has been tried, or the system
// lacks descriptors, the flow fails.
func (e *engine) nextBackend(f *flow, err error) {
	pool := f.cfg.pool
	if b := f.backend; b != nil {
		f.backend = nil
		b.open.Add(-1)
		f.dialing.failures++
		f.dialing.lastDialErr = err
		if isResourceError(err) {
			e.fail(f, err) // not the backend's fault
			return
		}
		pool.connectFailed(b, err)
	}
	i := pool.pick(f.dialing.clientAP.Addr(), f.dialing.tried)
	if i < 0 {
		e.fail(f, pool.failure(f.dialing.failures, f.dialing.lastDialErr))
		return
	}
	f.dialing.tried |= 1 << i
	b := pool.entries[i].b
	b.open.Add(1) // for leastconn, while it connects too
	f.backend, f.remote, f.dialing.addrs, f.dialing.lastDialErr = b, b.addrAt(f.dialing.offset), nil, nil
	f.dialing.attempt++
	attempt := f.dialing.attempt
	if f.timer != nil {
		f.timer.Stop()
	}
	f.timer = time.AfterFunc(f.cfg.connectTimeout(), func() {
		e.submit(func() {
			if f.dialing != nil && !f.ended && f.dialing.attempt == attempt {
				e.connectTimedOut(f)
			}
		})
	})
	port := b.port + uint16(f.dialing.offset)
	if b.ip.IsValid() {
		f.dialing.addrs = []netip.AddrPort{netip.AddrPortFrom(b.ip, port)}
		e.dial(f)
		return
	}
	// A name is resolved for every connection, so DNS changes are followed.
	host, _, _ := net.SplitHostPort(b.addr)
	go func() {
		ips, err := net.DefaultResolver.LookupNetIP(f.l.ctx, "ip", host)
		e.submit(func() {
			if f.ended || f.dialing == nil || f.dialing.attempt != attempt {
				return
			}
			if err != nil {
				e.nextBackend(f, &net.OpError{Op: "dial", Net: "tcp", Err: err})
				return
			}
			for _, ip := range ips {
				f.dialing.addrs = append(f.dialing.addrs, netip.AddrPortFrom(ip.Unmap(), port))
			}
			e.dial(f)
		})
	}()
}

// connectTimedOut gives up the backend a flow is connecting to: it did
// not answer within the connect timeout.
func (e *engine) connectTimedOut(f *flow) {
	err := &net.OpError{Op: "dial", Net: "tcp", Addr: dialAddr(f), Err: os.ErrDeadlineExceeded}
	if fd := f.fd[sideRemote]; fd >= 0 {
		rawClose(fd)
		f.fd[sideRemote] = -1
	}
	e.nextBackend(f, err)
}

// dialAddr is the address a flow is dialing, for errors.
func dialAddr(f *flow) net.Addr {
	if len(f.dialing.addrs) > 0 {
		return net.TCPAddrFromAddrPort(f.dialing.addrs[0])
	}
	return nil
}

// register adds one of the flow's sockets to the epoll set.
func (e *engine) register(f *flow, side int) error {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(f.id), Pad: int32(side),
	}
	if err := rawEpollCtl(e.epfd, unix.EPOLL_CTL_ADD, f.fd[side], &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// dial starts connecting to the flow's next remote address; when none is
// left the flow fails with the last error.
func (e *engine) dial(f *flow) {
	for len(f.dialing.addrs) > 0 {
		ap := f.dialing.addrs[0]
		fd, err := connectNonblock(ap)
		if err != nil {
			f.dialing.lastDialErr = &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
			if isResourceError(err) {
				break
			}
			f.dialing.addrs = f.dialing.addrs[1:]
			continue
		}
		f.fd[sideRemote] = fd
		f.canRead[sideRemote], f.canWrite[sideRemote] = false, false
		if err := e.register(f, sideRemote); err != nil {
			e.fail(f, err)
		}
		return
	}
	if f.dialing.lastDialErr == nil {
		f.dialing.lastDialErr = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no address to connect to")}
	}
	e.nextBackend(f, f.dialing.lastDialErr)
}

// connectDone handles the first event of the remote socket: connected, or
// failed (then the next address is tried).
func (e *engine) connectDone(f *flow, events uint32) {
	if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		err := socketError(f.fd[sideRemote])
		if err == nil {
			err = unix.ECONNREFUSED
		}
		rawClose(f.fd[sideRemote])
		f.fd[sideRemote] = -1
		ap := f.dialing.addrs[0]
		f.dialing.addrs = f.dialing.addrs[1:]
		f.dialing.lastDialErr = &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", err)}
		e.dial(f)
		return
	}
	if events&unix.EPOLLOUT == 0 {
		return
	}
	if f.cfg.Proxy != "" {
		if err := e.sendProxyHeader(f); err != nil {
			rawClose(f.fd[sideRemote])
			f.fd[sideRemote] = -1
			e.nextBackend(f, &net.OpError{Op: "dial", Net: "tcp", Addr: dialAddr(f), Err: err})
			return
		}
	}
	f.remote = f.dialing.addrs[0].String()
	f.dialing = nil
	f.timer.Stop()
	f.timer = nil
	f.cfg.pool.connected(f.backend)
	l := f.l
	l.recovered()
	l.stats.slots[e.index].total.Add(1)
	if idle := f.cfg.IdleTimeout; idle > 0 {
		f.lastActive = e.now
		e.armTimer(f, idle)
	}
	l.relay.emit(Event{Kind: ConnOpened, Time: e.now, Route: l.id, Client: f.client, Remote: f.remote})
	e.relay(f)
}

// connectNonblock starts a non-blocking connect to ap, with the options
// every relayed socket has (TCP_NODELAY, keepalive).
func connectNonblock(ap netip.AddrPort) (int, error) {
	family := unix.AF_INET
	if !ap.Addr().Is4() {
		family = unix.AF_INET6
	}
	fd, err := rawSocket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := setRelayOptions(fd); err != nil {
		rawClose(fd)
		return -1, err
	}
	if err := rawConnect(fd, ap); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		rawClose(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// setRelayOptions sets TCP_NODELAY and keepalive (keepAlive's idle time,
// the system's interval and count) on a socket. Set on a listening socket,
// the sockets it accepts inherit them.
func setRelayOptions(fd int) error {
	opts := []struct{ level, name, value int }{
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAlive.Idle / time.Second)},
	}
	for _, o := range opts {
		if err := rawSetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
