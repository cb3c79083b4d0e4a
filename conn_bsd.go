//go:build freebsd || netbsd || openbsd || dragonfly

package main

import "net"

// peerEnded is false: these systems do not report here that a peer has
// ended without a read of all it sent before, so the stall watch
// (halfConn.checkStall) cuts nothing; idle= still does.
func peerEnded(c *net.TCPConn) bool { return false }
