//go:build !linux

package main

import (
	"errors"
	"net"
	"syscall"
)

// engine is the Linux event loop (engine_linux.go). Elsewhere every relayed
// connection has its own goroutines.
type engine struct{ index int }

// engineCount is 0: no engines.
func engineCount() int { return 0 }

func reserveSpareProc(n int) {}

func newEngine(index int) (*engine, error) {
	return nil, errors.New("no relay engine on this platform")
}

func (e *engine) Close() error          { return nil }
func (e *engine) submit(fn func()) bool { return false }
func (e *engine) addSockets(l *tcpRoute, socks []*listenSock) error {
	return errors.ErrUnsupported
}

func takeListener(ln *net.TCPListener) (int, error)               { return -1, errors.ErrUnsupported }
func closeListenerFD(fd int)                                      {}
func stopListening(fd int)                                        {}
func (e *engine) forgetSockets(socks []*listenSock)               {}
func (e *engine) routeBytes(map[int]*routeStats) map[int][2]int64 { return nil }
func (e *engine) repace(*routeStats)                              {}

// listenControl sets nothing: accepted sockets get their options from Go.
var listenControl func(network, address string, c syscall.RawConn) error
