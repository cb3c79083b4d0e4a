package main

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// historyStatus is a status whose routes have the given text forms and
// counters (total, sent, received), numbered in order.
func historyStatus(routes ...sampleRoute) *ServiceStatus {
	st := &ServiceStatus{}
	for i, r := range routes {
		st.Routes = append(st.Routes, RouteReport{Route: i, Config: r.config, Total: r.total, BytesSent: r.sent, BytesReceived: r.received})
	}
	return st
}

// sampleRoute is one route of historyStatus.
type sampleRoute struct {
	config                string
	total, sent, received int64
}

// TestStatusHistoryRates: the rates are the counters' differences over the
// real time between samples, oldest first, a minute at most; a route the
// status no longer lists is dropped, a renumbered one keeps its history, an
// idle one has no lists, and a counter that went back gives 0.
func TestStatusHistoryRates(t *testing.T) {
	var h statusHistory
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if got := h.rates(historyStatus(sampleRoute{config: "a"})); len(got.Routes) != 0 || !got.Sampled.IsZero() || got.IntervalSeconds != 2 {
		t.Fatalf("before any sample: %+v", got)
	}
	h.record(historyStatus(sampleRoute{"a", 0, 0, 0}, sampleRoute{"idle", 5, 5, 5}), t0)
	if got := h.rates(historyStatus(sampleRoute{config: "a"})); len(got.Routes) != 0 || !got.Sampled.Equal(t0) {
		t.Fatalf("one sample has no interval: %+v", got)
	}
	// 4 s later: 10 connections, 4000 bytes sent, 2000 received.
	h.record(historyStatus(sampleRoute{"a", 10, 4000, 2000}, sampleRoute{"idle", 5, 5, 5}), t0.Add(4*time.Second))
	// 2 s later the counter went back (counted anew): 0, not negative.
	h.record(historyStatus(sampleRoute{"a", 3, 4001, 2000}, sampleRoute{"idle", 5, 5, 5}), t0.Add(6*time.Second))
	got := h.rates(historyStatus(sampleRoute{config: "a"}, sampleRoute{config: "idle"}))
	want := []RouteHistory{
		{Route: 0, Intervals: 2, ConnectionsPerSecond: []float64{2.5, 0}, BytesSentPerSecond: []float64{1000, 0.5}, BytesReceivedPerSecond: []float64{500, 0}},
		{Route: 1, Intervals: 2},
	}
	if !reflect.DeepEqual(got.Routes, want) || !got.Sampled.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("rates:\n got %+v\nwant %+v", got.Routes, want)
	}

	// Renumbered (a route before it deleted), "a" keeps its history; "idle",
	// gone from the status, is dropped at the next sample.
	h.record(historyStatus(sampleRoute{"new", 0, 0, 0}, sampleRoute{"a", 5, 4001, 2000}), t0.Add(8*time.Second))
	got = h.rates(historyStatus(sampleRoute{config: "new"}, sampleRoute{config: "a"}, sampleRoute{config: "idle"}))
	if len(got.Routes) != 1 || got.Routes[0].Route != 1 || got.Routes[0].Intervals != 3 ||
		!reflect.DeepEqual(got.Routes[0].ConnectionsPerSecond, []float64{2.5, 0, 1}) {
		t.Fatalf("after a renumbering: %+v", got.Routes)
	}
	if _, kept := h.routes["idle"]; kept {
		t.Error("a route gone from the status is still kept")
	}

	// A minute at most: after 100 more samples, 30 intervals, the newest
	// last.
	for i := range 100 {
		h.record(historyStatus(sampleRoute{"a", int64(10 + 2*i), 0, 0}), t0.Add(time.Duration(10+2*i)*time.Second))
	}
	got = h.rates(historyStatus(sampleRoute{config: "a"}))
	if r := got.Routes[0]; r.Intervals != historySamples-1 || len(r.ConnectionsPerSecond) != historySamples-1 {
		t.Fatalf("after 100 samples: %d intervals, %d rates; want %d", r.Intervals, len(r.ConnectionsPerSecond), historySamples-1)
	}
	for i, v := range got.Routes[0].ConnectionsPerSecond {
		if v != 1 {
			t.Fatalf("rate %d is %v; want 1 (2 connections every 2 s): %v", i, v, got.Routes[0].ConnectionsPerSecond)
		}
	}
}

// TestStatusHistoryBounded: with 1,000 routes sampled for five minutes, each
// route holds one ring of historySamples samples, and the ring's rates
// are a minute long.
func TestStatusHistoryBounded(t *testing.T) {
	var h statusHistory
	routes := make([]sampleRoute, 1000)
	t0 := time.Now()
	for i := range 150 { // 5 minutes of samples
		for j := range routes {
			routes[j] = sampleRoute{fmt.Sprintf("%d 127.0.0.1 80", 20000+j), int64(i), int64(i) * 100, 0}
		}
		h.record(historyStatus(routes...), t0.Add(time.Duration(i)*historyInterval))
	}
	if len(h.routes) != 1000 || h.taken != historySamples {
		t.Fatalf("%d routes, %d samples kept; want 1000 and %d", len(h.routes), h.taken, historySamples)
	}
	got := h.rates(historyStatus(routes...))
	if len(got.Routes) != 1000 || got.Routes[999].Intervals != historySamples-1 || got.Routes[999].BytesSentPerSecond[0] != 50 {
		t.Fatalf("rates of route 999: %+v", got.Routes[999])
	}
}
