package main

// Bandwidth caps (issue 26, docs/limits.md): rate= is a route's bytes a
// second in each direction, shared by its connections; connrate= is each
// connection's, in each direction. Over a cap a TCP connection is read
// more slowly, never dropped: before each chunk it reserves the chunk in
// its own bucket and then in the route's, waits until both say it is due,
// moves at most the chunk and gives back what it did not move
// (ratelimit.go). A chunk is 1/20 s of the smaller cap, so the shared
// bucket is handed out in small pieces, in the order the connections ask
// (fair shares), and a connection under its connrate= never waits for
// another's.
//
// Each relay paces in its own way, by the same rule (pacer): before each
// chunk it reserves the chunk, waits until it is due, moves at most that
// and settles what it moved. The goroutine relay sleeps (pacedcopy.go;
// on Linux it moves the chunk with io.CopyN, which splices); the Linux
// engine arms a timer and reads or splices no more than the chunk
// (engine_pace_linux.go). UDP datagrams over a cap are dropped and
// counted (datagrams_dropped.rate).
//
// The figures live in the route's routeLimiter, which a reload updates in
// place: open connections go on under the new figures, a cap given to a
// route applies to its open connections too (the engine looks at the
// figures before each read; the goroutine relay's unpaced copies are
// woken by a read deadline, see repaceOpen), and a lifted cap lets them
// go at full speed.

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
// with a cap. A chunk is reserved in two steps, its connection's bucket
// first (connrate=), then, once that is due, the route's (rate=): so a
// connection that waits for its own cap holds no place in the route's.
type pacer struct {
	lim  *routeLimiter
	dir  int
	conn byteBucket // connrate=
	// The reservation not settled yet: its bytes, the buckets it holds
	// (step: 1 its connection's, 2 the route's too) and their rates.
	held           int
	step           uint8
	rate, connRate int64
}

// paced reports whether the route has a cap now.
func (lim *routeLimiter) paced() bool {
	f := lim.figures.Load()
	return f != nil && f.paced()
}

// pacer returns the pacer of direction dir of a connection, or nil when
// the route has no cap.
func (lim *routeLimiter) pacer(dir int) *pacer {
	if !lim.paced() {
		return nil
	}
	return &pacer{lim: lim, dir: dir}
}

// reserve reserves the direction's next chunk at now, under the figures in
// force, of at most upTo bytes (what the relay knows is there to move; 0:
// unknown), and returns its bytes and when they may move. When that is
// after now, the relay waits until then and calls reserve again: it
// answers for the next step, or that the chunk is due (a time not after
// now). It returns 0 bytes when the route has no cap any more (a reload
// lifted it): the relay goes on unpaced.
func (p *pacer) reserve(now time.Time, upTo int) (int, time.Time) {
	if p.held == 0 {
		l := p.lim.limits()
		if !l.paced() {
			return 0, now
		}
		p.held, p.step, p.rate, p.connRate = l.chunk(), 0, l.Rate, l.ConnRate
		if upTo > 0 {
			p.held = min(p.held, upTo)
		}
	}
	burst := Limits{Rate: p.rate, ConnRate: p.connRate}.burst()
	if p.step == 0 {
		p.step = 1
		if p.connRate > 0 {
			if at := p.conn.reserve(p.held, now, p.connRate, burst); at.After(now) {
				return p.held, at
			}
		}
	}
	if p.step == 1 {
		p.step = 2
		if p.rate > 0 {
			if at := p.lim.band.bucket[p.dir].reserve(p.held, now, p.rate, burst); at.After(now) {
				return p.held, at
			}
		}
	}
	return p.held, now
}

// stale reports whether the pacer holds a reservation taken under figures
// that a reload has changed since: a relay waiting for it gives it back
// (settle(0)) and reserves again, so that a cap lifted or raised reaches
// the connections already waiting in the route's queue.
func (p *pacer) stale() bool {
	if p.held == 0 {
		return false
	}
	l := p.lim.limits()
	return l.Rate != p.rate || l.ConnRate != p.connRate
}

// settle ends the reservation: moved of its bytes moved, and count in the
// route's throughput; the rest is given back to the buckets it held.
func (p *pacer) settle(moved int) {
	rest := p.use(moved)
	if rest > 0 {
		if p.step >= 1 && p.connRate > 0 {
			p.conn.refund(rest, p.connRate)
		}
		if p.step >= 2 && p.rate > 0 {
			p.lim.band.bucket[p.dir].refund(rest, p.rate)
		}
	}
	p.held, p.step = 0, 0
}

// use counts moved bytes of the reservation as moved (in the route's
// throughput) and returns how many it has left, which the relay may move
// later without waiting again: a reader that got less than the chunk
// keeps the rest for its next read (settle gives back what is left
// unused in the end).
func (p *pacer) use(moved int) int {
	if moved > 0 {
		p.held -= moved
		p.lim.band.through[p.dir].add(moved, time.Now())
	}
	return p.held
}

// await reserves the next chunk and sleeps until it is due, for a relay
// that may block: it returns the chunk's bytes (0: the route has no cap
// any more), or false, the reservation given back, once stopped reports
// true. Every pollPaced while it sleeps it looks whether stopped, whether
// a reload changed the figures (it reserves again under the new ones),
// and calls touch, if any: a connection waiting for its turn is not idle.
func (p *pacer) await(stopped func() bool, touch func()) (int, bool) {
	for {
		now := time.Now()
		n, at := p.reserve(now, 0)
		if n == 0 || !at.After(now) {
			return n, true
		}
		for d := at.Sub(now); d > 0; d = time.Until(at) {
			if stopped() {
				p.settle(0)
				return 0, false
			}
			if p.stale() {
				p.settle(0)
				break
			}
			if touch != nil {
				touch()
			}
			time.Sleep(min(d, pollPaced))
		}
	}
}

// pass reports whether a datagram of n bytes goes (and charges it), or
// is dropped over a cap (and counts it): a datagram that a bucket in debt
// drops is charged to neither.
func (p *pacer) pass(n int) bool {
	l, now := p.lim.limits(), time.Now()
	route := &p.lim.band.bucket[p.dir]
	if (l.ConnRate > 0 && p.conn.inDebt(now)) || (l.Rate > 0 && route.inDebt(now)) ||
		(l.ConnRate > 0 && !p.conn.take(n, now, l.ConnRate, l.burst())) ||
		(l.Rate > 0 && !route.take(n, now, l.Rate, l.burst())) {
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

// udpPace is a UDP session's pacers, one per direction; made at the
// session's first datagram under a cap (passDatagram).
type udpPace [2]pacer

// passDatagram reports whether a datagram of n bytes in direction dir of
// the UDP session whose pacers pace holds goes, or is dropped over a cap
// (counted). A session of a route without a cap pays an atomic load.
func (lim *routeLimiter) passDatagram(pace *atomic.Pointer[udpPace], dir, n int) bool {
	if !lim.paced() {
		return true // no cap, or no more: a session's pacers wait unused
	}
	p := pace.Load()
	if p == nil {
		p = &udpPace{{lim: lim, dir: dirSent}, {lim: lim, dir: dirReceived}}
		if !pace.CompareAndSwap(nil, p) {
			p = pace.Load()
		}
	}
	return p[dir].pass(n)
}
