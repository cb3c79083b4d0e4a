package main

import "testing"

// relayKind is the relay a test runs its routes on: the engine (Linux's
// event loop, for routes without a data log) or the goroutine relay
// (Windows's and macOS's, Linux's for routes with a data log, and where
// the engines could not start). A test chooses it with this helper alone,
// never through a side effect such as a data log.
type relayKind string

const (
	engineRelay    relayKind = "engine"
	goroutineRelay relayKind = "goroutines"
)

// relayKinds are the relays this platform has.
func relayKinds() []relayKind {
	if engineCount() == 0 {
		return []relayKind{goroutineRelay}
	}
	return []relayKind{engineRelay, goroutineRelay}
}

// forRelays runs test once on each relay this platform has, as subtests
// named after it.
func forRelays(t *testing.T, test func(t *testing.T, kind relayKind)) {
	t.Helper()
	for _, kind := range relayKinds() {
		t.Run(string(kind), func(t *testing.T) { test(t, kind) })
	}
}

// newRelay returns a relay whose routes run on kind, reporting to events
// (nil: nowhere).
func (k relayKind) newRelay(events func(Event)) *Relay {
	return &Relay{Events: events, noEngine: k == goroutineRelay}
}
