// Command loadgen is the load generator and test server of scripts/bench.sh.
// It talks to loopback addresses only and every run is bounded in time.
//
//	loadgen echo -listen 127.0.0.1:19101      echo server
//	loadgen sink -listen 127.0.0.1:19102      discards what it reads
//	loadgen bulk -addr A -streams 4 -duration 5s
//	loadgen connrate -addr A -concurrency 50 -duration 5s
//	loadgen idle -addr A -n 2000 -hold 30s
//	loadgen udpecho -listen 127.0.0.1:19181 -rcvbuf 4194304
//	loadgen udpburst -addr A -n 1000 -wait 2s
//
// Client modes print one line of key=value results.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen echo|sink|sinkread|bulk|connrate|connfixed|idle|udpecho|udprate|udpidle|udpburst [flags]")
		os.Exit(2)
	}
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "server: address to listen on (several: comma-separated)")
	addr := fs.String("addr", "", "client: address to connect to")
	streams := fs.Int("streams", 1, "bulk: parallel connections")
	concurrency := fs.Int("concurrency", 50, "connrate: parallel clients")
	duration := fs.Duration("duration", 5*time.Second, "bulk, connrate: how long to run")
	n := fs.Int("n", 2000, "idle: connections to hold")
	hold := fs.Duration("hold", 30*time.Second, "idle: how long to hold them")
	rcvbuf := fs.Int("rcvbuf", 0, "udpecho: the socket's receive buffer in bytes (0: the system's default)")
	wait := fs.Duration("wait", 2*time.Second, "udpburst: how long a client waits for its answer")
	fs.Parse(args)

	var err error
	switch mode {
	case "echo":
		err = serve(*listen, echo)
	case "sink":
		err = serve(*listen, sink)
	case "bulk":
		err = bulk(*addr, *streams, *duration)
	case "connrate":
		err = connRate(*addr, *concurrency, *duration)
	case "idle":
		err = holdOpen("tcp", *addr, *n, *hold)
	case "sinkread":
		err = serve(*listen, sinkRead)
	case "connfixed":
		err = connFixed(*addr, *n, *concurrency)
	case "udpecho":
		err = udpEcho(*listen, *rcvbuf)
	case "udprate":
		err = udpRate(*addr, *concurrency, *duration)
	case "udpidle":
		err = holdOpen("udp", *addr, *n, *hold)
	case "udpburst":
		err = udpBurst(*addr, *n, *wait)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", mode, err)
		os.Exit(1)
	}
}

// serve accepts connections on each of the comma-separated addresses
// until killed, handling each in a goroutine.
func serve(addrs string, handle func(net.Conn)) error {
	var lns []net.Listener
	for _, addr := range strings.Split(addrs, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		fmt.Println("LISTENING", ln.Addr())
		lns = append(lns, ln)
	}
	for _, ln := range lns[1:] {
		go acceptLoop(ln, handle)
	}
	acceptLoop(lns[0], handle)
	return nil
}

// acceptLoop accepts connections on ln until killed.
func acceptLoop(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond) // out of fds: back off
			continue
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// echo writes back what it reads, with a small buffer and no splice, as a
// typical request-response server does.
func echo(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// sink discards what it reads by splicing it into /dev/null, so that it takes
// as little of the machine's CPU as it can from the relays being measured.
func sink(c net.Conn) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen sink: %v\n", err)
		return
	}
	defer null.Close()
	io.Copy(null, c) // *os.File.ReadFrom splices from a TCP connection on Linux
}

// bulk uploads as fast as it can over streams connections for d.
func bulk(addr string, streams int, d time.Duration) error {
	var total atomic.Int64
	errs := make(chan error, streams)
	deadline := time.Now().Add(d)
	err := onSockets("tcp", addr, streams, func(c net.Conn) {
		c.SetWriteDeadline(deadline)
		buf := make([]byte, 256<<10)
		for time.Now().Before(deadline) {
			n, err := c.Write(buf)
			total.Add(int64(n))
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					errs <- err
				}
				return
			}
		}
	})
	if err != nil {
		return err
	}
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("bytes=%d seconds=%.3f MBps=%.1f\n", total.Load(), d.Seconds(), float64(total.Load())/d.Seconds()/1e6)
	return nil
}

