package main

// The engine's side of the bandwidth caps (bandwidth.go): before a paced
// direction reads or splices, it reserves a chunk; a chunk that is not due
// yet is waited for by a timer, not by the loop, and the direction reads
// or splices no more than the chunk. A flow pays for this only once its
// route has a cap: until then, a look at the route's figures before each
// read.

import "time"

// flowPace is the pacing of an engine flow whose route has a cap: a pacer
// per direction, and the timer that resumes a direction whose chunk is not
// due yet. Made when the flow first reads under a cap, dropped when a
// reload lifts the cap. Owned by the engine's loop.
type flowPace struct {
	dirs [2]pacer
	// due is when each direction's chunk is due while it waits for it;
	// zero when it does not wait.
	due    [2]time.Time
	timer  *time.Timer
	resume func() // submitted by the timer: resumes the flow (resumePaced)
}

// paceRead returns how many of want bytes direction d of f may read now:
// want on a route without a cap, at most the reserved chunk on one with,
// 0 while the chunk is not due (the pace timer resumes the direction).
func (e *engine) paceRead(f *flow, d, want int) int {
	if f.pace == nil {
		lim := &f.route.stats.limits
		if !lim.paced() {
			return want
		}
		f.pace = &flowPace{dirs: [2]pacer{{lim: lim, dir: dirSent}, {lim: lim, dir: dirReceived}}}
		fp := f.pace
		fp.resume = func() { e.resumePaced(f, fp) }
	}
	fp := f.pace
	if !fp.due[d].IsZero() {
		return 0
	}
	n, at := fp.dirs[d].reserve(e.now)
	if n == 0 { // a reload lifted the cap
		e.dropPace(f)
		return want
	}
	if at.After(e.now) {
		fp.due[d] = at
		e.armPace(f)
		return 0
	}
	return min(n, want)
}

// paced settles direction d's reservation, if it holds one, with the n
// bytes its read moved (n < 0: none).
func (f *flow) paced(d, n int) {
	if f.pace != nil {
		f.pace.dirs[d].settle(n)
	}
}

// armPace sets the pace timer to the first chunk due.
func (e *engine) armPace(f *flow) {
	fp := f.pace
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
// is due move again; the timer is set for the others.
func (e *engine) resumePaced(f *flow, fp *flowPace) {
	if f.ended || fp != f.pace { // ended, or its pacing was dropped
		return
	}
	now := time.Now()
	e.now = now
	for d, at := range fp.due {
		if !at.IsZero() && !at.After(now) {
			fp.due[d] = time.Time{}
		}
	}
	e.armPace(f)
	e.relay(f)
}

// dropPace ends the pacing of f: its reservations are given back and its
// timer stopped (the flow ended, or its route's cap was lifted).
func (e *engine) dropPace(f *flow) {
	fp := f.pace
	if fp == nil {
		return
	}
	if fp.timer != nil {
		fp.timer.Stop()
	}
	for d := range fp.dirs {
		fp.dirs[d].settle(0)
	}
	f.pace = nil
	if waited := !fp.due[0].IsZero() || !fp.due[1].IsZero(); waited && !f.ended && !f.queued {
		f.queued = true // a direction that waited for its chunk reads again
		e.again = append(e.again, f)
	}
}
