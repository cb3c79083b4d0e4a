package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowUDPServer answers each datagram after a pause, so that a flood
// overflows its socket; it counts what it got.
func slowUDPServer(t *testing.T, pause time.Duration) (*net.UDPConn, *atomic.Int64) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var got atomic.Int64
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			got.Add(1)
			time.Sleep(pause)
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return c, &got
}

// TestUDPFlood: clients flood a route whose backend answers slowly, for 2
// seconds: every datagram the clients sent is accounted for (the backend
// got it, its own socket dropped it, or the route counted it dropped), the
// process's memory stays bounded, and another UDP route of the relay
// relays meanwhile without a loss.
func TestUDPFlood(t *testing.T) {
	slow, slowGot := slowUDPServer(t, 50*time.Microsecond)
	fast := newUDPEchoServer(t, "")
	r := &Relay{}
	defer r.Shutdown(context.Background())
	for id, text := range []string{fmt.Sprintf("1 127.0.0.1 %d proto=udp rcvbuf=64K", slow.LocalAddr().(*net.UDPAddr).Port),
		fmt.Sprintf("1 127.0.0.1 %d proto=udp", fast.port())} {
		spec, err := ParseRouteSpec(text)
		if err != nil {
			t.Fatal(err)
		}
		rt := spec.Route()
		rt.ListenAddr = "127.0.0.1:0"
		if err := r.Start(id, rt); err != nil {
			t.Fatal(err)
		}
	}
	flooded, other := r.Addr(0).String(), r.Addr(1).String()
	before, heapBefore := int64(vmRSS(t, os.Getpid())), goMemory()

	const flooders, size = 8, 1000
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range flooders {
		c := udpClient(t, flooded)
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, size)
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 64 {
					if _, err := c.Write(msg); err == nil {
						sent.Add(1)
					}
				}
			}
		}()
	}
	peak, heapPeak := before, heapBefore
	deadline := time.Now().Add(2 * time.Second)
	otherClient := udpClient(t, other)
	exchanges := 0
	for time.Now().Before(deadline) {
		msg := fmt.Sprintf("meanwhile %d", exchanges)
		if got, err := exchangeDatagram(otherClient, []byte(msg)); err != nil || string(got) != msg {
			t.Errorf("the other route during the flood, exchange %d: %q, %v", exchanges, got, err)
			break
		}
		exchanges++
		peak, heapPeak = max(peak, int64(vmRSS(t, os.Getpid()))), max(heapPeak, goMemory())
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	dropped := func() int64 {
		rs := r.Status()[0]
		return rs.QueueDrops + rs.BackendDrops + rs.CapDrops
	}
	// What the route holds still goes to the backend: wait until it has.
	accounted := func() int64 { return slowGot.Load() + dropsOf(slow) + dropped() }
	if !eventually(10*time.Second, func() bool { return accounted() == sent.Load() }) {
		t.Errorf("%d datagrams sent; the backend got %d, its socket dropped %d, the route counts %d dropped: %d unaccounted",
			sent.Load(), slowGot.Load(), dropsOf(slow), dropped(), sent.Load()-accounted())
	}
	if r.Status()[0].QueueDrops == 0 {
		t.Errorf("no queue drops on the flooded route (rcvbuf=64K) after %d datagrams", sent.Load())
	}
	if rs := r.Status()[1]; rs.QueueDrops+rs.BackendDrops+rs.CapDrops != 0 {
		t.Errorf("the other route dropped datagrams: %+v", rs)
	}
	if grew := peak - before; grew > 64<<10 && !raceDetector {
		t.Errorf("the process grew by %d KiB during the flood", grew)
	}
	if grew := heapPeak - heapBefore; grew > 64<<10 {
		t.Errorf("the Go heap and stacks grew by %d KiB during the flood", grew)
	}
	t.Logf("%d datagrams sent in 2 s: the backend got %d, its socket dropped %d, the route dropped %d; %d exchanges on the other route; RSS %d KiB, at most %d KiB during the flood; Go heap and stacks %d KiB, at most %d KiB",
		sent.Load(), slowGot.Load(), dropsOf(slow), dropped(), exchanges, before, peak, heapBefore, heapPeak)
}

// goMemory is the Go heap and stacks in use, in KiB.
func goMemory() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse+m.StackInuse) >> 10
}
