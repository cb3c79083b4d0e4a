package main

import "time"

// The stall rule, shared by the engine (engine_linux.go) and the goroutine
// relay (conn.go): once a side has ended (its FIN or its reset has come),
// the direction that carries its last bytes to the other side must keep
// moving. When that other side takes nothing for drainStall, the
// connection is reset, and its Closed line says which side stalled
// (errBackendStalled, errClientStalled, next to the other close reasons in
// conn.go). Without the rule, a backend that stops reading pins the
// connection, its buffers and its descriptors after the client is gone.
//
// The same bound ends the drain of a side that failed (engine.
// drainThenClose, waitDelivered): the other side gets what is queued for
// it while it keeps taking it. Where neither side has ended nothing is
// cut, however long nothing moves: a slow or paused reader is the idle
// timeout's business.

const (
	// drainStall is how long a direction may make no progress once a side
	// has ended.
	drainStall = 5 * time.Second
	// stallPoll is how often a direction that may stall is checked: a cut
	// comes at most that long after drainStall.
	stallPoll = 100 * time.Millisecond
	// drainPoll is how often a draining side is checked: it is closed that
	// soon after it has taken everything.
	drainPoll = 20 * time.Millisecond
)

// stallReason is the close reason of a connection cut because one of its
// sides, the client or the backend, stopped taking data.
func stallReason(clientStalled bool) error {
	if clientStalled {
		return errClientStalled
	}
	return errBackendStalled
}

// stallClock tells when a direction has stopped moving. Its progress is a
// count that grows while the direction moves (the bytes its destination
// has acknowledged, say).
type stallClock struct {
	mark  int64     // the progress count at the last check
	since time.Time // when it last grew
}

// start starts the clock at now with the progress count mark.
func (c *stallClock) start(mark int64, now time.Time) {
	c.mark, c.since = mark, now
}

// stalled records the progress count mark at now and reports whether it
// has not grown for drainStall.
func (c *stallClock) stalled(mark int64, now time.Time) bool {
	if mark > c.mark {
		c.mark, c.since = mark, now
		return false
	}
	return now.Sub(c.since) >= drainStall
}
