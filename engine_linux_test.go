package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEngineSocketOptions: both of the relay's sockets of a connection have
// TCP_NODELAY and keepalive (first probe after keepAlive.Idle): the remote
// one set at dial, the client one inherited from the listener.
func TestEngineSocketOptions(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	addr := startRoute(t, r, 0, echo.Addr())
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	relayPort, echoPort := portOf(r.Addr(0)), portOf(echo.Addr())
	clientPort := portOf(c.LocalAddr())

	// The relay runs in this process: find its two sockets among ours.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		local, err1 := unix.Getsockname(fd)
		peer, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil {
			continue
		}
		var side string
		switch {
		case sockPort(local) == relayPort && sockPort(peer) == clientPort:
			side = "client side"
		case sockPort(peer) == echoPort: // the echo server's sockets have it as local port
			side = "remote side"
		default:
			continue
		}
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAlive.Idle / time.Second)},
		} {
			got, err := unix.GetsockoptInt(fd, o.level, o.opt)
			if err != nil || got != o.want {
				t.Errorf("%s socket: %s = %d (%v), want %d", side, o.name, got, err, o.want)
			}
		}
		found[side] = true
	}
	if !found["client side"] || !found["remote side"] {
		t.Fatalf("relay sockets not found: %v", found)
	}
}

// sockPort returns the port of an IP socket address, or 0.
func sockPort(sa unix.Sockaddr) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

// TestEngineDataAndEndTogether: a short message and the client's FIN that
// arrive together are both passed on (the engine skips the read after a
// short one only until the peer's end has been reported), in many rounds.
func TestEngineDataAndEndTogether(t *testing.T) {
	echo := echoServer(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	addr := startRoute(t, r, 0, echo.Addr())
	for i := range 200 {
		c := dialTCP(t, addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := randomBytes(uint64(i), 1+i*7)
		// One write and the FIN right after: they often arrive together.
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round %d: got %d bytes (%v), want the %d sent, then EOF", i, len(got), err, len(msg))
		}
	}
}
