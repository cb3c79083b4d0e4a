package main

import (
	"testing"
	"time"
)

// TestStallClock: the clock says stalled once the progress count has not
// grown for drainStall, and any growth starts the wait again.
func TestStallClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var c stallClock
	c.start(100, t0)
	for _, tt := range []struct {
		after time.Duration
		mark  int64
		want  bool
	}{
		{time.Second, 100, false},
		{drainStall - time.Millisecond, 100, false},
		{drainStall, 100, true},              // no growth for the whole stall time
		{drainStall + time.Second, 90, true}, // a smaller count is no progress
		{drainStall + 2*time.Second, 101, false},
		{2*drainStall + 2*time.Second - time.Millisecond, 101, false},
		{2*drainStall + 2*time.Second, 101, true},
	} {
		if got := c.stalled(tt.mark, t0.Add(tt.after)); got != tt.want {
			t.Errorf("stalled(%d) at %v = %v; want %v", tt.mark, tt.after, got, tt.want)
		}
	}
	if stallReason(true) != errClientStalled || stallReason(false) != errBackendStalled {
		t.Errorf("stallReason: %v, %v; want client stalled, backend stalled", stallReason(true), stallReason(false))
	}
	if errBackendStalled.Error() != "backend stalled" || errClientStalled.Error() != "client stalled" {
		t.Errorf("reasons read %q, %q", errBackendStalled, errClientStalled)
	}
}