// onSockets dials n sockets to addr over network, then runs work on each
// in a goroutine of its own, closes it after, and waits for them all.
func onSockets(network, addr string, n int, work func(c net.Conn)) error {
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial(network, addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return err // "dial tcp ADDR: ..."
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			work(c)
		}()
	}
	wg.Wait()
	return nil
}

// connRate runs concurrency clients for d; each operation dials, sends 64
// bytes, reads the 64-byte echo and closes.
func connRate(addr string, concurrency int, d time.Duration) error {
	var wg sync.WaitGroup
	var failures atomic.Int64
	lat := make([][]time.Duration, concurrency)
	deadline := time.Now().Add(d)
	for i := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, buf := make([]byte, 64), make([]byte, 64)
			for time.Now().Before(deadline) {
				start := time.Now()
				if err := echoOnce(addr, msg, buf); err != nil {
					failures.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	return printRate(lat, d, fmt.Sprintf("failures=%d", failures.Load()))
}

// echoOnce connects to addr, sends msg, reads as many bytes into buf and
// closes.
func echoOnce(addr string, msg, buf []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err = io.ReadFull(c, buf)
	return err
}

// printRate prints the connections made in elapsed, extra fields, and the
// median and 99th percentile of their latencies.
func printRate(lat [][]time.Duration, elapsed time.Duration, extra string) error {
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return fmt.Errorf("no connection succeeded (%s)", extra)
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	fmt.Printf("conns=%d %s connps=%.0f p50ms=%.3f p99ms=%.3f\n",
		len(all), extra, float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99))
	return nil
}

// holdOpen opens n sockets to addr over network ("tcp" or "udp"),
// exchanges one byte's echo on each so that the relay has reached its
// server (a connection; a session), prints READY and holds them for hold.
// A UDP datagram without an answer in a second is sent again, up to 5
// times.
func holdOpen(network, addr string, n int, hold time.Duration) error {
	tries, wait := 1, 5*time.Second
	if network == "udp" {
		tries, wait = 5, time.Second
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 64)
	for i := range n {
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("socket %d: dial %s: %w", i, addr, err)
		}
		conns = append(conns, c)
		for try := 1; ; try++ {
			c.SetDeadline(time.Now().Add(wait))
			if _, err = c.Write([]byte{'x'}); err == nil {
				_, err = c.Read(buf)
			}
			if err == nil {
				break
			}
			if try == tries {
				return fmt.Errorf("socket %d: no echo: %w", i, err)
			}
		}
		c.SetDeadline(time.Time{})
	}
	fmt.Println("READY", n)
	time.Sleep(hold)
	return nil
}

// udpEcho answers every datagram with itself, until killed. A receive
// buffer (capped by the system: net.core.rmem_max on Linux) keeps a burst
// from overflowing the server's own socket.
func udpEcho(addr string, rcvbuf int) error {
	c, err := net.ListenUDP("udp", mustUDPAddr(addr))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if rcvbuf > 0 {
		if err := c.SetReadBuffer(rcvbuf); err != nil {
			return fmt.Errorf("receive buffer of %s: %w", addr, err)
		}
	}
	fmt.Println("LISTENING", c.LocalAddr())
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			continue
		}
		c.WriteTo(buf[:n], from)
	}
}

// udpRate runs concurrency clients for d, each a socket of its own (a
// session) that sends a 64-byte datagram and waits for its echo, again and
// again; a datagram without an answer within 100 ms counts as lost.
func udpRate(addr string, concurrency int, d time.Duration) error {
	var done, lost atomic.Int64
	deadline := time.Now().Add(d)
	err := onSockets("udp", addr, concurrency, func(c net.Conn) {
		msg, buf := make([]byte, 64), make([]byte, 1<<16)
		for time.Now().Before(deadline) {
			c.Write(msg)
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := c.Read(buf); err != nil || n != len(msg) {
				lost.Add(1)
				continue
			}
			done.Add(1)
		}
	})
	if err != nil {
		return err
	}
	fmt.Printf("datagrams=%d lost=%d dgps=%.0f lossratio=%.5f\n", done.Load(), lost.Load(),
		float64(done.Load())/d.Seconds(), float64(lost.Load())/float64(max(1, done.Load()+lost.Load())))
	return nil
}

