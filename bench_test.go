package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// These benchmarks run the relay in the test process, for profiling
// (go test -bench . -cpuprofile cpu.out). The comparison with HAProxy and
// socat, each in its own process, is scripts/bench.sh.

// benchRelay starts a relay route in front of a server and returns its
// address and a stop function.
func benchRelay(b *testing.B, server net.Addr) string {
	r := &Relay{}
	b.Cleanup(func() { r.Shutdown(context.Background()) })
	ta := server.(*net.TCPAddr)
	if err := r.Start(0, Route{ListenAddr: "127.0.0.1:0", RemoteHost: "127.0.0.1", RemotePort: ta.Port}); err != nil {
		b.Fatal(err)
	}
	return r.Addr(0).String()
}

// BenchmarkConnRate: each op dials through the relay, sends 64 bytes, reads
// the echo and closes, 50 at a time.
func BenchmarkConnRate(b *testing.B) {
	echo := newLocalListener(b)
	serveEach(echo, func(c *net.TCPConn) {
		defer c.Close()
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				c.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
	addr := benchRelay(b, echo.Addr())
	b.SetParallelism(25) // 50 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		msg, buf := make([]byte, 64), make([]byte, 64)
		for pb.Next() {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			c.Write(msg)
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
}

// BenchmarkBulk streams through one relayed connection to a sink.
func BenchmarkBulk(b *testing.B) {
	sink := newLocalListener(b)
	var wg sync.WaitGroup
	serveEach(sink, func(c *net.TCPConn) {
		defer wg.Done()
		defer c.Close()
		io.Copy(io.Discard, c)
	})
	wg.Add(1)
	addr := benchRelay(b, sink.Addr())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	wg.Wait()
	c.Close()
}

// BenchmarkStatusWith1000Connections: one `relaytcp status` request over
// the control channel (the service's whole status, JSON both ways) while
// 1,000 relayed connections are open. The target is under 100 ms an op.
func BenchmarkStatusWith1000Connections(b *testing.B) {
	echo := echoServer(b)
	cfg := &Config{LogDir: tempDir(b), Routes: []RouteSpec{{BindAddr: "127.0.0.1", LocalPort: freePort(b),
		RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr())}}}
	s, err := newService(cfg, &stderrLog{w: io.Discard}, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	defer s.shutdown(context.Background())
	path := controlTestPath(b)
	s.startControl(path)
	if s.control == nil {
		b.Fatal("no control channel")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Routes[0].LocalPort))
	for range 1000 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
	}
	ans, err := askService(path, controlRequest{Cmd: "status"})
	if err != nil || !eventually(5*time.Second, func() bool {
		ans, err = askService(path, controlRequest{Cmd: "status"})
		return err == nil && ans.Status.Routes[0].Open == 1000
	}) {
		b.Fatalf("status: %+v, %v", ans.Status, err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := askService(path, controlRequest{Cmd: "status"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/status")
}
