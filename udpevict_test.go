package main

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestLeastRecentIsExact: evictions taken from the scanned candidates end
// exactly the session a full scan would, while sessions are used, end and
// start between them, over many scans.
func TestLeastRecentIsExact(t *testing.T) {
	u := &udpRoute{sessions: map[udpKey]*udpSession{}}
	rng := rand.New(rand.NewPCG(1, 2))
	clock := int64(0)
	nextPort := 1
	add := func() {
		clock++
		s := &udpSession{key: udpKey{client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(nextPort))}}
		nextPort++
		s.last.Store(clock)
		u.sessions[s.key] = s
	}
	for range 400 {
		add()
	}
	bruteForce := func() *udpSession {
		var lru *udpSession
		for _, s := range u.sessions {
			if lru == nil || s.last.Load() < lru.last.Load() {
				lru = s
			}
		}
		return lru
	}
	scans := 0
	for i := range 3000 {
		// Some traffic: old and new sessions get datagrams, some end.
		for range rng.IntN(4) {
			for _, s := range u.sessions { // a random one (map order)
				if rng.IntN(3) == 0 {
					clock++
					s.last.Store(clock)
				} else if rng.IntN(10) == 0 {
					delete(u.sessions, s.key)
				}
				break
			}
		}
		if len(u.evictQueue) == 0 {
			scans++
		}
		want := bruteForce()
		got := u.leastRecent()
		if got != want {
			t.Fatalf("eviction %d: got session last=%d, want last=%d", i, got.last.Load(), want.last.Load())
		}
		delete(u.sessions, got.key) // its end
		add()                       // the new client it made room for
	}
	// A scan per 25 evictions (400/16), give or take the skipped ones: far
	// fewer than one per eviction.
	if scans > 3000/10 {
		t.Errorf("%d scans for 3000 evictions", scans)
	}
	u.sessions = map[udpKey]*udpSession{}
	u.evictQueue = nil
	if s := u.leastRecent(); s != nil {
		t.Errorf("no sessions: leastRecent returned %v", s.key)
	}
}

// BenchmarkEvictAtCap: a new client at a cap of 10,000 sessions, each
// evicting the least recent one; "scan" is the full scan per eviction that
// the candidate list replaced, for the ratio.
func BenchmarkEvictAtCap(b *testing.B) {
	for _, mode := range []string{"candidates", "scan"} {
		b.Run(mode, func(b *testing.B) {
			u := &udpRoute{sessions: map[udpKey]*udpSession{}}
			clock := int64(0)
			add := func() {
				clock++
				s := &udpSession{key: udpKey{client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(clock)), port: int(clock >> 16)}}
				s.last.Store(clock)
				u.sessions[s.key] = s
			}
			for range 10000 {
				add()
			}
			b.ResetTimer()
			for range b.N {
				var lru *udpSession
				if mode == "scan" {
					for _, s := range u.sessions {
						if lru == nil || s.last.Load() < lru.last.Load() {
							lru = s
						}
					}
				} else {
					lru = u.leastRecent()
				}
				delete(u.sessions, lru.key)
				add()
			}
		})
	}
}

// TestLeastRecentUnderTraffic: while every session keeps getting
// datagrams, so that each scanned candidate has been used by the time it
// is looked at, a route at its cap still always finds a session to end.
func TestLeastRecentUnderTraffic(t *testing.T) {
	u := &udpRoute{sessions: map[udpKey]*udpSession{}}
	var all []*udpSession
	for i := range 20 {
		s := &udpSession{key: udpKey{client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1000+i))}}
		s.last.Store(int64(i))
		u.sessions[s.key] = s
		all = append(all, s)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the traffic: every session, over and over
		defer close(done)
		for clock := int64(100); ; clock++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range all {
				s.last.Store(clock)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 20000 {
		if u.leastRecent() == nil {
			t.Fatalf("call %d: no session to end among %d", i, len(u.sessions))
		}
	}
}
