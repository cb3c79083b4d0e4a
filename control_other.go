//go:build !windows

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// defaultControlPath is the control socket of the service run by systemd
// with the default config file (the unit's RuntimeDirectory).
const defaultControlPath = "/run/relaytcp/control.sock"

// controlPath is where the service with the config file configPath listens
// for control requests: $RELAYTCP_CONTROL if set; defaultControlPath for
// the default config file; else next to the config file, PATH.sock.
func controlPath(configPath string) string {
	if p := os.Getenv("RELAYTCP_CONTROL"); p != "" {
		return p
	}
	if filepath.Clean(configPath) == DefaultConfigPath {
		return defaultControlPath
	}
	return configPath + ".sock"
}

// listenControlChannel listens on the Unix socket path, readable and
// writable by the service's user only (mode 0600; root can use it too;
// the control server admits only those two users, refusePeer). A
// socket file left by a service that died is replaced; one a running
// service answers on is not.
func listenControlChannel(path string) (net.Listener, error) {
	if dir := filepath.Dir(path); dir == filepath.Dir(defaultControlPath) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("control channel: %w", err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control channel %s: a file that is not a socket is there", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control channel %s: another relaytcp service answers there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control channel: remove the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control channel: %w", err)
	}
	return ln, nil
}

// refusePeer says why the peer of the control connection c may not use
// it, or nil: only root and the service's own user may (SO_PEERCRED, where
// the system has it).
func refusePeer(c net.Conn) error {
	if uid, ok := peerUID(c); !ok || uid == 0 || uid == os.Getuid() {
		return nil
	}
	return errAccessDenied(c.LocalAddr().String())
}

// errAccessDenied says that the user may not use the control channel at
// path, and who may.
func errAccessDenied(path string) error {
	return fmt.Errorf("access denied to the control channel %s: run it as root or as the service's user", path)
}

// dialControl connects to the service's control socket.
func dialControl(path string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil, errNotRunning
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return nil, errAccessDenied(path)
	}
	return nil, fmt.Errorf("control channel %s: %w", path, err)
}
