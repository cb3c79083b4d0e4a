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
func (e *engine) newFlow(l *tcpRoute, fd int, client netip.AddrPort, port int) {
	cfg, slot := l.cfg.Load(), &l.stats.slots[e.index]
	if why, kind := l.whyRefuse(cfg, client.Addr()); why != "" {
		closeReset(fd)
		l.turnAway(cfg, slot, client.String(), why, kind, true)
		return
	}
	hold, ok := l.admit(cfg, client) // limits: per client (clientlimits.go)
	if !ok {
		closeReset(fd)
		return
	}
	f := &flow{id: e.newID(), l: l, e: e, fd: [2]int{fd, -1}}
	f.begin(&l.routeCore, cfg, slot, client, e.now, cfg.remoteOffset(port), hold, &connAttempt{})
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

// nextBackend starts connecting to the next backend the lifecycle picks,
// once the current one failed with err (nil: there is none yet). The
// client's bytes wait in its socket meanwhile, for the backend that
// answers. When none is left, or the failure is not the backend's, the
// flow fails.
func (e *engine) nextBackend(f *flow, err error) {
	if f.backend != nil {
		if err := f.attemptFailed(err); err != nil {
			e.fail(f, err)
			return
		}
	}
	b, err := f.connLife.nextBackend()
	if err != nil {
		e.fail(f, err)
		return
	}
	a := f.attempt
	attempt := a.n
	if f.timer != nil {
		f.timer.Stop()
	}
	f.timer = time.AfterFunc(f.cfg.connectTimeout(), func() {
		e.submit(func() {
			if f.attempt != nil && !f.ended && f.attempt.n == attempt {
				e.connectTimedOut(f)
			}
		})
	})
	port := b.port + uint16(a.offset)
	if b.ip.IsValid() {
		a.addrs = []netip.AddrPort{netip.AddrPortFrom(b.ip, port)}
		e.dial(f)
		return
	}
	// A name is resolved for every connection, so DNS changes are followed.
	host, _, _ := net.SplitHostPort(b.addr)
	go func() {
		ips, err := net.DefaultResolver.LookupNetIP(f.route.dials, "ip", host)
		e.submit(func() {
			if f.ended || f.attempt == nil || f.attempt.n != attempt {
				return
			}
			if err != nil {
				e.nextBackend(f, &net.OpError{Op: "dial", Net: "tcp", Err: err})
				return
			}
			for _, ip := range ips {
				f.attempt.addrs = append(f.attempt.addrs, netip.AddrPortFrom(ip.Unmap(), port))
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
	if len(f.attempt.addrs) > 0 {
		return net.TCPAddrFromAddrPort(f.attempt.addrs[0])
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
	for len(f.attempt.addrs) > 0 {
		ap := f.attempt.addrs[0]
		fd, err := connectNonblock(ap)
		if err != nil {
			f.attempt.lastErr = &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
			if isResourceError(err) {
				break
			}
			f.attempt.addrs = f.attempt.addrs[1:]
			continue
		}
		f.fd[sideRemote] = fd
		f.canRead[sideRemote], f.canWrite[sideRemote] = false, false
		if err := e.register(f, sideRemote); err != nil {
			e.fail(f, err)
		}
		return
	}
	if f.attempt.lastErr == nil {
		f.attempt.lastErr = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no address to connect to")}
	}
	e.nextBackend(f, f.attempt.lastErr)
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
		ap := f.attempt.addrs[0]
		f.attempt.addrs = f.attempt.addrs[1:]
		f.attempt.lastErr = &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", err)}
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
	f.connected(f.attempt.addrs[0].String())
	f.timer.Stop()
	f.timer = nil
	if idle := f.cfg.IdleTimeout; idle > 0 {
		f.lastActive = 0
		e.armTimer(f, idle)
	}
	f.opened(e.now, nil, "")
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
