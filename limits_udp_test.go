package main

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// TestUDPClientMaxConn: a UDP route's clientmaxconn= counts a client's
// sessions: the third socket of 127.0.0.1 under clientmaxconn=2 has its
// datagram dropped and counted, as a refusal and as a datagram dropped
// for a per-client limit.
func TestUDPClientMaxConn(t *testing.T) {
	echo := newUDPEchoServer(t, "")
	r, addr, rec := startUDPRoute(t, "127.0.0.1 "+strconv.Itoa(echo.port())+" clientmaxconn=2", "")
	for i := range 2 {
		if got, err := exchangeDatagram(udpClient(t, addr), []byte("hi")); err != nil || string(got) != "hi" {
			t.Fatalf("session %d: %q, %v", i+1, got, err)
		}
	}
	third := udpClient(t, addr)
	third.Write([]byte("hi"))
	if !eventually(5*time.Second, func() bool { return r.Status()[0].Limits.refused[byClientMaxConn] == 1 }) {
		t.Fatalf("refused by clientmaxconn %d; want 1", r.Status()[0].Limits.refused[byClientMaxConn])
	}
	if n := echo.got.Load(); n != 2 {
		t.Errorf("the backend got %d datagrams; want 2", n)
	}
	rep := routeReport(0, RouteSpec{Proto: "udp"}, r.Status()[0], "")
	if rep.DatagramsDropped.Client != 1 || rep.RefusedClientMaxConn != 1 || rep.Refused != 1 {
		t.Errorf("report: dropped by client %d, refused_clientmaxconn %d, refused %d; want 1, 1, 1",
			rep.DatagramsDropped.Client, rep.RefusedClientMaxConn, rep.Refused)
	}
	if n := rec.count(ConnRefused, "clientmaxconn=2"); n != 1 {
		t.Errorf("%d refusal lines; want 1", n)
	}
}

// TestUDPRateDrops: datagrams over rate= are dropped and counted, not
// queued: of 50 datagrams of 1,000 bytes sent at once under rate=2K, most
// never reach the backend.
func TestUDPRateDrops(t *testing.T) {
	echo := newUDPEchoServer(t, "")
	r, addr, _ := startUDPRoute(t, "127.0.0.1 "+strconv.Itoa(echo.port())+" rate=2K", "")
	c := udpClient(t, addr)
	if _, err := exchangeDatagram(c, []byte("first")); err != nil {
		t.Fatalf("the first datagram: %v", err)
	}
	drops := sendBurstOverRate(t, r, c, echo)
	rep := routeReport(0, RouteSpec{Proto: "udp", Limits: Limits{Rate: 2 << 10}}, r.Status()[0], "")
	if rep.DatagramsDropped.Rate != drops || rep.Throughput == nil {
		t.Errorf("report: dropped over rate %d, throughput %v; want %d and a throughput", rep.DatagramsDropped.Rate, rep.Throughput, drops)
	}
}

// TestUDPRateGivenToOpenSession: a session opened before its route had a
// cap is held to the cap a reload gives the route: a burst of 50
// datagrams of 1,000 bytes sent after rate=2K arrived mostly dropped.
func TestUDPRateGivenToOpenSession(t *testing.T) {
	echo := newUDPEchoServer(t, "")
	r, addr, _ := startUDPRoute(t, "127.0.0.1 "+strconv.Itoa(echo.port()), "")
	c := udpClient(t, addr)
	if _, err := exchangeDatagram(c, []byte("first")); err != nil {
		t.Fatalf("the first datagram: %v", err)
	}
	spec, err := ParseRouteSpec("1 127.0.0.1 " + strconv.Itoa(echo.port()) + " proto=udp rate=2K")
	if err != nil {
		t.Fatal(err)
	}
	rt := spec.Route()
	rt.ListenAddr = addr
	if ok, err := r.Update(0, rt); !ok || err != nil {
		t.Fatalf("Update with rate=2K: %v, %v", ok, err)
	}
	sendBurstOverRate(t, r, c, echo)
}

// sendBurstOverRate sends 50 datagrams of 1,000 bytes at once through c,
// a session of route 0 of r under rate=2K that relayed one datagram to
// echo already, and checks that most were dropped over the rate and
// counted; it returns the drops.
func sendBurstOverRate(t *testing.T, r *Relay, c net.Conn, echo *udpEchoServer) int64 {
	t.Helper()
	msg := make([]byte, 1000)
	for range 50 {
		c.Write(msg)
	}
	var drops int64
	if !eventually(5*time.Second, func() bool {
		drops = r.Status()[0].Limits.rateDrops
		return drops > 0 && drops+echo.got.Load() >= 51
	}) {
		t.Fatalf("rate drops %d, the backend got %d of 51", drops, echo.got.Load())
	}
	if got := echo.got.Load(); got > 10 {
		t.Errorf("the backend got %d of 50 datagrams of 1,000 bytes sent at once under rate=2K; want a few", got)
	}
	return drops
}
