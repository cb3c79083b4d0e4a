package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestRangeSpecs: the range forms, their errors, their route lines, and
// conflicts checked port by port.
func TestRangeSpecs(t *testing.T) {
	good := []specForm{
		{"8000-8099 10.0.0.5 9000-9099", "8000-8099 10.0.0.5 9000-9099", "Route 3 : From local ports 8000-8099 to IP 10.0.0.5 ports 9000-9099"},
		{"127.0.0.1:5000-5009 db 5432", "127.0.0.1:5000-5009 db 5432", "Route 3 : From local address 127.0.0.1 ports 5000-5009 to IP db port 5432"},
		{"[::1]:1-10000 h 55536-65535", "[::1]:1-10000 h 55536-65535", "Route 3 : From local address ::1 ports 1-10000 to IP h ports 55536-65535"},
		{":8000-8001 h 80 also=h2:80 proxy=v1", "8000-8001 h 80 also=h2:80 proxy=v1", "Route 3 : From local ports 8000-8001 to IP h port 80, also h2:80 (roundrobin, proxy=v1)"},
	}
	bad := []specError{
		{"8000-7999 h 1", `invalid local port range "8000-7999": want FIRST-LAST with FIRST below LAST`},
		{"8000-8000 h 1", "want FIRST-LAST with FIRST below LAST"},
		{"1-10001 h 1", "10001 ports, at most 10000"},
		{"8000-x h 1", `invalid local port range "8000-x"`},
		{"8000- h 1", `invalid local port range "8000-"`},
		{"8000-8099 h 9000-9098", "remote port range 9000-9098 has 99 ports, local range 8000-8099 has 100: want as many, or one remote port"},
		{"8000 h 9000-9099", "remote port range 9000-9099 needs a local range of 100 ports"},
		{"8000-8099 h 65500-65599", `invalid remote port range "65500-65599"`},
		{"8000-8099 h 9000-9099 also=h2:65500", "backend h2:65500: its ports for the 100 local ports would pass 65535"},
	}
	checkSpecForms(t, good, bad)
	var cfg Config
	for _, s := range []string{"8000-8099 a 1", "127.0.0.1:9000-9009 b 1", "9010 c 1"} {
		r, _ := ParseRouteSpec(s)
		if err := cfg.AddRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	conflicts := []struct{ in, want string }{
		{"8050 x 1", "local port 8050 is already used by route 0 (8000-8099)"},
		{"7990-8000 x 1", "local port 8000 of 7990-8000 is already used by route 0 (8000-8099)"},
		{"127.0.0.2:8099-8100 x 1", "local port 8099 of 127.0.0.2:8099-8100 is already used by route 0 (8000-8099)"},
		{"9005-9020 x 1", "local port 9005 of 9005-9020 is already used by route 1 (127.0.0.1:9000-9009)"},
		{"127.0.0.1:9009-9010 x 1", "local port 9009 of 127.0.0.1:9009-9010 is already used by route 1 (127.0.0.1:9000-9009)"},
	}
	for _, tt := range conflicts {
		r, _ := ParseRouteSpec(tt.in)
		if err := cfg.AddRoute(r); err == nil || err.Error() != tt.want {
			t.Errorf("add %q: %v; want %q", tt.in, err, tt.want)
		}
	}
	r, _ := ParseRouteSpec("127.0.0.2:9000-9009 d 1")
	if err := cfg.AddRoute(r); err != nil {
		t.Errorf("a range on another address: %v", err)
	}
	for in, want := range map[string]int{":8000-8099": 0, ":8050": 0, "127.0.0.1:9003": 1, ":9010": 2, "3": 3, "127.0.0.2:9000-9009": 3} {
		if n, err := cfg.findRoute(in); err != nil || n != want {
			t.Errorf("findRoute(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
}

// freeRange finds n consecutive ports that a route can listen on, below
// the ephemeral range, and starts route 0 of a relay on them with the
// route text after the local side; it returns the relay and the first port.
func freeRange(t *testing.T, kind relayKind, n int, rest string) (*Relay, int, *eventRecorder) {
	t.Helper()
	for range 20 {
		first := 20000 + rand.IntN(12000-n)
		spec, err := ParseRouteSpec(fmt.Sprintf("127.0.0.1:%d-%d %s", first, first+n-1, rest))
		if err != nil {
			t.Fatal(err)
		}
		rt := spec.Route()
		rec := &eventRecorder{}
		r := kind.newRelay(rec.record)
		err = r.Start(0, rt)
		if err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				r.Shutdown(ctx)
			})
			return r, first, rec
		}
		r.Shutdown(context.Background())
	}
	t.Fatalf("found no %d free consecutive ports", n)
	return nil, 0, nil
}

// rangeSize is the size of the big range the tests use: 1,000 ports, fewer
// under wine where a process costs more.
func rangeSize() int {
	if runtime.GOOS == "windows" {
		return 200
	}
	return 1000
}

// TestRangeRelaysEachPortToItsPort: a 1,000-port range relays its first,
// middle and last port to the matching remote port, in both relays; a range
// to one remote port sends every port there.
func TestRangeRelaysEachPortToItsPort(t *testing.T) {
	n := rangeSize()
	forRelays(t, func(t *testing.T, kind relayKind) {
		var remoteFirst int
		var servers map[int]*testBackend
		for attempt := 0; ; attempt++ {
			remoteFirst = 10000 + rand.IntN(8000) // below the ephemeral ports, and the local ranges
			servers = map[int]*testBackend{}
			ok := true
			var lastErr error
			for _, off := range []int{0, n / 2, n - 1} {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(remoteFirst+off))
				if err != nil {
					ok, lastErr = false, err
					break
				}
				b := &testBackend{t: t, name: "R" + strconv.Itoa(off), port: remoteFirst + off, conns: map[net.Conn]bool{}}
				b.serve(ln)
				t.Cleanup(b.kill)
				servers[off] = b
			}
			if ok {
				break
			}
			if attempt == 10 {
				t.Fatalf("no free remote ports: %v", lastErr)
			}
		}
		r, first, rec := freeRange(t, kind, n, fmt.Sprintf("127.0.0.1 %d-%d", remoteFirst, remoteFirst+n-1))
		for _, off := range []int{0, n / 2, n - 1} {
			addr := "127.0.0.1:" + strconv.Itoa(first+off)
			name, err := whichBackend(addr, "")
			if err != nil || name != "R"+strconv.Itoa(off) {
				t.Errorf("port %d of the range reached %q, %v; want the server on remote port %d", first+off, name, err, remoteFirst+off)
			}
		}
		if !eventually(5*time.Second, func() bool { return rec.countTo(ConnOpened, "127.0.0.1:"+strconv.Itoa(remoteFirst+n-1)) == 1 }) {
			t.Errorf("the connection log does not name the actual remote port: %v", rec.events)
		}
		if st := r.Status()[0]; !st.Listening || st.Total != 3 {
			t.Errorf("status of the range: %+v", st)
		}
		// A port of the range with no server behind it: refused there, and
		// reported with that port.
		addr := "127.0.0.1:" + strconv.Itoa(first+1)
		if _, err := whichBackend(addr, ""); err == nil {
			t.Error("a port whose remote port has no server relayed")
		}
		if !eventually(5*time.Second, func() bool { return rec.countTo(ConnFailed, "127.0.0.1:"+strconv.Itoa(remoteFirst+1)) == 1 }) {
			t.Errorf("the failure does not name the remote port: %v", rec.events)
		}
	})
	forRelays(t, func(t *testing.T, kind relayKind) {
		b := newTestBackend(t, "ONE")
		_, first, _ := freeRange(t, kind, 10, fmt.Sprintf("127.0.0.1 %d", b.port))
		for _, off := range []int{0, 9} {
			if name, err := whichBackend("127.0.0.1:"+strconv.Itoa(first+off), ""); err != nil || name != "ONE" {
				t.Errorf("port %d: %q, %v", first+off, name, err)
			}
		}
	})
}

