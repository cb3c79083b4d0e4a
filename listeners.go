package main

// A route's listening sockets: one, or one per port of a range. The engines
// (Linux) or an accept loop per socket (the goroutine relay) accept on
// them; Update adds and removes the ports a changed range gains and loses.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// listenSock is one listening socket of a route.
type listenSock struct {
	port int // the local port it listens on
	addr net.Addr
	// ln is the socket of a route the goroutine relay serves (an accept
	// loop each); nil when engines accept on fd, their own descriptor.
	ln *net.TCPListener
	fd int
}

// ListenError is Start's and Update's error when some ports of a route's
// range could not be listened on: the route runs on the others.
type ListenError struct {
	Failed map[int]error // by port
}

func (e *ListenError) Error() string {
	return "could not listen on " + e.Ports()
}

// Ports describes the ports that failed and why, the ports with one reason
// together: "ports 8005, 8007-8009 (address already in use)".
func (e *ListenError) Ports() string {
	byReason := map[string][]int{}
	for port, err := range e.Failed {
		why := bindReason(err)
		byReason[why] = append(byReason[why], port)
	}
	reasons := make([]string, 0, len(byReason))
	for why := range byReason {
		reasons = append(reasons, why)
	}
	slices.Sort(reasons)
	var parts []string
	for _, why := range reasons {
		word := "port "
		if len(byReason[why]) > 1 {
			word = "ports "
		}
		parts = append(parts, word+compressPorts(byReason[why])+" ("+why+")")
	}
	return strings.Join(parts, "; ")
}

// listenPorts returns the host and the ports rt listens on.
func listenPorts(rt Route) (host string, ports []int, err error) {
	host, p, err := net.SplitHostPort(rt.ListenAddr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", rt.ListenAddr, err)
	}
	first, err := strconv.Atoi(p)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: invalid port", rt.ListenAddr)
	}
	for i := range max(rt.Ports, 1) {
		ports = append(ports, first+i)
	}
	return host, ports, nil
}

// openSock listens on host:port, for the engines (forEngines: on a
// descriptor the runtime's poller does not watch) or for an accept loop.
func openSock(host string, port int, forEngines bool) (*listenSock, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	lc := net.ListenConfig{KeepAliveConfig: keepAlive, Control: listenControl}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &listenSock{port: port, addr: ln.Addr(), ln: ln.(*net.TCPListener), fd: -1}
	s.port = s.addr.(*net.TCPAddr).Port // port 0: the one the system chose
	if forEngines {
		fd, err := takeListener(s.ln)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.ln, s.fd = nil, fd
	}
	return s, nil
}

// openSocks listens on ports of host for route l and starts accepting on
// them. It returns the ports that failed.
func (l *tcpRoute) openSocks(host string, ports []int) map[int]error {
	failed := map[int]error{}
	var opened []*listenSock
	for _, port := range ports {
		s, err := openSock(host, port, l.engines != nil)
		if err != nil {
			failed[port] = err
			continue
		}
		opened = append(opened, s)
	}
	if len(opened) == 0 {
		return failed
	}
	if l.engines != nil {
		for _, e := range l.engines {
			errc := make(chan error, 1)
			if !e.submit(func() { errc <- e.addSockets(l, opened) }) {
				errc <- net.ErrClosed
			}
			if err := <-errc; err != nil {
				l.closeSocks(opened)
				for _, s := range opened {
					failed[s.port] = err
				}
				return failed
			}
		}
	}
	for _, s := range opened {
		l.socks[s.port] = s
		if s.ln != nil {
			l.wg.Add(1)
			go l.acceptLoop(s)
		}
	}
	return failed
}

// closeSocks closes listening sockets of the route: when it returns, their
// ports are free. An engine socket first stops listening (shutdown: new
// clients are refused at once), then every engine forgets it before it is
// closed, so that none can accept on its number once another file has it.
// It must not run in an engine's loop.
func (l *tcpRoute) closeSocks(socks []*listenSock) {
	for _, s := range socks {
		if s.ln != nil {
			s.ln.Close()
		} else {
			stopListening(s.fd)
		}
	}
	if l.engines != nil {
		for _, e := range l.engines {
			e.forgetSockets(socks)
		}
		for _, s := range socks {
			closeListenerFD(s.fd)
		}
	}
}

// firstAddr is the address of the route's lowest port.
func (l *tcpRoute) firstAddr() net.Addr {
	if l.sni != nil {
		return l.sni.sock.addr // sniroute.go
	}
	var first *listenSock
	for _, s := range l.socks {
		if first == nil || s.port < first.port {
			first = s
		}
	}
	if first == nil {
		return nil
	}
	return first.addr
}

// bindReason is the short reason a listen failed, for the event text.
func bindReason(err error) string {
	if isAddrInUse(err) {
		return "address already in use"
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

// updatedPorts returns the host and ports that route configuration rt
// asks of a running route whose configuration is old, and whether the
// route can take them in place (the same host). Port 0 (a route started on
// a port the system chose) keeps the ports the route has.
func updatedPorts(old *routeConfig, rt Route) (host string, ports []int, ok bool) {
	oldHost, _, _ := net.SplitHostPort(old.ListenAddr)
	host, ports, err := listenPorts(rt)
	if err != nil || host != oldHost {
		return "", nil, false
	}
	if ports[0] == 0 {
		for i := range ports {
			ports[i] = old.firstPort + i
		}
	}
	return host, ports, true
}

// portChanges compares the ports a route has (the keys of have) with the
// ports it is to have: those it loses, and those it must open.
func portChanges[S any](have map[int]S, ports []int) (gone, missing []int) {
	want := make(map[int]bool, len(ports))
	for _, p := range ports {
		want[p] = true
		if _, ok := have[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range have {
		if !want[p] {
			gone = append(gone, p)
		}
	}
	return gone, missing
}

// isResourceError reports whether err is the system running out of
// something (descriptors, buffers, memory) rather than a refusal.
func isResourceError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
