package main

// What the limits show (issue 26): refusals by limit per route in the
// status line, the admin Status screen, status -json and /metrics, and a
// route's current throughput where it has a cap.

import (
	"fmt"
	"strconv"
	"strings"
)

// limitStatus is a route's limits as Relay.Status reads them.
type limitStatus struct {
	refused    [limitKinds]int64 // by kind (byClientMaxConn, ...)
	paced      bool              // it has rate= or connrate=
	throughput [2]int64          // bytes a second, sent and received, over the last whole second
	rateDrops  int64             // UDP datagrams dropped over a cap
}

// status reads the route's limits.
func (lim *routeLimiter) status() limitStatus {
	return limitStatus{refused: lim.refusedBy(), paced: lim.limits().paced(),
		throughput: lim.throughput(), rateDrops: lim.band.rateDrops.Load()}
}

// LimitReport is what a route's limits report in status -json; embedded
// in RouteReport, so its fields are the route's own.
type LimitReport struct {
	RefusedClientMaxConn       int64 `json:"refused_clientmaxconn"`        // clientmaxconn=
	RefusedClientRate          int64 `json:"refused_clientrate"`           // clientrate=
	RefusedGlobalClientMaxConn int64 `json:"refused_global_clientmaxconn"` // the service's clientmaxconn
	// Throughput is the route's bytes a second over the last whole
	// second, where it has rate= or connrate=; nil (left out) without.
	Throughput *Throughput `json:"throughput,omitempty"`
}

// Throughput is a route's bytes a second in each direction.
type Throughput struct {
	Sent     int64 `json:"sent"`     // from clients to backends
	Received int64 `json:"received"` // from backends to clients
}

// limitReport is the report of a route's limits: rs's numbers, refusals
// counted in refused too (and a UDP route's in its dropped datagrams).
func limitReport(ls limitStatus) LimitReport {
	r := LimitReport{RefusedClientMaxConn: ls.refused[byClientMaxConn], RefusedClientRate: ls.refused[byClientRate],
		RefusedGlobalClientMaxConn: ls.refused[byGlobalClient]}
	if ls.paced {
		r.Throughput = &Throughput{Sent: ls.throughput[dirSent], Received: ls.throughput[dirReceived]}
	}
	return r
}

// refused is the clients the limits refused, all kinds.
func (r LimitReport) refused() int64 {
	return r.RefusedClientMaxConn + r.RefusedClientRate + r.RefusedGlobalClientMaxConn
}

// counts is the end of a route's status line: its refusals by limit and
// its throughput under a cap, when there are:
// ", refused by clientmaxconn 4, clientrate 40, now 1.0 MB/s sent, 0 B/s received".
func (r LimitReport) counts() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int64
	}{{"clientmaxconn", r.RefusedClientMaxConn}, {"clientrate", r.RefusedClientRate}, {"global clientmaxconn", r.RefusedGlobalClientMaxConn}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.name, c.n))
		}
	}
	s := ""
	if len(parts) > 0 {
		s = ", refused by " + strings.Join(parts, ", ")
	}
	if t := r.Throughput; t != nil {
		s += fmt.Sprintf(", now %s/s sent, %s/s received", byteSize(t.Sent), byteSize(t.Received))
	}
	return s
}

// writeLimitMetrics writes the routes' throughput under a cap.
func writeLimitMetrics(m *metricWriter, st *ServiceStatus) {
	for _, r := range st.Routes {
		if r.Throughput == nil {
			continue
		}
		for _, d := range []struct {
			direction string
			n         int64
		}{{"sent", r.Throughput.Sent}, {"received", r.Throughput.Received}} {
			m.sample("relaytcp_route_throughput_bytes_per_second", "gauge", "Bytes a second over the last whole second, of routes with rate= or connrate=.",
				float64(d.n), "route", strconv.Itoa(r.Route), "listen", r.Listen, "direction", d.direction)
		}
	}
}