// udpBurst makes n sockets (n sessions) that each send one 64-byte
// datagram of their own at the same moment, all released together, and
// wait up to wait for its echo; then a second burst from the same sockets
// (their sessions open). For each it prints the answers, the datagrams lost
// and those answered with another client's bytes (there must be none), and
// the answers per second from the release to the last answer; the fields
// of the first burst start with "first_", the second's with "again_".
func udpBurst(addr string, n int, wait time.Duration) error {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return fmt.Errorf("socket %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	first := burstOnce(conns, 0, wait)
	again := burstOnce(conns, 1, wait)
	fmt.Printf("sent=%d first_%s again_%s\n", n, strings.ReplaceAll(first, " ", " first_"), strings.ReplaceAll(again, " ", " again_"))
	return nil
}

// burstOnce is one burst of udpBurst, the round-th: each socket sends a
// datagram that names it and the round.
func burstOnce(conns []net.Conn, round int, wait time.Duration) string {
	var answered, crossed atomic.Int64
	var last atomic.Int64 // Unix nanoseconds of the last answer
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, buf := make([]byte, 64), make([]byte, 128)
			binary.BigEndian.PutUint64(msg, uint64(i))
			binary.BigEndian.PutUint64(msg[8:], uint64(round))
			<-start
			if _, err := c.Write(msg); err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(wait))
			for {
				got, err := c.Read(buf)
				switch {
				case err != nil:
					return
				case bytes.Equal(buf[8:16], msg[8:16]) && !bytes.Equal(buf[:got], msg):
					crossed.Add(1)
				case !bytes.Equal(buf[:got], msg):
					continue // a late answer of the round before
				default:
					answered.Add(1)
				}
				break
			}
			now := time.Now().UnixNano()
			for old := last.Load(); now > old && !last.CompareAndSwap(old, now); old = last.Load() {
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // every client waits at the release
	released := time.Now()
	close(start)
	wg.Wait()
	var elapsed time.Duration
	rate := 0.0
	if answered.Load() > 0 {
		elapsed = time.Duration(last.Load() - released.UnixNano())
		rate = float64(answered.Load()) / elapsed.Seconds()
	}
	return fmt.Sprintf("answered=%d lost=%d crossed=%d ms=%.1f dgps=%.0f", answered.Load(), int64(len(conns))-answered.Load()-crossed.Load(),
		crossed.Load(), float64(elapsed.Microseconds())/1000, rate)
}

// mustUDPAddr parses a literal ip:port (loadgen's addresses are loopback
// literals).
func mustUDPAddr(s string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(2)
	}
	return a
}

// sinkRead discards what it reads after reading it into user space, as a
// program that looks at its data does (sink splices instead).
func sinkRead(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// connFixed makes exactly n connections, concurrency at a time; each sends
// 64 bytes of its own and checks that the same 64 come back. It prints the
// rate, the latencies, and the connections that failed or got other bytes.
func connFixed(addr string, n, concurrency int) error {
	var next, failures, mismatches atomic.Int64
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, buf := make([]byte, 64), make([]byte, 64)
			for {
				op := next.Add(1)
				if op > int64(n) {
					return
				}
				binary.BigEndian.PutUint64(msg, uint64(op))
				t0 := time.Now()
				err := echoOnce(addr, msg, buf)
				switch {
				case err != nil:
					failures.Add(1)
				case !bytes.Equal(msg, buf):
					mismatches.Add(1)
				default:
					lat[i] = append(lat[i], time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	return printRate(lat, time.Since(start), fmt.Sprintf("failures=%d mismatches=%d", failures.Load(), mismatches.Load()))
}
