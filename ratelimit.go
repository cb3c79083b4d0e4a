package main

// Token buckets, written as GCRA (the generic cell rate algorithm): a
// bucket is one time, its theoretical arrival time (tat), rather than a
// count of tokens and a refill timer. A full bucket is a tat in the past;
// each use pushes the tat on by its cost; a use that would push it more
// than the burst past now is over the rate. No goroutine, no timer: a
// bucket costs its few bytes and a comparison per use.
//
// clientRate is clientrate='s bucket of one client (new connections);
// byteBucket is a bandwidth bucket of rate= or connrate= (bytes), used
// by bandwidth.go.

import (
	"sync"
	"time"
)

// clientRate is one client's bucket of new connections (clientrate=N/D):
// a new connection costs interval (D/N), and the bucket holds N of them.
// The zero value is full. Its user holds the lock that guards it.
type clientRate struct{ tat time.Time }

// allow takes one connection at now, or reports false, taking nothing,
// when the client has used its burst and not waited interval since.
func (b *clientRate) allow(now time.Time, interval time.Duration, burst int) bool {
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	if next.Sub(now) > time.Duration(burst)*interval {
		return false
	}
	b.tat = next
	return true
}

// full reports whether the bucket is full again at now: forgetting it
// changes nothing.
func (b *clientRate) full(now time.Time) bool { return !b.tat.After(now) }

// byteBucket is a bandwidth bucket: rate bytes a second, holding up to a
// burst. A user reserves the bytes it means to move (reserve): the bucket
// answers when they may move, which is when the bucket is out of the debt
// that the reservations before made, and charges them at once; what the
// user did not move is given back (refund). So the users of one bucket
// (a route's connections under rate=) are let through in the order they
// asked, each for a chunk, which shares the rate fairly; a relay that
// cannot wait (the engine's event loop) arms a timer for the answer; and
// the bytes moved by any time t stay within burst + rate*t plus the
// chunks reserved and not yet moved.
// The zero value is full; it is safe for concurrent use.
type byteBucket struct {
	mu  sync.Mutex
	tat time.Time // when the bucket is out of debt
}

// reserve reserves n bytes of a bucket of rate bytes a second that holds
// burst bytes at most, to move no earlier than earliest: it returns when
// they may move, and charges them from then.
func (b *byteBucket) reserve(n int, earliest time.Time, rate, burst int64) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	at := earliest
	if b.tat.After(at) {
		at = b.tat
	}
	b.tat = b.add(n, at, rate, burst)
	return at
}

// refund gives back n reserved bytes that were not moved.
func (b *byteBucket) refund(n int, rate int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.tat = b.tat.Add(-bytesTime(int64(n), rate))
	b.mu.Unlock()
}

// reset makes the bucket full, forgetting its debt.
func (b *byteBucket) reset() {
	b.mu.Lock()
	b.tat = time.Time{}
	b.mu.Unlock()
}

// inDebt reports whether the bucket is in debt at now.
func (b *byteBucket) inDebt(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tat.After(now)
}

// take charges n bytes at now if the bucket is not in debt, for what
// cannot wait (a datagram); else it reports false, taking nothing.
func (b *byteBucket) take(n int, now time.Time, rate, burst int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat.After(now) {
		return false
	}
	b.tat = b.add(n, now, rate, burst)
	return true
}

// add is the bucket's tat once n more bytes are charged, moved from
// started on. b.mu is held.
func (b *byteBucket) add(n int, started time.Time, rate, burst int64) time.Time {
	floor := started.Add(-bytesTime(burst, rate)) // a full bucket
	tat := b.tat
	if tat.Before(floor) {
		tat = floor
	}
	return tat.Add(bytesTime(int64(n), rate))
}

// bytesTime is how long n bytes take at rate bytes a second.
func bytesTime(n, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(n) / float64(rate) * float64(time.Second))
}

// meter measures a throughput: the bytes counted in the last whole second.
// The zero value is ready; it is safe for concurrent use.
type meter struct {
	mu        sync.Mutex
	sec       int64 // the second (Unix) being counted
	cur, prev int64 // bytes of that second, and of the one before
}

// add counts n bytes at now.
func (m *meter) add(n int, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now.Unix())
	m.cur += int64(n)
}

// rate is the bytes counted in the last whole second before now.
func (m *meter) rate(now time.Time) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now.Unix())
	return m.prev
}

// roll moves the count on to second s. m.mu is held.
func (m *meter) roll(s int64) {
	switch {
	case s == m.sec:
	case s == m.sec+1:
		m.sec, m.prev, m.cur = s, m.cur, 0
	case s > m.sec:
		m.sec, m.prev, m.cur = s, 0, 0
	}
}
