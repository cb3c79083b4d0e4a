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
func waitDelivered(c *net.TCPConn, stop func() bool) bool           { return true }
func discardQueued(c *net.TCPConn)                                  {}
func endWasCut(src *net.TCPConn, cut, writerDone *atomic.Bool) bool { return cut.Load() }

// acknowledged is 0: the system does not say here what a peer has
// acknowledged, so the stall watch counts the bytes written (halfConn.
// checkStall). peerEnded is the system's own (conn_windows.go, ...).
func acknowledged(c *net.TCPConn) int64 { return 0 }