// TestRangeWithATakenPort: a port of the range that is taken is reported
// (and named) while the others run; once it is free, an update opens it.
func TestRangeWithATakenPort(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		b := newTestBackend(t, "B")
		var r *Relay
		var first int
		var taken net.Listener
		for attempt := 0; ; attempt++ {
			first = 20000 + rand.IntN(10000)
			var err error
			if taken, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+3)); err != nil {
				continue
			}
			spec, _ := ParseRouteSpec(fmt.Sprintf("127.0.0.1:%d-%d 127.0.0.1 %d", first, first+9, b.port))
			rt := spec.Route()
			r = kind.newRelay(nil)
			err = r.Start(0, rt)
			var le *ListenError
			if errors.As(err, &le) && len(le.Failed) == 1 && le.Failed[first+3] != nil {
				if want := fmt.Sprintf("could not listen on port %d (address already in use)", first+3); err.Error() != want {
					t.Errorf("error %q; want %q", err, want)
				}
				defer r.Shutdown(context.Background())
				break
			}
			r.Shutdown(context.Background())
			taken.Close()
			if attempt == 10 {
				t.Fatalf("could not set up a range with one taken port: %v", err)
			}
		}
		for _, off := range []int{0, 2, 4, 9} {
			if name, err := whichBackend("127.0.0.1:"+strconv.Itoa(first+off), ""); err != nil || name != "B" {
				t.Errorf("port %d: %q, %v", first+off, name, err)
			}
		}
		taken.Close()
		spec, _ := ParseRouteSpec(fmt.Sprintf("127.0.0.1:%d-%d 127.0.0.1 %d", first, first+9, b.port))
		rt := spec.Route()
		if ok, err := r.Update(0, rt); !ok || err != nil {
			t.Fatalf("update after the port was freed: %v, %v", ok, err)
		}
		if name, err := whichBackend("127.0.0.1:"+strconv.Itoa(first+3), ""); err != nil || name != "B" {
			t.Errorf("the freed port: %q, %v", name, err)
		}
	})
}

