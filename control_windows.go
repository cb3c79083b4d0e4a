package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// controlPipeName is the service's control channel.
const controlPipeName = `\\.\pipe\RelayTCPsvc`

// controlPipeSDDL admits SYSTEM and the Administrators group (an elevated
// administrator) with full access, and nobody else: a protected DACL, so
// nothing is inherited.
const controlPipeSDDL = "D:P(A;;GA;;;SY)(A;;GA;;;BA)"

// controlPath is the control channel's name: one service per machine.
func controlPath(configPath string) string { return controlPipeName }

// listenControlChannel creates the named pipe's listener. The first
// instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, so that another
// process that already serves the name makes this fail rather than share
// it.
func listenControlChannel(path string) (net.Listener, error) {
	sd, err := windows.SecurityDescriptorFromString(controlPipeSDDL)
	if err != nil {
		return nil, fmt.Errorf("control channel %s: security descriptor: %w", path, err)
	}
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("control channel %s: %w", path, err)
	}
	quit, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("control channel %s: create event: %w", path, err)
	}
	l := &pipeListener{path: path, name: name, quit: quit}
	l.sa = &windows.SecurityAttributes{SecurityDescriptor: sd}
	l.sa.Length = uint32(unsafe.Sizeof(*l.sa))
	if l.next, err = l.newInstance(true); err != nil {
		windows.CloseHandle(quit)
		return nil, err
	}
	return l, nil
}

// pipeListener accepts clients of a named pipe: each Accept waits for a
// client on an instance and makes the next one.
type pipeListener struct {
	path string
	name *uint16
	sa   *windows.SecurityAttributes
	quit windows.Handle // set by Close: a waiting Accept gives up

	mu        sync.Mutex
	next      windows.Handle // the instance the next client connects to
	accepting bool           // an Accept waits on next
	closed    bool
}

// newInstance creates an instance of the pipe, for overlapped I/O (Go's
// runtime poller then serves its reads and writes, with deadlines).
func (l *pipeListener) newInstance(first bool) (windows.Handle, error) {
	flags := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	h, err := windows.CreateNamedPipe(l.name, flags,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		windows.PIPE_UNLIMITED_INSTANCES, 64<<10, 64<<10, 0, l.sa)
	if err != nil {
		if first && errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return 0, fmt.Errorf("control channel %s: another process serves it (another relaytcp service?)", l.path)
		}
		return 0, fmt.Errorf("control channel %s: %w", l.path, err)
	}
	return h, nil
}

// Accept waits for a client.
func (l *pipeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed || l.accepting {
		l.mu.Unlock()
		return nil, net.ErrClosed
	}
	h := l.next
	l.accepting = true
	l.mu.Unlock()
	defer l.acceptDone()

	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("control channel %s: create event: %w", l.path, err)
	}
	defer windows.CloseHandle(ev)
	ov := &windows.Overlapped{HEvent: ev}
	err = windows.ConnectNamedPipe(h, ov)
	if errors.Is(err, windows.ERROR_IO_PENDING) {
		w, werr := windows.WaitForMultipleObjects([]windows.Handle{ev, l.quit}, false, windows.INFINITE)
		if werr != nil || w != windows.WAIT_OBJECT_0 {
			windows.CancelIoEx(h, ov)
			var n uint32
			windows.GetOverlappedResult(h, ov, &n, true) // the cancel is done: ov is free
			return nil, net.ErrClosed
		}
		var n uint32
		err = windows.GetOverlappedResult(h, ov, &n, false)
	}
	if err != nil && !errors.Is(err, windows.ERROR_PIPE_CONNECTED) {
		// A client that came and went (ERROR_NO_DATA), say: free the
		// instance for the next one.
		windows.DisconnectNamedPipe(h)
		return nil, fmt.Errorf("control channel %s: connect: %w", l.path, err)
	}
	next, err := l.newInstance(false)
	if err != nil {
		return nil, err // the client waits until it gives up
	}
	l.mu.Lock()
	l.next = next
	l.mu.Unlock()
	return &pipeConn{File: os.NewFile(uintptr(h), l.path), addr: pipeAddr(l.path)}, nil
}

// acceptDone ends an Accept; if the listener was closed meanwhile, its
// handles are closed now, the Accept no longer using them.
func (l *pipeListener) acceptDone() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepting = false
	if l.closed {
		l.release()
	}
}

// release closes the waiting instance and the quit event. l.mu is held.
func (l *pipeListener) release() {
	windows.CloseHandle(l.next)
	windows.CloseHandle(l.quit)
	l.next, l.quit = 0, 0
}

// Close stops the listener: a waiting Accept returns net.ErrClosed.
func (l *pipeListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	windows.SetEvent(l.quit)
	if !l.accepting {
		l.release()
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.path) }

// pipeConn is one client's end of the pipe, on the server or the client.
type pipeConn struct {
	*os.File
	addr pipeAddr
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.addr }
func (c *pipeConn) RemoteAddr() net.Addr { return c.addr }

// pipeAddr is a pipe's name as a net.Addr.
type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// refusePeer admits every client: the pipe's security descriptor has
// refused those who may not use it before they connect.
func refusePeer(net.Conn) error { return nil }

// dialControl opens the service's control pipe.
func dialControl(path string) (net.Conn, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("control channel %s: %w", path, err)
	}
	for range 50 {
		h, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil,
			windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED, 0)
		switch {
		case err == nil:
			return &pipeConn{File: os.NewFile(uintptr(h), path), addr: pipeAddr(path)}, nil
		case errors.Is(err, windows.ERROR_PIPE_BUSY):
			time.Sleep(100 * time.Millisecond) // every instance is taken: soon one is free
			continue
		case errors.Is(err, windows.ERROR_FILE_NOT_FOUND):
			return nil, errNotRunning
		case errors.Is(err, windows.ERROR_ACCESS_DENIED):
			return nil, fmt.Errorf("access denied to the control channel %s: run it from an elevated prompt (Run as Administrator)", path)
		default:
			return nil, fmt.Errorf("control channel %s: %w", path, err)
		}
	}
	return nil, fmt.Errorf("control channel %s: busy", path)
}
