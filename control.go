package main

// The control channel: how `relaytcp status`, `relaytcp backend` and the
// admin menu reach the running service. On Linux a Unix socket
// (control_other.go), on Windows a named pipe (control_windows.go); only
// administrators can open either. Requests and answers are JSON lines, one
// answer per request, so scripts can use it too:
//
//	{"cmd":"status"}
//	{"ok":true,"status":{"service":"RelayTCPsvc",...}}
//	{"cmd":"backend","action":"disable","route":"0","backend":"web2:8080"}
//	{"ok":true,"message":"Backend web2:8080 of route 0 is disabled: ..."}
//	{"cmd":"stop"}
//	{"ok":true,"message":"Stopping: open connections may finish for 5s"}
//	{"cmd":"nonsense"}
//	{"ok":false,"error":"unknown command \"nonsense\" (commands: status, backend, stop)"}

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// controlRequest is one request on the control channel.
type controlRequest struct {
	Cmd     string `json:"cmd"`               // "status", "backend" or "stop"
	Action  string `json:"action,omitempty"`  // backend: "disable" or "enable"
	Route   string `json:"route,omitempty"`   // backend: the route's number, or its local side (:155)
	Backend string `json:"backend,omitempty"` // backend: HOST:PORT as configured
}

// controlAnswer is the answer to one request.
type controlAnswer struct {
	OK      bool           `json:"ok"`
	Error   string         `json:"error,omitempty"`
	Message string         `json:"message,omitempty"`
	Status  *ServiceStatus `json:"status,omitempty"`
	// afterSent, when set, runs once the answer is written (or could not
	// be): a stop must not close the connection before its answer is out.
	afterSent func()
}

// maxControlRequest bounds a request line.
const maxControlRequest = 64 << 10

const (
	// controlMaxConns caps the control channel's open connections
	// (connServer): a flood holds that many descriptors at most.
	controlMaxConns = 16
	// controlHeaderTimeout is how long a new connection has to send its
	// first request; relaytcp's commands send it at once.
	controlHeaderTimeout = 5 * time.Second
	// controlTimeout bounds the silence between a connection's requests,
	// the writing of an answer, and a client's wait.
	controlTimeout = 30 * time.Second
	// controlCloseWait is how long close waits for answers being written.
	controlCloseWait = 5 * time.Second
)

// controlHandler answers control requests; the service implements it.
type controlHandler interface {
	handleControl(req controlRequest) controlAnswer
}

// controlServer serves a control listener until close.
type controlServer struct {
	handler controlHandler
	conns   *connServer
}

// serveControl starts serving ln's connections with h.
func serveControl(ln net.Listener, h controlHandler) *controlServer {
	s := &controlServer{handler: h}
	s.conns = &connServer{ln: ln, maxConns: controlMaxConns, headerTimeout: controlHeaderTimeout,
		closeWait: controlCloseWait, handle: s.serve}
	s.conns.start()
	return s
}

// serve answers one connection's requests, a line each, until it closes,
// sends a line too long or is silent for too long. A peer that may not use
// the control channel (refusePeer) gets its refusal as the answer to its
// first request, read first so that its sending succeeds and it reads why.
func (s *controlServer) serve(c *serverConn) {
	refused := refusePeer(c.Conn)
	in := bufio.NewScanner(c)
	in.Buffer(make([]byte, 4096), maxControlRequest)
	enc := json.NewEncoder(c)
	for {
		if !in.Scan() {
			if errors.Is(in.Err(), bufio.ErrTooLong) && c.answering() {
				c.SetWriteDeadline(time.Now().Add(controlTimeout))
				enc.Encode(controlAnswer{Error: fmt.Sprintf("request longer than %d bytes", maxControlRequest)})
			}
			return
		}
		if !c.answering() {
			return
		}
		c.SetWriteDeadline(time.Now().Add(controlTimeout))
		var req controlRequest
		var ans controlAnswer
		if refused != nil {
			ans = controlAnswer{Error: refused.Error()}
		} else if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			ans = controlAnswer{Error: fmt.Sprintf("not a JSON request: %v", err)}
		} else {
			ans = s.handler.handleControl(req)
		}
		err := enc.Encode(ans)
		if ans.afterSent != nil {
			ans.afterSent()
		}
		if err != nil || refused != nil {
			return
		}
		c.awaitRequest(controlTimeout)
	}
}

// close stops accepting, ends the connections waiting for a request and
// waits for the answers being written (controlCloseWait at most).
func (s *controlServer) close() {
	s.conns.close()
}

// errNotRunning says that nothing answers on the control channel: the
// service does not run (or runs without its control channel).
var errNotRunning = errors.New("the service is not running")

// askService sends one request to the service listening on the control
// channel at path and returns its answer. Errors: errNotRunning, or one
// that says access was denied, or another.
func askService(path string, req controlRequest) (controlAnswer, error) {
	c, err := dialControl(path)
	if err != nil {
		return controlAnswer{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(controlTimeout))
	// A service that refuses this client may answer and close before it
	// has read the request: its answer, which says why, counts more than
	// the failed sending.
	sendErr := json.NewEncoder(c).Encode(req)
	var ans controlAnswer
	dec := json.NewDecoder(io.LimitReader(c, 64<<20))
	if err := dec.Decode(&ans); err != nil {
		if sendErr != nil {
			return controlAnswer{}, fmt.Errorf("control channel %s: send: %w", path, sendErr)
		}
		return controlAnswer{}, fmt.Errorf("control channel %s: read the answer: %w", path, err)
	}
	if !ans.OK {
		return ans, errors.New(ans.Error)
	}
	return ans, nil
}

// serviceAnswers reports whether a service listens on the control channel
// at path (whether or not it would let this user in).
func serviceAnswers(path string) bool {
	c, err := dialControl(path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stopWait bounds how long stopThroughControl waits for the service to
// stop accepting: its control channel closes first thing as it stops, so
// this only covers a busy machine.
const stopWait = 10 * time.Second

// stopThroughControl asks the service on the control channel at path to
// stop, and waits until its control channel closes: from then on it
// accepts nothing, and its open connections finish within the drain time.
func stopThroughControl(path string) error {
	ans, err := askService(path, controlRequest{Cmd: "stop"})
	switch {
	case err == nil:
	case errors.Is(err, errNotRunning):
		return fmt.Errorf("%w (nothing answers on %s)", errNotRunning, path)
	case ans.Error != "":
		return fmt.Errorf("the service on %s did not stop: %s", path, ans.Error)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		// The service closed the connection as it began to stop, before
		// its answer was out.
	default:
		return err
	}
	deadline := time.Now().Add(stopWait)
	for serviceAnswers(path) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the service on %s still answers %v after it was asked to stop", path, stopWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