// TestRangeUpdateTouchesOnlyChangedPorts: growing and shrinking a range
// opens and closes only the ports that changed; a connection on a port that
// stays, and one on a port that goes, go on.
func TestRangeUpdateTouchesOnlyChangedPorts(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		ln := newLocalListener(t)
		serveEach(ln, echo)
		r, first, _ := freeRange(t, kind, 20, fmt.Sprintf("127.0.0.1 %d", portOf(ln.Addr())))
		update := func(last int) {
			t.Helper()
			spec, _ := ParseRouteSpec(fmt.Sprintf("127.0.0.1:%d-%d 127.0.0.1 %d", first, last, portOf(ln.Addr())))
			rt := spec.Route()
			if ok, err := r.Update(0, rt); !ok || err != nil {
				// A port the range gains may be taken: not the point here.
				var le *ListenError
				if !errors.As(err, &le) {
					t.Fatalf("update to %d-%d: %v, %v", first, last, ok, err)
				}
			}
		}
		stays := dialTCP(t, "127.0.0.1:"+strconv.Itoa(first+5))
		defer stays.Close()
		goes := dialTCP(t, "127.0.0.1:"+strconv.Itoa(first+15))
		defer goes.Close()
		if !echoes(stays) || !echoes(goes) {
			t.Fatal("no echo before the update")
		}
		update(first + 9) // shrink: ports +10..+19 close
		if relays("127.0.0.1:" + strconv.Itoa(first+15)) {
			t.Error("a port the range dropped still relays")
		}
		if !relays("127.0.0.1:"+strconv.Itoa(first+9)) || !echoes(stays) || !echoes(goes) {
			t.Error("the update touched a port that stays, or an open connection")
		}
		stays.Write([]byte("x"))
		update(first + 14) // grow again
		if !relays("127.0.0.1:" + strconv.Itoa(first+12)) {
			t.Error("a port the range gained does not relay")
		}
		if _, err := io.ReadFull(stays, make([]byte, 1)); err != nil || !echoes(stays) {
			t.Errorf("the connection on a port that stayed: %v", err)
		}
	})
}

// TestRangeDescribe: messages and events name a remote range whole
// ("Ready to relay data to 10.0.0.5:9000-9099", event 101), and one remote
// port as it is.
func TestRangeDescribe(t *testing.T) {
	for _, c := range []struct {
		spec, want string
	}{
		{"8000-8099 10.0.0.5 9000-9099", "10.0.0.5:9000-9099"},
		{"8000-8099 10.0.0.5 9000", "10.0.0.5:9000"},
		{"8000 db 5432 also=db2:5432", "db:5432, also db2:5432"},
	} {
		r, err := ParseRouteSpec(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if got := r.Route().describe(); got != c.want {
			t.Errorf("%s: %q; want %q", c.spec, got, c.want)
		}
	}
}
