package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRateCap measures what the bandwidth caps let through (issue 26's
// figures): 1 and 8 connections sending as fast as they can for
// rateCapWindow through rate=10M (shared) and connrate=2M (each), client to
// backend, on each relay. It reports the throughput as a share of the cap (cap%, the
// issue wants 90-110) and, with 8 connections, the largest deviation of a
// connection from their mean (spread%, the issue wants at most 25). Each
// run takes rateCapWindow, whatever b.N:
//
//	go test -run XXX -bench BenchmarkRateCap -benchtime 1x .
func BenchmarkRateCap(b *testing.B) {
	for _, tt := range []struct {
		opt   string
		lim   Limits
		conns int
		cap   float64 // bytes a second of all connections together
	}{
		{"rate=10M", Limits{Rate: 10 << 20}, 1, 10 << 20},
		{"rate=10M", Limits{Rate: 10 << 20}, 8, 10 << 20},
		{"connrate=2M", Limits{ConnRate: 2 << 20}, 1, 2 << 20},
		{"connrate=2M", Limits{ConnRate: 2 << 20}, 8, 8 * 2 << 20},
	} {
		for _, kind := range relayKinds() {
			b.Run(fmt.Sprintf("%s/%s/%dconns", kind, tt.opt, tt.conns), func(b *testing.B) {
				for range b.N {
					per := measureRateCap(b, kind, tt.lim, tt.conns, rateCapWindow)
					var total float64
					for _, n := range per {
						total += float64(n)
					}
					mean := total / float64(len(per))
					spread := 0.0
					for _, n := range per {
						spread = max(spread, abs(float64(n)-mean)/mean)
					}
					b.ReportMetric(total/rateCapWindow.Seconds()/tt.cap*100, "cap%")
					b.ReportMetric(total/rateCapWindow.Seconds()/(1<<20), "MiB/s")
					if tt.conns > 1 {
						b.ReportMetric(spread*100, "spread%")
					}
				}
			})
		}
	}
}

// rateCapWindow is how long BenchmarkRateCap measures each case.
const rateCapWindow = 10 * time.Second

// abs is |x|.
func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// measureRateCap sends through a route with lim from conns connections for
// window (after a second to settle) and returns the bytes the backend got
// from each within the window.
func measureRateCap(b *testing.B, kind relayKind, lim Limits, conns int, window time.Duration) []int64 {
	ln := newLocalListener(b)
	counts := make([]atomic.Int64, conns)
	var next atomic.Int32
	serveEach(ln, func(c *net.TCPConn) {
		defer c.Close()
		n := &counts[int(next.Add(1)-1)%conns]
		buf := make([]byte, 64<<10)
		for {
			m, err := c.Read(buf)
			n.Add(int64(m))
			if err != nil {
				return
			}
		}
	})
	r := kind.newRelay(nil)
	defer r.Shutdown(context.Background())
	if err := r.Start(0, Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: portOf(ln.Addr()), Limits: lim}); err != nil {
		b.Fatal(err)
	}
	addr := r.Addr(0).String()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(buf); err != nil && !isTimeout(err) {
					return
				}
			}
		}()
	}
	time.Sleep(time.Second) // connected, and past the first burst
	start := make([]int64, conns)
	for i := range counts {
		start[i] = counts[i].Load()
	}
	b.ResetTimer()
	time.Sleep(window)
	b.StopTimer()
	got := make([]int64, conns)
	for i := range counts {
		got[i] = counts[i].Load() - start[i]
	}
	close(stop)
	wg.Wait()
	return got
}
