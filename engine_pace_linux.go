package main

// The engine's side of the bandwidth caps (bandwidth.go): before a paced
// direction reads or splices, it reserves a chunk; a chunk that is not due
// yet is waited for by a timer, not by the loop, and the direction reads
// or splices no more than the chunk. A flow pays for this only once its
// route has a cap: until then, a look at the route's figures before each
// read.

import (
	"time"

	"golang.org/x/sys/unix"
)

// flowPace is the pacing of an engine flow whose route has a cap: a pacer
// per direction, and the timer that resumes a direction whose chunk is not
// due yet. Made when the flow first reads under a cap, and kept in
// engine.paces (the flow marked paced) until a reload lifts the cap or the
// flow ends. Owned by the engine's loop.
type flowPace struct {
	dirs [2]pacer
	// due is when each direction's chunk is due while it waits for it;
	// zero when it does not wait.
	due    [2]time.Time
	timer  *time.Timer
	resume func() // submitted by the timer: resumes the flow (resumePaced)
}

// paceRead returns how many of want bytes direction d of f may read now,
// f being paced or its route having a cap (move looks, which costs a
// route without a cap two loads): at most the reserved chunk, 0 while the
// chunk is not due (the pace timer resumes the direction), want once a
// reload has lifted the cap.
func (e *engine) paceRead(f *flow, d, want int) int {
	var fp *flowPace
	if f.paced {
		fp = e.paces[f]
	} else {
		lim := &f.route.stats.limits
		fp = &flowPace{dirs: [2]pacer{{lim: lim, dir: dirSent}, {lim: lim, dir: dirReceived}}}
		fp.resume = func() { e.resumePaced(f, fp) }
		if e.paces == nil {
			e.paces = make(map[*flow]*flowPace)
		}
		e.paces[f], f.paced = fp, true
	}
	if !fp.due[d].IsZero() {
		return 0
	}
	p := &fp.dirs[d]
	upTo := 0
	if p.held == 0 {
		// A new chunk: of what is there, so that no turn in the route's
		// queue is taken for nothing (a reservation of bytes that have
		// not come holds up the connections behind it).
		queued, err := unix.IoctlGetInt(f.fd[d], unix.SIOCINQ)
		switch {
		case err != nil:
		case queued > 0:
			upTo = queued
		case f.peerDone[d] || f.reset[d]:
			return want // only its end, or its error, is left: read it now
		default:
			f.canRead[d] = false // nothing yet: new data brings an edge
			return 0
		}
	}
	n, at := p.reserve(e.now, upTo)
	if n == 0 { // a reload lifted the cap
		e.dropPace(f)
		return want
	}
	if at.After(e.now) {
		fp.due[d] = at
		f.lastActive = e.now.Sub(f.start) // it has bytes to move: not idle
		e.armPace(fp)
		return 0
	}
	return min(n, want)
}

// waitsForChunk reports whether a direction of f waits for its chunk: the
// flow is not idle, whatever its idle timeout says.
func (e *engine) waitsForChunk(f *flow) bool {
	fp := e.paces[f]
	return fp != nil && (!fp.due[0].IsZero() || !fp.due[1].IsZero())
}

// settlePace settles direction d's reservation with the n bytes its read
// moved (n < 0: none). f is paced.
func (e *engine) settlePace(f *flow, d, n int) {
	if fp := e.paces[f]; fp != nil {
		fp.dirs[d].settle(n)
	}
}

// armPace sets the pace timer to the first chunk due.
func (e *engine) armPace(fp *flowPace) {
	var first time.Time
	for _, at := range fp.due {
		if !at.IsZero() && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if first.IsZero() {
		return
	}
	d := first.Sub(e.now)
	if fp.timer == nil {
		fp.timer = time.AfterFunc(d, func() { e.submit(fp.resume) })
		return
	}
	fp.timer.Reset(d)
}

// resumePaced runs when the pace timer fires: the directions whose chunk
// is due move again, and so do those whose reservation a reload made
// stale (given back: they reserve again under the new figures); the
// timer is set for the others.
func (e *engine) resumePaced(f *flow, fp *flowPace) {
	if f.ended || e.paces[f] != fp { // ended, or its pacing was dropped
		return
	}
	now := time.Now()
	e.now = now
	moved := false
	for d, at := range fp.due {
		switch {
		case at.IsZero():
		case fp.dirs[d].stale():
			fp.dirs[d].settle(0)
			fallthrough
		case !at.After(now):
			fp.due[d] = time.Time{}
			moved = true
		}
	}
	e.armPace(fp)
	if moved {
		e.relay(f)
	}
}

// repace gives back the reservations that the paced flows of a route
// (stats: its counters, which its instances share) took under figures a
// reload has just changed, and moves those flows again: they reserve under
// the new figures, or go unpaced once the cap is lifted.
func (e *engine) repace(stats *routeStats) {
	e.now = time.Now()
	for f, fp := range e.paces {
		if f.route.stats != stats {
			continue
		}
		moved := false
		for d := range fp.dirs {
			if !fp.due[d].IsZero() && fp.dirs[d].stale() {
				fp.dirs[d].settle(0)
				fp.due[d] = time.Time{}
				moved = true
			}
		}
		if moved {
			e.armPace(fp)
			e.relay(f)
		}
	}
}

// dropPace ends the pacing of f: its reservations are given back and its
// timer stopped (the flow ended, or its route's cap was lifted).
func (e *engine) dropPace(f *flow) {
	fp := e.paces[f]
	delete(e.paces, f)
	f.paced = false
	if fp == nil {
		return
	}
	if fp.timer != nil {
		fp.timer.Stop()
	}
	for d := range fp.dirs {
		fp.dirs[d].settle(0)
	}
	if waited := !fp.due[0].IsZero() || !fp.due[1].IsZero(); waited && !f.ended && !f.queued {
		f.queued = true // a direction that waited for its chunk reads again
		e.again = append(e.again, f)
	}
}
