package main

import "slices"

// Eviction at a UDP route's session cap ends the least recently used
// session. Finding it by a scan of every session for every new client made
// a flood of new source addresses (spoofed, say) cost the route O(sessions)
// under its lock per datagram. Instead one scan takes the oldest sixteenth
// of the sessions, in order, as candidates, and the following evictions take
// them from the front: a candidate whose last datagram is still the one
// the scan saw is older than every session outside the list (their times
// only grow), so it is still the least recent one; a candidate that has
// been used since, or has ended, is skipped. A scan sorts the sessions,
// so an eviction costs about 16·log2(sessions) comparisons amortized, not
// a pass over all of them, and it still ends the session a full scan
// would (up to datagrams that arrive while it looks: the times move
// without the route's lock).

// evictionCandidate is a session as the last scan saw it.
type evictionCandidate struct {
	sess *udpSession
	last int64 // its last activity then (udpSession.last)
}

// candidatesPerScan is how many candidates a scan keeps for n sessions.
func candidatesPerScan(n int) int { return max(1, n/16) }

// leastRecent returns the session that has been quiet the longest, or nil
// if there is none. u.mu is held.
func (u *udpRoute) leastRecent() *udpSession {
	if s := u.takeCandidate(true); s != nil {
		return s
	}
	u.scanCandidates()
	// The front of a fresh scan was the least recent a moment ago: it is
	// taken even if a datagram came since (sessions' times move without
	// u.mu), so that a route at its cap always makes room.
	return u.takeCandidate(false)
}

// takeCandidate takes candidates from the front of the list until one is
// still in the route (and, if unchanged, has had no datagram since the
// scan), and returns it; nil when the list runs out. u.mu is held.
func (u *udpRoute) takeCandidate(unchanged bool) *udpSession {
	for len(u.evictQueue) > 0 {
		c := u.evictQueue[0]
		u.evictQueue[0] = evictionCandidate{}
		u.evictQueue = u.evictQueue[1:]
		if u.sessions[c.sess.key] == c.sess && (!unchanged || c.sess.last.Load() == c.last) {
			return c.sess
		}
	}
	return nil
}

// scanCandidates refills u.evictQueue with the oldest sessions, oldest
// first. u.mu is held.
func (u *udpRoute) scanCandidates() {
	all := make([]evictionCandidate, 0, len(u.sessions))
	for _, s := range u.sessions {
		all = append(all, evictionCandidate{sess: s, last: s.last.Load()})
	}
	slices.SortFunc(all, func(a, b evictionCandidate) int {
		switch {
		case a.last < b.last:
			return -1
		case a.last > b.last:
			return 1
		}
		return 0
	})
	u.evictQueue = slices.Clip(all[:min(len(all), candidatesPerScan(len(all)))])
}
