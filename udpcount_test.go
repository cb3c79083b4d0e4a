package main

import (
	"net/netip"
	"sync"
	"testing"
)

// TestUDPBytesAfterEnd: bytes a session relays while it ends (a datagram
// already on its way when the session left its route) still reach the
// route's counters, exactly once, however the two interleave.
func TestUDPBytesAfterEnd(t *testing.T) {
	for round := range 200 {
		u := &udpRoute{sessions: map[udpKey]*udpSession{}}
		u.stats, u.relay = &routeStats{}, &Relay{}
		key := udpKey{client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 5000)}
		// dialing: close has no socket to close (none was connected).
		sess := &udpSession{u: u, key: key, dialing: true}
		sess.slot = &u.stats.slots[goroutineSlot]
		u.sessions[key] = sess
		slot := sess.slot
		var wg sync.WaitGroup
		const senders, each, size = 4, 50, 10
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					sess.count(&sess.sentBytes, &slot.sent, size)
					sess.count(&sess.receivedBytes, &slot.received, 2*size)
				}
			}()
		}
		sess.end(errUDPIdle) // while they count
		wg.Wait()
		if got, want := slot.sent.Load(), int64(senders*each*size); got != want {
			t.Fatalf("round %d: route's sent bytes %d, want %d", round, got, want)
		}
		if got, want := slot.received.Load(), int64(senders*each*2*size); got != want {
			t.Fatalf("round %d: route's received bytes %d, want %d", round, got, want)
		}
		if len(u.sessions) != 0 {
			t.Fatalf("round %d: the session is still in the route's table", round)
		}
	}
}

// TestUDPNoSessionOnARemovedPort: a datagram a socket read just before an
// update took its port from the route opens no session (it would outlive
// the socket, its answers lost).
func TestUDPNoSessionOnARemovedPort(t *testing.T) {
	u := &udpRoute{sessions: map[udpKey]*udpSession{}, socks: map[int]*udpSock{}}
	u.stats = &routeStats{}
	u.relay = &Relay{}
	u.cfg.Store(&routeConfig{})
	removed := &udpSock{port: 5300}
	key := udpKey{client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 4000), port: 5300}
	if s := u.open(removed, key); s != nil || len(u.sessions) != 0 {
		t.Errorf("a session opened on a port the route no longer has: %v", u.sessions)
	}
}
