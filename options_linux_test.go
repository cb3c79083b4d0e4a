package main

import (
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// unansweringServer returns a loopback port whose listener never accepts and
// whose accept queue is full, so that a connect there hangs.
func unansweringServer(t *testing.T) int {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for range 4 { // fill the accept queue; later SYNs are dropped
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel still accepts connections on a full queue")
	}
	return port
}

// TestConnectTimeout: connect= bounds the dial to a remote side that does
// not answer; the client is closed and the failure reported.
func TestConnectTimeout(t *testing.T) {
	port := unansweringServer(t)
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	startSpec(t, r, "127.0.0.1:"+strconv.Itoa(freePort(t))+" 127.0.0.1 "+strconv.Itoa(port)+" connect=300ms")
	c := dialTCP(t, r.Addr(0).String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatal("client not closed after the connect timeout")
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("client closed after %v; want about the 300ms connect timeout", d)
	}
	if !eventually(2*time.Second, func() bool { return rec.count(ConnFailed, "i/o timeout") == 1 }) {
		t.Errorf("want one Failed event with a timeout: %+v", rec.events)
	}
}
