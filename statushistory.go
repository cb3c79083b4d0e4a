package main

// The last minute of each route's rates, for the status page's charts
// (statuspage.go). The metrics listener samples the live status every
// historyInterval while it runs, so that a page opened now draws the minute
// before it at once, and a relay without a metrics listener keeps nothing.
//
// Memory: historySamples samples of three counters (24 bytes) per route,
// about 750 bytes a route with its bookkeeping, so 0.75 MB for 1,000 routes
// (a port range is one route); a route the status no longer lists is
// dropped at the next sample.

import (
	"math"
	"sync"
	"time"
)

const (
	// historyInterval is the time between two samples.
	historyInterval = 2 * time.Second
	// historySamples are kept per route: 31 samples, 30 intervals, a
	// minute.
	historySamples = 31
)

// StatusHistory is /status.json's "history": for each route that has been
// sampled at least twice, its rates over the last minute, oldest first,
// one per interval. Every route's last rate ends at Sampled.
type StatusHistory struct {
	IntervalSeconds float64        `json:"interval_seconds"`
	Sampled         time.Time      `json:"sampled,omitzero"` // when the last sample was taken; left out before the first
	Routes          []RouteHistory `json:"routes"`
}

// RouteHistory is one route's rates, per second, over each interval; the
// three lists are left out when every rate in them is 0.
type RouteHistory struct {
	Route                  int       `json:"route"` // its number in the same document
	Intervals              int       `json:"intervals"`
	ConnectionsPerSecond   []float64 `json:"connections_per_second,omitempty"`
	BytesSentPerSecond     []float64 `json:"bytes_sent_per_second,omitempty"`
	BytesReceivedPerSecond []float64 `json:"bytes_received_per_second,omitempty"`
}

// statusHistory holds the samples: a ring of sample times, and the same
// ring positions for each route.
type statusHistory struct {
	mu    sync.Mutex
	times [historySamples]time.Time
	next  int    // ring position of the next sample
	taken int    // samples in the ring, up to historySamples
	gen   uint64 // samples taken so far
	// routes are by the route's text form (RouteReport.Config): unique
	// among a configuration's routes, and kept when a reload renumbers
	// them; an edited route starts a new history.
	routes map[string]*routeSamples
}

// routeSamples are one route's counters at the ring's sample times.
type routeSamples struct {
	counts [historySamples]sampleCounts
	n      int    // the last n samples hold this route
	seen   uint64 // the sample (gen) that last held it
}

// sampleCounts are the counters a rate is computed from.
type sampleCounts struct{ total, sent, received int64 }

// record adds a sample of st taken at now.
func (h *statusHistory) record(st *ServiceStatus, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.routes == nil {
		h.routes = make(map[string]*routeSamples)
	}
	i := h.next
	h.times[i] = now
	h.gen++
	gen := h.gen
	for _, r := range st.Routes {
		rs := h.routes[r.Config]
		if rs == nil {
			rs = &routeSamples{}
			h.routes[r.Config] = rs
		}
		rs.counts[i] = sampleCounts{r.Total, r.BytesSent, r.BytesReceived}
		rs.n = min(rs.n+1, historySamples)
		rs.seen = gen
	}
	for key, rs := range h.routes {
		if rs.seen != gen {
			delete(h.routes, key)
		}
	}
	h.next = (i + 1) % historySamples
	h.taken = min(h.taken+1, historySamples)
}

// rates returns the history of st's routes, in st's route order, numbered
// as st numbers them.
func (h *statusHistory) rates(st *ServiceStatus) *StatusHistory {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := &StatusHistory{IntervalSeconds: historyInterval.Seconds(), Routes: []RouteHistory{}}
	if h.taken == 0 {
		return out
	}
	last := (h.next + historySamples - 1) % historySamples
	out.Sampled = h.times[last]
	for _, r := range st.Routes {
		rs := h.routes[r.Config]
		if rs == nil || rs.n < 2 {
			continue
		}
		rh := RouteHistory{Route: r.Route, Intervals: rs.n - 1}
		conns, sent, received := make([]float64, rh.Intervals), make([]float64, rh.Intervals), make([]float64, rh.Intervals)
		var any bool
		for k := range rh.Intervals {
			// Interval k runs from sample a to sample b, oldest first.
			b := (last - (rh.Intervals - 1 - k) + historySamples) % historySamples
			a := (b + historySamples - 1) % historySamples
			secs := h.times[b].Sub(h.times[a]).Seconds()
			ca, cb := rs.counts[a], rs.counts[b]
			conns[k], sent[k], received[k] = rate(cb.total-ca.total, secs), rate(cb.sent-ca.sent, secs), rate(cb.received-ca.received, secs)
			any = any || conns[k] != 0 || sent[k] != 0 || received[k] != 0
		}
		if any {
			rh.ConnectionsPerSecond, rh.BytesSentPerSecond, rh.BytesReceivedPerSecond = conns, sent, received
		}
		out.Routes = append(out.Routes, rh)
	}
	return out
}

// rate is delta per second over secs, to the hundredth. A counter never
// goes back; a delta below zero (a route counted anew) is 0.
func rate(delta int64, secs float64) float64 {
	if delta <= 0 || secs <= 0 {
		return 0
	}
	return math.Round(float64(delta)/secs*100) / 100
}

// sampleHistory records a sample of status into h every historyInterval,
// until stop is closed.
func sampleHistory(h *statusHistory, status func() *ServiceStatus, stop <-chan struct{}) {
	t := time.NewTicker(historyInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.record(status(), time.Now())
		}
	}
}
