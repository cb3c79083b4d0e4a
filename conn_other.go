//go:build !linux

package main

import (
	"net"
	"sync/atomic"
)

// copySplices: io.Copy between two *net.TCPConn does not splice here, so
// every connection copies chunk by chunk (copyChunks) and its bytes show in
// the status as they go.
const copySplices = false

// Elsewhere a failed direction resets both sides at once, as it always did:
// these are Linux's (conn_linux.go).

func socketGone(c *net.TCPConn) bool                                { return false }
func waitDelivered(c *net.TCPConn, stop func() bool)                {}
func discardUnread(c *net.TCPConn)                                  {}
func endWasCut(src *net.TCPConn, cut, writerDone *atomic.Bool) bool { return cut.Load() }
