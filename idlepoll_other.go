//go:build !linux

package main

import "errors"

// idlePoller parks idle directions without goroutines; only Linux has one
// (idlepoll_linux.go). Elsewhere every direction has its own goroutine.
type idlePoller struct{}

func newIdlePoller() (*idlePoller, error) {
	return nil, errors.New("no idle poller on this platform")
}

func (p *idlePoller) Close() error       { return nil }
func (h *halfConn) attach(p *idlePoller) {}
func (h *halfConn) park()                {}
func (h *halfConn) pump()                {}
func (h *halfConn) unpark() bool         { return false }
