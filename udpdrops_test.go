package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSocketDropsNote: the kernel's 32-bit drop counter extends to 64 bits
// across a wrap, and an older value than one seen changes nothing.
func TestSocketDropsNote(t *testing.T) {
	var d socketDrops
	for _, step := range []struct {
		v    uint32
		want int64
	}{{0, 0}, {5, 5}, {3, 5}, {5, 5}, {0x7ffffff0, 0x7ffffff0}, {0xffffffe0, 0xffffffe0}, {7, 1<<32 + 7},
		{0xfffffff8, 1<<32 + 7}, {1 << 30, 1<<32 + 1<<30}} {
		d.note(step.v)
		if got := d.total(); got != step.want {
			t.Fatalf("after note(%#x): total %#x; want %#x", step.v, got, step.want)
		}
	}
}

// TestUDPHeldDrops: a session whose backend is being connected holds up to
// maxQueued datagrams and counts the others as queue drops; the held ones
// of a session evicted meanwhile count as maxconn drops, those of a
// session no backend was found for as backend drops, a stopping route's
// not at all.
func TestUDPHeldDrops(t *testing.T) {
	for _, tt := range []struct {
		reason                 error
		capDrops, backendDrops int64
	}{{errEvicted, maxQueued, 0}, {errUDPIdle, 0, maxQueued}, {fmt.Errorf("no backend"), 0, maxQueued}, {errStopped, 0, 0}} {
		u := &udpRoute{sessions: map[udpKey]*udpSession{}}
		u.stats, u.relay = &routeStats{}, &Relay{}
		key := udpKey{client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 5000)}
		sess := &udpSession{u: u, key: key, dialing: true}
		sess.slot = &u.stats.slots[goroutineSlot]
		u.sessions[key] = sess
		for i := range maxQueued + 6 {
			if got := sess.queue([]byte{byte(i)}); got != held {
				t.Fatalf("datagram %d: %d; want held", i, got)
			}
		}
		if n := u.stats.udp.queueDrops.Load(); n != 6 {
			t.Errorf("%d queue drops; want the 6 over %d", n, maxQueued)
		}
		sess.end(tt.reason)
		if got := sess.queue([]byte("late")); got != ended {
			t.Errorf("a datagram after the end: %d; want ended", got)
		}
		if c, b := u.stats.udp.capDrops.Load(), u.stats.udp.backendDrops.Load(); c != tt.capDrops || b != tt.backendDrops {
			t.Errorf("ended (%v): %d maxconn drops, %d backend drops; want %d, %d", tt.reason, c, b, tt.capDrops, tt.backendDrops)
		}
	}
}

// TestUDPBackendDrops: datagrams to a backend whose port is closed are
// counted as backend drops: each comes back as an ICMP port unreachable,
// which the session's socket reports.
func TestUDPBackendDrops(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Go turns ICMP port unreachable off on Windows' UDP sockets (SIO_UDP_CONNRESET)")
	}
	closed := newUDPEchoServer(t, "")
	port := closed.port()
	closed.conn.Close()
	r, addr, _ := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d", port), "")
	c := udpClient(t, addr)
	const sent = 20
	for range sent {
		c.Write([]byte("anyone?"))
		time.Sleep(5 * time.Millisecond) // the ICMP unreachable comes back between them
	}
	if !eventually(3*time.Second, func() bool { return r.Status()[0].BackendDrops == sent }) {
		t.Errorf("%d backend drops after %d datagrams to a closed port", r.Status()[0].BackendDrops, sent)
	}
}

