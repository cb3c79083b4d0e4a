package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// These benchmarks run the relay in the test process, for profiling
// (go test -bench . -cpuprofile cpu.out). The comparison with HAProxy and
// socat, each in its own process, is scripts/bench.sh.

// BenchmarkStatusWith1000Connections: one `relaytcp status` request over
// the control channel (the service's whole status, JSON both ways) while
// 1,000 relayed connections are open. The target is under 100 ms an op.
func BenchmarkStatusWith1000Connections(b *testing.B) {
	echo := echoServer(b)
	cfg := &Config{LogDir: tempDir(b), Routes: []RouteSpec{{BindAddr: "127.0.0.1", LocalPort: freePort(b),
		RemoteHost: "127.0.0.1", RemotePort: portOf(echo.Addr())}}}
	s, err := newService(cfg, &stderrLog{w: io.Discard}, time.Minute, "")
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
