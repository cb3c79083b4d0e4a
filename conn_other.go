//go:build !linux

package main

import "net"

// Elsewhere a failed direction resets both sides at once, as it always did:
// these are Linux's (conn_linux.go).

func socketGone(c *net.TCPConn) bool                 { return false }
func waitDelivered(c *net.TCPConn, stop func() bool) {}
func discardUnread(c *net.TCPConn)                   {}
