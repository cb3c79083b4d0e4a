package main

import (
	"errors"

	"golang.org/x/sys/windows"
)

// isAddrInUse reports whether err says the port is used by another socket.
func isAddrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE)
}
