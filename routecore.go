package main

// What every running route has, TCP or UDP: its number, its settings for
// new connections, its counters and events, when its connects give up, the
// refusals it counts and its incidents. The connections' lifecycle
// (lifecycle.go) reports through it.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// routeCore is the part of a running route (tcpRoute, udpRoute) that does
// not depend on its protocol.
type routeCore struct {
	id    int
	relay *Relay
	cfg   atomic.Pointer[routeConfig] // for new connections
	stats *routeStats
	udp   bool // a UDP route: its events name the remote side with /udp
	// dials is cancelled when the route's remaining connections are forced
	// closed: connects under way give up.
	dials     context.Context
	stopDials context.CancelFunc

	// An incident: accept or dial errors for lack of resources, since the
	// last connection relayed; a TCP route's accept loop waits backoff
	// between accepts until it ends.
	incidentMu        sync.Mutex
	incidentErrors    int
	lastIncidentError time.Time
	backoff           time.Duration
}

// init makes c route id's core, with the relay's counters of that route
// number; r.mu is held.
func (c *routeCore) init(r *Relay, id int, udp bool) {
	c.id, c.relay, c.stats, c.udp = id, r, r.statsFor(id), udp
	c.dials, c.stopDials = context.WithCancel(context.Background())
}

// remoteName is a remote address as the route's events write it.
func (r *routeCore) remoteName(addr string) string {
	if r.udp {
		return addr + "/udp"
	}
	return addr
}

// The kinds of refusal, for the counters.
const (
	refusedByACL   = iota // allow= or deny=
	refusedByCap          // maxconn= or the relay's cap
	refusedByProxy        // acceptproxy=1 and no valid PROXY header
)

// turnAway counts a client turned away by kind, and reports it, and why,
// unless report is false (a UDP route reports a client once a minute).
func (r *routeCore) turnAway(cfg *routeConfig, slot *statSlot, client, why string, kind int, report bool) {
	switch kind {
	case refusedByCap:
		slot.refusedCap.Add(1)
	case refusedByProxy:
		slot.refusedProxy.Add(1)
	default:
		slot.refusedACL.Add(1)
	}
	if report {
		r.relay.emit(Event{Kind: ConnRefused, Time: time.Now(), Route: r.id,
			Client: client, Remote: r.remoteName(cfg.RemoteAddr()), Err: errors.New(why)})
	}
}

// Back-off bounds: during an incident (too many open files, say) the
// accept loop waits minAcceptBackoff between accepts, doubling up to
// maxAcceptBackoff.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
	// incidentQuiet is how long an incident must go without errors before a
	// relayed connection ends it.
	incidentQuiet = time.Second
)

// nextAcceptBackoff is an accept loop's wait after another error, when it
// waited d after the one before: doubling from minAcceptBackoff up to
// maxAcceptBackoff.
func nextAcceptBackoff(d time.Duration) time.Duration {
	return min(max(2*d, minAcceptBackoff), maxAcceptBackoff)
}

// resourceError records an error of an incident (accepting failed, or a
// dial failed for lack of descriptors): the first one of an incident is
// reported, and the accept loop backs off, doubling, until recovered.
func (r *routeCore) resourceError(err error) {
	r.incidentMu.Lock()
	first := r.incidentErrors == 0
	r.incidentErrors++
	r.lastIncidentError = time.Now()
	r.backoff = nextAcceptBackoff(r.backoff)
	r.incidentMu.Unlock()
	if first {
		r.relay.emit(Event{Kind: AcceptFailed, Time: time.Now(), Route: r.id, Err: err})
	}
}

// recovered ends an incident, if there is one and it has been quiet for
// incidentQuiet, and reports it: a connection has been relayed again. While
// descriptors run short, some connections get through between errors: they
// do not end the incident.
func (r *routeCore) recovered() {
	r.incidentMu.Lock()
	n := r.incidentErrors
	if n > 0 && time.Since(r.lastIncidentError) < incidentQuiet {
		r.incidentMu.Unlock()
		return
	}
	r.incidentErrors, r.backoff = 0, 0
	r.incidentMu.Unlock()
	if n > 0 {
		r.relay.emit(Event{Kind: AcceptRecovered, Time: time.Now(), Route: r.id, Failures: n})
	}
}

// incidentBackoff is how long the accept loop waits before its next accept.
func (r *routeCore) incidentBackoff() time.Duration {
	r.incidentMu.Lock()
	defer r.incidentMu.Unlock()
	return r.backoff
}
