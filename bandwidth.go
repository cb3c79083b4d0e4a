package main

// Bandwidth caps (issue 26, docs/limits.md): rate= is a route's bytes a
// second in each direction, shared by its connections; connrate= is each
// connection's, in each direction. Over a cap a TCP connection is read
// more slowly, never dropped: before each chunk it waits until its own
// bucket and the route's are out of debt, moves at most a chunk, and is
// charged what it moved (ratelimit.go). A chunk is 1/20 s of the smaller
// cap, so the shared bucket is handed out in small pieces, in turn, and
// a connection under its connrate= never waits for another's.
//
// On Linux the chunk is moved with io.CopyN between the two sockets,
// which splices from an *io.LimitedReader: paced copying keeps splicing.
// Routes with a cap are relayed by goroutines (Relay.enginesFor), not by
// the engine. UDP datagrams over a cap are dropped and counted
// (datagrams_dropped.rate).
//
// The figures live in the route's routeLimiter, which a reload updates in
// place: open connections go on under the new figures. A connection
// opened while its route had no cap is not paced.

import (
	"sync/atomic"
	"time"
)

// The directions of a connection, as the counters name them.
const (
	dirSent     = 0 // client to backend
	dirReceived = 1 // backend to client
)

// Chunk bounds: the most bytes moved between two looks at the buckets,
// and what a full bucket holds.
const (
	minChunk = 2 << 10
	maxChunk = 256 << 10
	// pollPaced bounds a paced direction's sleep, so that an aborted
	// connection's goroutine returns soon.
	pollPaced = 100 * time.Millisecond
)

// routeBandwidth is a route's shared buckets (rate=) and throughput, in
// each direction.
type routeBandwidth struct {
	bucket    [2]byteBucket
	through   [2]meter
	rateDrops atomic.Int64 // UDP datagrams dropped over rate= or connrate=
}

// chunk is the most bytes a paced direction moves at a time under l:
// 1/20 s of the smaller cap, from minChunk to maxChunk.
func (l Limits) chunk() int {
	r := l.Rate
	if r == 0 || (l.ConnRate > 0 && l.ConnRate < r) {
		r = l.ConnRate
	}
	return int(min(max(r/20, minChunk), maxChunk))
}

// burst is what a full bucket holds under l: four chunks.
func (l Limits) burst() int64 { return 4 * int64(l.chunk()) }

// pacer paces one direction of a connection (or UDP session) of a route
// with a cap.
type pacer struct {
	lim     *routeLimiter
	dir     int
	conn    byteBucket // connrate=
	started time.Time  // when wait last let the direction through
}

// pacer returns the pacer of direction dir of a new connection, or nil
// when the route has no cap.
func (lim *routeLimiter) pacer(dir int) *pacer {
	if f := lim.figures.Load(); f == nil || !f.paced() {
		return nil
	}
	return &pacer{lim: lim, dir: dir}
}

// wait waits until the connection may move bytes again under its own cap,
// then for its turn under the route's, and returns how many at most; it
// returns early, with 0, once stopped reports true.
func (p *pacer) wait(stopped func() bool) int {
	for {
		l := p.lim.limits()
		if !l.paced() {
			return maxChunk // the caps were lifted by a reload
		}
		if l.ConnRate > 0 {
			if d := p.conn.owed(time.Now()); d > 0 {
				if stopped() {
					return 0
				}
				time.Sleep(min(d, pollPaced))
				continue
			}
		}
		if l.Rate > 0 && !p.lim.band.bucket[p.dir].wait(pollPaced, stopped) {
			return 0
		}
		p.started = time.Now()
		return l.chunk()
	}
}

// charge charges n bytes moved since wait let them through to the
// connection's and the route's buckets, and counts them in the route's
// throughput.
func (p *pacer) charge(n int) {
	if n <= 0 {
		return
	}
	l := p.lim.limits()
	if l.ConnRate > 0 {
		p.conn.charge(n, p.started, l.ConnRate, l.burst())
	}
	if l.Rate > 0 {
		p.lim.band.bucket[p.dir].charge(n, p.started, l.Rate, l.burst())
	}
	p.lim.band.through[p.dir].add(n, time.Now())
}

// pass reports whether a datagram of n bytes goes (and charges it), or
// is dropped over a cap (and counts it).
func (p *pacer) pass(n int) bool {
	l, now := p.lim.limits(), time.Now()
	if (l.ConnRate > 0 && !p.conn.take(n, now, l.ConnRate, l.burst())) ||
		(l.Rate > 0 && !p.lim.band.bucket[p.dir].take(n, now, l.Rate, l.burst())) {
		p.lim.band.rateDrops.Add(1)
		return false
	}
	p.lim.band.through[p.dir].add(n, now)
	return true
}

// throughput returns the route's bytes a second in each direction over
// the last whole second, where it has a cap (else zeros).
func (lim *routeLimiter) throughput() [2]int64 {
	if !lim.limits().paced() {
		return [2]int64{}
	}
	now := time.Now()
	return [2]int64{lim.band.through[0].rate(now), lim.band.through[1].rate(now)}
}

// udpPace is a UDP session's pacers, one per direction; nil when its
// route had no cap when it opened.
type udpPace [2]pacer

// udpPace returns the pacers of a new UDP session, or nil.
func (lim *routeLimiter) udpPace() *udpPace {
	if f := lim.figures.Load(); f == nil || !f.paced() {
		return nil
	}
	return &udpPace{{lim: lim, dir: dirSent}, {lim: lim, dir: dirReceived}}
}

// pass reports whether a datagram of n bytes in direction dir goes, or is
// dropped over a cap (counted).
func (p *udpPace) pass(dir, n int) bool { return p == nil || p[dir].pass(n) }
