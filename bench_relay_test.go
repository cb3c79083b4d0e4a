package main

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// The relay's own hot path, on a plain route (one backend, no options),
// through the Linux engine and through the goroutine relay (Windows's, and
// Linux's for data-logged routes). This file uses only what every version
// since the engine has, so that scripts/bench-base.sh can run it against an
// older revision and show what a change costs a route that does not use it.

// benchModes runs bench once per relay: "engine" (where there is one) and
// "goroutine".
func benchModes(b *testing.B, bench func(b *testing.B, noEngine bool)) {
	b.Run("engine", func(b *testing.B) { bench(b, false) })
	b.Run("goroutine", func(b *testing.B) { bench(b, true) })
}

// benchRelay starts a plain relay route in front of server and returns its
// address; noEngine keeps it on the goroutine relay.
func benchRelay(b *testing.B, server net.Addr, noEngine bool) string {
	r := &Relay{noEngine: noEngine}
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
	benchModes(b, func(b *testing.B, noEngine bool) {
		echoLn := newLocalListener(b)
		serveEach(echoLn, func(c *net.TCPConn) {
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
		addr := benchRelay(b, echoLn.Addr(), noEngine)
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
	})
}

// BenchmarkBulk streams through one relayed connection to a sink.
func BenchmarkBulk(b *testing.B) {
	benchModes(b, func(b *testing.B, noEngine bool) {
		sink := newLocalListener(b)
		var wg sync.WaitGroup
		wg.Add(1)
		serveEach(sink, func(c *net.TCPConn) {
			defer wg.Done()
			defer c.Close()
			io.Copy(io.Discard, c)
		})
		c, err := net.Dial("tcp", benchRelay(b, sink.Addr(), noEngine))
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
	})
}