// TestUDPGlobalMaxConn: UDP sessions count against the relay's global cap
// (SetMaxConns) as TCP connections do: at the cap a TCP client is refused,
// and so is a new UDP client, whose datagrams are dropped, counted and
// logged once a minute; when a session ends there is room again.
func TestUDPGlobalMaxConn(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	tcpEcho := echoServer(t)
	rec := &eventRecorder{}
	r := &Relay{Events: rec.record}
	r.SetMaxConns(2)
	defer r.Shutdown(context.Background())
	for id, text := range []string{fmt.Sprintf("1 127.0.0.1 %d proto=udp idle=500ms", srv.port()), fmt.Sprintf("1 127.0.0.1 %d", portOf(tcpEcho.Addr()))} {
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
	udpAddr, tcpAddr := r.Addr(0).String(), r.Addr(1).String()
	for i := range 2 {
		if _, err := exchangeDatagram(udpClient(t, udpAddr), []byte("in")); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	late := udpClient(t, udpAddr)
	for range 3 {
		late.Write([]byte("room?"))
	}
	late.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := late.Read(make([]byte, 64)); err == nil {
		t.Errorf("a third session past the global cap of 2 was answered (%d bytes)", n)
	}
	if !eventually(3*time.Second, func() bool { return r.Status()[0].RefusedCap == 3 }) {
		t.Errorf("refused at the cap: %+v; want 3 datagrams", r.Status()[0])
	}
	if n := rec.count(ConnRefused, "relay has its global maximum of 2 open connections"); n != 1 {
		t.Errorf("%d refusal lines for 3 datagrams; want 1", n)
	}
	if c, err := net.Dial("tcp", tcpAddr); err == nil { // else reset at once
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a TCP client was relayed while 2 UDP sessions held the global cap of 2")
		}
		c.Close()
	}
	if !eventually(3*time.Second, func() bool { return r.Status()[1].RefusedCap == 1 }) {
		t.Errorf("TCP refused at the cap: %+v", r.Status()[1])
	}
	// The sessions end after idle=: room again, for both protocols.
	if !eventually(5*time.Second, func() bool { return r.Status()[0].Open == 0 }) {
		t.Fatalf("the sessions did not end: %+v", r.Status()[0])
	}
	if got, err := exchangeDatagram(late, []byte("now")); err != nil || string(got) != "now" {
		t.Errorf("after the sessions ended: %q, %v", got, err)
	}
	roundTrip(t, tcpAddr, "tcp too")
}

// TestUDPDropReports: a UDP route's drops and evictions in its status line,
// in status -json (and back), and in the metrics; a TCP route has none of
// them.
func TestUDPDropReports(t *testing.T) {
	udp, _ := ParseRouteSpec("53 10.0.0.2 53 proto=udp")
	tcp, _ := ParseRouteSpec("80 10.0.0.2 80")
	rs := RouteStatus{Listening: true, RcvBuf: 4 << 20, counters: counters{Total: 9, RefusedACL: 3, RefusedCap: 2,
		QueueDrops: 44, CapDrops: 1, BackendDrops: 1, Evicted: 2}}
	st := &ServiceStatus{Service: "relaytcp", State: "Running", Routes: []RouteReport{routeReport(0, udp, rs, ""),
		routeReport(1, tcp, RouteStatus{Listening: true}, ""), routeReport(2, udp, RouteStatus{Listening: true}, "")}}
	for i, want := range []string{
		"Route 0 : From local port 53/udp to IP 10.0.0.2 port 53 : listening, 0 open, 9 total, 5 refused, 0 failed, sent 0 B, received 0 B, 51 datagrams dropped (queue 44, denied 3, maxconn 3, backend 1), 2 sessions evicted",
		"Route 1 : From local port 80 to IP 10.0.0.2 port 80 : listening, 0 open, 0 total, 0 refused, 0 failed, sent 0 B, received 0 B",
		"Route 2 : From local port 53/udp to IP 10.0.0.2 port 53 : listening, 0 open, 0 total, 0 refused, 0 failed, sent 0 B, received 0 B, 0 datagrams dropped",
	} {
		if got := st.Routes[i].line(); got != want {
			t.Errorf("status line\n got %q\nwant %q", got, want)
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if want := `"datagrams_dropped":{"queue":44,"denied":3,"maxconn":3,"backend":1,"client":0,"rate":0},"sessions_evicted":2,"rcvbuf":4194304`; !strings.Contains(text, want) {
		t.Errorf("status -json lacks %s:\n%s", want, text)
	}
	if n := strings.Count(text, "datagrams_dropped"); n != 2 {
		t.Errorf("datagrams_dropped %d times; want for the 2 UDP routes only:\n%s", n, text)
	}
	var back ServiceStatus
	if err := json.Unmarshal(data, &back); err != nil || back.Routes[0].UDPReport == nil || *back.Routes[0].UDPReport != *st.Routes[0].UDPReport ||
		back.Routes[1].UDPReport != nil {
		t.Errorf("status -json read back: %+v, %v", back.Routes, err)
	}

	var b strings.Builder
	writeMetrics(&b, st)
	metrics := b.String()
	for _, want := range []string{
		`relaytcp_route_datagrams_dropped_total{route="0",listen=":53/udp",reason="queue"} 44`,
		`relaytcp_route_datagrams_dropped_total{route="0",listen=":53/udp",reason="denied"} 3`,
		`relaytcp_route_datagrams_dropped_total{route="0",listen=":53/udp",reason="maxconn"} 3`,
		`relaytcp_route_datagrams_dropped_total{route="0",listen=":53/udp",reason="backend"} 1`,
		`relaytcp_route_datagrams_dropped_total{route="2",listen=":53/udp",reason="queue"} 0`,
		`relaytcp_route_sessions_evicted_total{route="0",listen=":53/udp"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `route="1",listen=":80",reason="queue"`) || strings.Contains(metrics, `relaytcp_route_sessions_evicted_total{route="1"`) {
		t.Errorf("a TCP route has UDP metrics:\n%s", metrics)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool (Debian's prometheus package) is not installed: the format was not checked by it")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, metrics)
	}
}

// TestUDPEvictionsCounted: sessions evicted at maxconn= are counted.
func TestUDPEvictionsCounted(t *testing.T) {
	srv := newUDPEchoServer(t, "")
	r, addr, _ := startUDPRoute(t, fmt.Sprintf("127.0.0.1 %d maxconn=2", srv.port()), "")
	for i := range 5 {
		if _, err := exchangeDatagram(udpClient(t, addr), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if rs := r.Status()[0]; rs.Evicted != 3 || rs.Open != 2 {
		t.Errorf("%d evicted, %d open; want 3, 2", rs.Evicted, rs.Open)
	}
}

// dropsOf is the kernel's count of the datagrams socket c dropped (0 where
// the system does not tell).
func dropsOf(c *net.UDPConn) int64 {
	var d socketDrops
	d.lookUp(c)
	return d.total()
}
