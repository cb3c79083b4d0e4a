//go:build !windows

package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitStderr waits for a stderr line containing want.
func (p *relayProc) waitStderr(t *testing.T, want string) {
	t.Helper()
	if !eventually(20*time.Second, func() bool { return strings.Contains(strings.Join(p.stderrLines(), "\n"), want) }) {
		t.Fatalf("no stderr line with %q; output:\n%s", want, p.output())
	}
}

// TestServiceEndToEnd runs "relaytcp service" on a config with a good route,
// one whose port is taken and one whose host does not resolve: the good one
// relays and is logged; SIGHUP applies an edited config without touching an
// open connection; SIGTERM stops it.
func TestServiceEndToEnd(t *testing.T) {
	echo := echoServer(t)
	echoPort := portOf(echo.Addr())
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	good, later := freePort(t), freePort(t)
	dir := tempDir(t)
	logDir := filepath.Join(dir, "logs")
	conf := filepath.Join(dir, "relaytcp.conf")
	writeConf := func(routes ...string) {
		text := "# test\nlogdir " + logDir + "\ndebug 1\n"
		for _, r := range routes {
			text += "route " + r + "\n"
		}
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goodRoute := fmt.Sprintf("%d 127.0.0.1 %d", good, echoPort)
	writeConf(goodRoute,
		fmt.Sprintf("%d 127.0.0.1 %d", portOf(taken.Addr()), echoPort),
		fmt.Sprintf("%d no-such-host.invalid 80", freePort(t)))

	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "RelayTCPsvc[100] Information: The Relay TCP Service was successfully started")
	want := []string{
		fmt.Sprintf("RelayTCPsvc[101] Information: The Relay TCP Service is ready to get data from local port %d and relay to 127.0.0.1:%d", good, echoPort),
		fmt.Sprintf("RelayTCPsvc[101] Error: The Relay TCP Service couldn't bound port %d to relay to 127.0.0.1:%d (address already in use)", portOf(taken.Addr()), echoPort),
		"RelayTCPsvc[101] Error: The Relay TCP Service couldn't resolve no-such-host.invalid IP address. This relay cannot be done.",
	}
	for _, w := range want {
		p.waitStderr(t, w)
	}

	goodAddr := "127.0.0.1:" + strconv.Itoa(good)
	roundTrip(t, goodAddr, "through the service")
	// A connection that stays open across the reload.
	open := dialTCP(t, goodAddr)
	defer open.Close()
	open.SetDeadline(time.Now().Add(20 * time.Second))
	open.Write([]byte("1"))
	io.ReadFull(open, make([]byte, 1))

	// The connection log, in the manual's format.
	line := regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d Connection from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:` + strconv.Itoa(echoPort) + `$`)
	coLog := filepath.Join(logDir, "CO"+time.Now().Format("060102")+".LOG")
	if !eventually(5*time.Second, func() bool {
		data, _ := os.ReadFile(coLog)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) > 0 && line.MatchString(lines[0])
	}) {
		data, _ := os.ReadFile(coLog)
		t.Fatalf("connection log %s:\n%s\nwant a first line like %q", coLog, data, line)
	}
	if logs, _ := filepath.Glob(filepath.Join(logDir, "RL*.LOG")); len(logs) < 1 {
		t.Errorf("Debug 1 but no data logs in %s", logDir)
	}
	if fi, err := os.Stat(logDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("log dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}

	// Reload: keep the good route, drop the broken ones, add one.
	writeConf(goodRoute, fmt.Sprintf("%d 127.0.0.1 %d", later, echoPort))
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitStderr(t, fmt.Sprintf("started %d 127.0.0.1 %d", later, echoPort))
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(later), "new route")
	open.Write([]byte("2"))
	if _, err := io.ReadFull(open, make([]byte, 1)); err != nil {
		t.Fatalf("open connection on an unchanged route broken by the reload: %v", err)
	}

	// A broken config is refused as a whole; the running one stays.
	os.WriteFile(conf, []byte("route 1 2 3 4\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitStderr(t, "configuration was not reloaded, the running one stays")
	roundTrip(t, goodAddr, "still there")

	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d; want 0\n%s", code, p.output())
	}
	p.waitStderr(t, "RelayTCPsvc[100] Information: The Relay TCP Service was successfully stopped")
}

// TestServiceNoRoutes: the manual's "no routes" error, and the service stops.
func TestServiceNoRoutes(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte("# nothing\nlogdir "+dir+"\n"), 0o644)
	p := startProc(t, dir, "service", "-config", conf)
	if code := p.wait(t, 20*time.Second); code != exitRuntime {
		t.Fatalf("exit code %d; want %d\n%s", code, exitRuntime, p.output())
	}
	p.waitStderr(t, "RelayTCPsvc[100] Error: There is no routes to relay. The Service is stopped")
}

// TestServiceBadConfig: a config error names the line and exits 5.
func TestServiceBadConfig(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte("route 155 host 110\nroute 156 host x\n"), 0o644)
	p := startProc(t, dir, "service", "-config", conf)
	if code := p.wait(t, 20*time.Second); code != exitConfig {
		t.Fatalf("exit code %d; want %d\n%s", code, exitConfig, p.output())
	}
	p.waitStderr(t, `relaytcp.conf:2: route 1: invalid remote port "x"`)
}

// TestRouteCommands adds, lists and deletes routes in a config file.
func TestRouteCommands(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte("# keep me\n"), 0o644)
	run := func(wantCode int, args ...string) string {
		t.Helper()
		p := startProc(t, dir, append([]string{"route", "-config", conf}, args...)...)
		if code := p.wait(t, 20*time.Second); code != wantCode {
			t.Fatalf("route %v: exit %d; want %d\n%s", args, code, wantCode, p.output())
		}
		return p.output()
	}
	run(0, "add", "155", "192.168.1.200", "110")
	run(0, "add", "1088", "www.mydomaindot.com", "80")
	if out := run(exitUsage, "add", "155", "other", "1"); !strings.Contains(out, "local port 155 is already used by route 0") {
		t.Errorf("duplicate port: %s", out)
	}
	if out := run(exitUsage, "add", "156", "bad host!", "1"); !strings.Contains(out, `invalid remote host "bad host!"`) {
		t.Errorf("bad host: %s", out)
	}
	if out := run(exitUsage, "delete", "7"); !strings.Contains(out, "no route 7 (routes are 0 to 1)") {
		t.Errorf("delete 7: %s", out)
	}
	// Several backends, as the example shows them.
	if out := run(0, "add", "160", "web1", "8080", "also=web2:8080,web3:8080", "backup=web9:8080", "balance=leastconn", "check=2s"); !strings.Contains(out,
		"Route 2 : From local port 160 to IP web1 port 8080, also web2:8080, web3:8080, backup web9:8080 (leastconn, check 2s)") {
		t.Errorf("add with backends: %s", out)
	}
	if out := run(exitUsage, "add", "161", "web1", "8080", "also=web1:8080"); !strings.Contains(out, "duplicate backend web1:8080") {
		t.Errorf("add with a duplicate backend: %s", out)
	}
	run(0, "delete", ":160")
	// By its local side: a route on every interface as :PORT, one on an
	// address as ADDR:PORT.
	run(0, "add", "127.0.0.1:157", "a.example", "1")
	run(0, "add", "[::1]:158", "b.example", "1")
	if out := run(exitUsage, "delete", "127.0.0.2:157"); !strings.Contains(out, "no route listens on 127.0.0.2:157") {
		t.Errorf("delete 127.0.0.2:157: %s", out)
	}
	if out := run(0, "delete", "127.0.0.1:157"); !strings.Contains(out, "Deleted Route 2 : From local address 127.0.0.1 port 157") {
		t.Errorf("delete 127.0.0.1:157: %s", out)
	}
	run(0, "delete", "[::1]:158")
	if out := run(0, "delete", ":155"); !strings.Contains(out, "Deleted Route 0 : From local port 155 ") {
		t.Errorf("delete :155: %s", out)
	}
	out := run(0, "list")
	if !strings.Contains(out, "Route 0 : From local port 1088 to IP www.mydomaindot.com port 80") || strings.Contains(out, "155") {
		t.Errorf("list after delete: %s", out)
	}
	data, _ := os.ReadFile(conf)
	if string(data) != "# keep me\nroute 1088 www.mydomaindot.com 80\n" {
		t.Errorf("config file:\n%s", data)
	}
	// No service here (or a test machine's systemd without the unit).
	st := startProc(t, dir, "status", "-config", conf)
	if code := st.wait(t, 20*time.Second); code != 0 || !strings.Contains(st.output(), "Status  : Not installed") || strings.Contains(st.output(), "invalid") {
		t.Errorf("status without a service: exit %d\n%s", code, st.output())
	}
	// RELAYTCP_CONFIG names the file too.
	t.Setenv("RELAYTCP_CONFIG", conf)
	p := startProc(t, dir, "route", "list")
	if p.wait(t, 20*time.Second) != 0 || !strings.Contains(p.output(), "port 1088") {
		t.Errorf("RELAYTCP_CONFIG: %s", p.output())
	}
}

// TestAdminMenu drives the menu through a pipe: add two routes (with a
// wrong answer on the way), delete one, and exit.
func TestAdminMenu(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	input := strings.Join([]string{
		"5",                                    // Refresh
		"3",                                    // Change Config
		"1", "155", "192.168.1.200", "110", "", // Add Route, no options
		"1", "0", "1088", "www.mydomaindot.com", "80", "speed=1", "maxconn=10", // a bad port and option first
		"1", "155", "", // a taken port, then give up
		"2", "5", "0", // delete: no route 5, then route 0
		"9", // unknown option
		"3", // back
		"4", // exit
	}, "\n") + "\n"
	p := startProcWith(t, dir, func(cmd *exec.Cmd) { cmd.Stdin = strings.NewReader(input) }, "admin", "-config", conf)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.output())
	}
	out := p.output()
	for _, want := range []string{
		"Service : RelayTCPsvc",
		"1-Start Service  2-Stop Service  3-Change Config  4-Exit  5-Refresh",
		"Live    : none, no service answers on " + conf + ".sock (config " + conf + ")",
		"1-Add Route      2-Delete Route      3-Exit",
		"Added Route 0 : From local port 155 to IP 192.168.1.200 port 110",
		`invalid local port "0": must be 1-65535`,
		`unknown option "speed="`,
		"Added Route 1 : From local port 1088 to IP www.mydomaindot.com port 80 (maxconn=10)",
		"local port 155 is already used by route 0",
		"No route added.",
		"no route 5 (routes are 0 to 1)",
		"Deleted Route 0 : From local port 155 to IP 192.168.1.200 port 110",
		`Unknown option "9"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("menu output lacks %q", want)
		}
	}
	if strings.Contains(out, `Unknown option "5"`) {
		t.Error("5-Refresh is not a choice of the main menu")
	}
	// The last screen shows what is left.
	last := out[strings.LastIndex(out, "Configuration"):]
	if !strings.Contains(last, "Route 0 : From local port 1088 to IP www.mydomaindot.com port 80 (maxconn=10)") || strings.Contains(last, "Route 1 ") {
		t.Errorf("last screen:\n%s", last)
	}
	data, _ := os.ReadFile(conf)
	if !strings.HasSuffix(string(data), "route 1088 www.mydomaindot.com 80 maxconn=10\n") || strings.Contains(string(data), "155") {
		t.Errorf("config file:\n%s", data)
	}
	if t.Failed() {
		t.Logf("menu output:\n%s", out)
	}
}

// TestServiceThousandRoutes: no 40-route limit in the service either.
func TestServiceThousandRoutes(t *testing.T) {
	echo := echoServer(t)
	echoPort := portOf(echo.Addr())
	dir := tempDir(t)
	// Free ports below the ephemeral range (32768 and up), so that no
	// client socket takes one between the check and the service's listen.
	var ports []int
	text := "logdir " + filepath.Join(dir, "logs") + "\n"
	for port := 20000; port < 32000 && len(ports) < 1000; port++ {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, port)
		text += fmt.Sprintf("route %d 127.0.0.1 %d\n", port, echoPort)
	}
	if len(ports) < 1000 {
		t.Fatalf("only %d free ports in 20000-32000", len(ports))
	}
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte(text), 0o644)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	ready := strings.Count(strings.Join(p.stderrLines(), "\n"), "is ready to get data")
	if ready != 1000 {
		t.Fatalf("%d routes ready; want 1000\n%s", ready, p.output())
	}
	for _, i := range []int{0, 499, 999} {
		roundTrip(t, "127.0.0.1:"+strconv.Itoa(ports[i]), "route "+strconv.Itoa(i))
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestServiceUnwritableLogDir: a log directory that cannot be created gives
// one event, and the routes relay all the same.
func TestServiceUnwritableLogDir(t *testing.T) {
	echo := echoServer(t)
	dir := tempDir(t)
	blocker := filepath.Join(dir, "not-a-dir")
	os.WriteFile(blocker, []byte("x"), 0o644)
	logDir := filepath.Join(blocker, "logs") // below a regular file: never creatable
	port := freePort(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("logdir %s\ndebug 1\nroute %d 127.0.0.1 %d\n", logDir, port, portOf(echo.Addr()))), 0o644)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	for i := range 5 {
		roundTrip(t, "127.0.0.1:"+strconv.Itoa(port), "message "+strconv.Itoa(i))
	}
	time.Sleep(200 * time.Millisecond)
	warnings := strings.Count(strings.Join(p.stderrLines(), "\n"), "RelayTCPsvc[100] Warning: The Relay TCP Service cannot write its logs in "+logDir)
	if warnings != 1 {
		t.Fatalf("%d log-directory warnings; want exactly 1\n%s", warnings, p.output())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestServiceLiveReconfig: an edited config file (no signal) is applied
// while a long transfer runs on route A: B is added, C removed, D changed,
// and A's transfer arrives byte for byte.
func TestServiceLiveReconfig(t *testing.T) {
	echo := echoServer(t)
	echoPort := portOf(echo.Addr())
	type result struct {
		sum [32]byte
		n   int64
	}
	got := make(chan result, 1)
	sink := newLocalListener(t)
	serveEach(sink, func(c *net.TCPConn) {
		defer c.Close()
		sum, n, _ := hashReader(c)
		got <- result{sum, n}
	})
	other := echoServer(t) // D's new destination
	a, b, c, d := freePort(t), freePort(t), freePort(t), freePort(t)
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	write := func(routes ...string) {
		text := "logdir " + filepath.Join(dir, "logs") + "\n"
		for _, r := range routes {
			text += "route " + r + "\n"
		}
		if err := writeFileAtomic(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	routeA := fmt.Sprintf("%d 127.0.0.1 %d", a, portOf(sink.Addr()))
	write(routeA, fmt.Sprintf("%d 127.0.0.1 %d", c, echoPort), fmt.Sprintf("%d 127.0.0.1 %d", d, echoPort))
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")

	payload := randomBytes(7, 24<<20)
	conn := dialTCP(t, "127.0.0.1:"+strconv.Itoa(a))
	defer conn.Close()
	sent := make(chan error, 1)
	go func() { // about 4 s of sending, across the reload
		for i := 0; i < len(payload); i += 256 << 10 {
			if _, err := conn.Write(payload[i:min(i+256<<10, len(payload))]); err != nil {
				sent <- err
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		sent <- conn.CloseWrite()
	}()

	time.Sleep(500 * time.Millisecond)
	write(routeA, fmt.Sprintf("%d 127.0.0.1 %d", b, echoPort), fmt.Sprintf("%d 127.0.0.1 %d", d, portOf(other.Addr())))
	p.waitStderr(t, "configuration was reloaded")
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(b), "route B is new")
	if relays("127.0.0.1:" + strconv.Itoa(c)) {
		t.Error("removed route C still relays")
	}
	dc := dialTCP(t, "127.0.0.1:"+strconv.Itoa(d))
	defer dc.Close()
	if ra := dc.RemoteAddr(); ra == nil || !echoes(dc) {
		t.Error("changed route D does not relay")
	}
	if !eventually(5*time.Second, func() bool {
		return strings.Contains(strings.Join(p.stderrLines(), "\n"), fmt.Sprintf("ready to get data from local port %d and relay to 127.0.0.1:%d", d, portOf(other.Addr())))
	}) {
		t.Errorf("route D not restarted to its new destination:\n%s", p.output())
	}

	if err := <-sent; err != nil {
		t.Fatalf("sending on route A: %v", err)
	}
	select {
	case r := <-got:
		if r.n != int64(len(payload)) || r.sum != sha256.Sum256(payload) {
			t.Fatalf("route A delivered %d bytes (hash match %v); want %d", r.n, r.sum == sha256.Sum256(payload), len(payload))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("route A's transfer did not finish")
	}
	dc.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the service exited with %d; want 0\n%s", code, p.output())
	}
}

// TestServiceRetentionAndGlobalCap: logretention deletes old logs at start
// (and only logs), and the global maxconn refuses connections over it.
func TestServiceRetentionAndGlobalCap(t *testing.T) {
	echo := echoServer(t)
	dir := tempDir(t)
	logDir := filepath.Join(dir, "logs")
	os.MkdirAll(logDir, 0o700)
	old := time.Now().Add(-72 * time.Hour)
	for _, name := range []string{"CO261101.LOG", "RL261101120042.LOG", "keep-me.txt"} {
		path := filepath.Join(logDir, name)
		os.WriteFile(path, []byte("x"), 0o600)
		os.Chtimes(path, old, old)
	}
	recent := filepath.Join(logDir, "CO261123.LOG")
	os.WriteFile(recent, []byte("x"), 0o600)
	port := freePort(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("logdir %s\nlogretention 2\nmaxconn 1\nroute %d 127.0.0.1 %d\n", logDir, port, portOf(echo.Addr()))), 0o644)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	gone := func(name string) bool { _, err := os.Stat(filepath.Join(logDir, name)); return os.IsNotExist(err) }
	if !eventually(5*time.Second, func() bool { return gone("CO261101.LOG") && gone("RL261101120042.LOG") }) {
		t.Error("logs older than logretention 2 were not deleted")
	}
	if gone("keep-me.txt") || gone("CO261123.LOG") {
		t.Error("pruning deleted a file that is not an old log")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	first := dialTCP(t, addr)
	defer first.Close()
	if !echoes(first) {
		t.Fatal("first connection not relayed")
	}
	if relays(addr) {
		t.Error("second connection relayed over the global maxconn 1")
	}
	first.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the service exited with %d; want 0\n%s", code, p.output())
	}
}

func TestPruneLogs(t *testing.T) {
	dir := tempDir(t)
	now := time.Now()
	for name, age := range map[string]time.Duration{"CO1.LOG": 49 * time.Hour, "RL2.LOG": 47 * time.Hour, "co3.log": 100 * time.Hour, "X.LOG": 100 * time.Hour} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, nil, 0o600)
		os.Chtimes(path, now.Add(-age), now.Add(-age))
	}
	n, err := pruneLogs(dir, 2, now)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2 (CO1.LOG and co3.log)", n, err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 2 {
		t.Fatalf("left %v; want RL2.LOG and X.LOG", left)
	}
}

// TestServiceBackends: a route with a dead backend and one whose name does
// not resolve relays every connection to the live one; the service reports
// the unresolvable name (event 101) and each backend going down or up
// (event 102 and the connection log), under the route's current number;
// a reload that changes the backends keeps open connections and the
// health of the backends it keeps.
func TestServiceBackends(t *testing.T) {
	echoLn := echoServer(t)
	live, dead, plain := newTestBackend(t, "L"), freePort(t), freePort(t)
	port := freePort(t)
	dir := tempDir(t)
	logDir := filepath.Join(dir, "logs")
	conf := filepath.Join(dir, "relaytcp.conf")
	backendRoute := fmt.Sprintf("%d 127.0.0.1 %d also=127.0.0.1:%d,no-such-host.invalid:80 check=200ms fall=2 rise=2", port, live.port, dead)
	write := func(routes ...string) {
		text := "logdir " + logDir + "\n"
		for _, r := range routes {
			text += "route " + r + "\n"
		}
		if err := writeFileAtomic(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("%d 127.0.0.1 %d", plain, portOf(echoLn.Addr())), backendRoute)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	p.waitStderr(t, fmt.Sprintf("RelayTCPsvc[101] Warning: The Relay TCP Service couldn't resolve no-such-host.invalid IP address. The relay from local port %d goes on with its other backends.", port))
	p.waitStderr(t, fmt.Sprintf("RelayTCPsvc[101] Information: The Relay TCP Service is ready to get data from local port %d and relay to 127.0.0.1:%d, also 127.0.0.1:%d, no-such-host.invalid:80", port, live.port, dead))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := range 20 {
		if name, err := whichBackend(addr, ""); err != nil || name != "L" {
			t.Fatalf("connection %d: %q, %v; want the live backend", i, name, err)
		}
	}
	deadDown := fmt.Sprintf("Backend 127.0.0.1:%d of route 1 is down: connect: connection refused (2 failed checks)", dead)
	p.waitStderr(t, "RelayTCPsvc[102] Warning: "+deadDown)
	p.waitStderr(t, "RelayTCPsvc[102] Warning: Backend no-such-host.invalid:80 of route 1 is down: lookup no-such-host.invalid")
	coLog := filepath.Join(logDir, "CO"+time.Now().Format("060102")+".LOG")
	if !eventually(5*time.Second, func() bool { data, _ := os.ReadFile(coLog); return strings.Contains(string(data), deadDown) }) {
		data, _ := os.ReadFile(coLog)
		t.Errorf("connection log lacks %q:\n%s", deadDown, data)
	}

	held, err := dialBackend(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// Route 0 goes, so the backend route is route 0 now; it gets a second
	// live backend.
	other := newTestBackend(t, "O")
	write(strings.Replace(backendRoute, "also=", fmt.Sprintf("also=%s,", other.addr()), 1))
	p.waitStderr(t, "changed in place")
	time.Sleep(time.Second) // five check intervals
	if n := strings.Count(strings.Join(p.stderrLines(), "\n"), fmt.Sprintf("Backend 127.0.0.1:%d of route", dead)); n != 1 {
		t.Errorf("%d events for the dead backend; want its one down event (its state is kept)\n%s", n, p.output())
	}
	seen := map[string]bool{}
	for range 10 {
		name, err := whichBackend(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		seen[name] = true
	}
	if !seen["L"] || !seen["O"] || len(seen) != 2 {
		t.Errorf("after the reload connections reached %v; want L and O", seen)
	}
	held.SetDeadline(time.Now().Add(5 * time.Second))
	held.Write([]byte("across the reload\n"))
	if line, err := held.r.ReadString('\n'); err != nil || line != "across the reload\n" {
		t.Errorf("open connection after the reload: %q, %v", line, err)
	}
	// The dead backend comes back: reported under the route's new number.
	back, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(dead))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	serveEach(back, echo)
	p.waitStderr(t, fmt.Sprintf("RelayTCPsvc[102] Information: Backend 127.0.0.1:%d of route 0 is up (2 good checks)", dead))
	held.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestServiceRetriesRoutesThatCouldNotStart: a route whose port is taken at
// start is reported once, tried again, and starts (reported) once the port
// is free; the other routes run meanwhile.
func TestServiceRetriesRoutesThatCouldNotStart(t *testing.T) {
	echoLn := echoServer(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port, other := portOf(taken.Addr()), freePort(t)
	cfg := &Config{LogDir: tempDir(t), Routes: []RouteSpec{
		{BindAddr: "127.0.0.1", LocalPort: port, RemoteHost: "127.0.0.1", RemotePort: portOf(echoLn.Addr())},
		{BindAddr: "127.0.0.1", LocalPort: other, RemoteHost: "127.0.0.1", RemotePort: portOf(echoLn.Addr())},
	}}
	var out strings.Builder
	log := &stderrLog{w: &syncWriter{w: &out}}
	s, err := newService(cfg, log, 100*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(context.Background())
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(other), "the other route runs")
	time.Sleep(300 * time.Millisecond) // three retries
	taken.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !eventually(5*time.Second, func() bool { return relays(addr) }) {
		t.Fatalf("the route did not start once its port was free:\n%s", log.w.(*syncWriter).String())
	}
	// The route relays before the service writes its ready line: wait for
	// the line, then count.
	ready := fmt.Sprintf("ready to get data from local port %d ", port)
	if !eventually(5*time.Second, func() bool { return strings.Contains(log.w.(*syncWriter).String(), ready) }) {
		t.Fatalf("no ready line for the retried route:\n%s", log.w.(*syncWriter).String())
	}
	text := log.w.(*syncWriter).String()
	if n := strings.Count(text, fmt.Sprintf("couldn't bound port %d", port)); n != 1 {
		t.Errorf("%d bind errors reported; want 1 (retries are quiet):\n%s", n, text)
	}
	if n := strings.Count(text, ready); n != 1 {
		t.Errorf("%d ready events for the retried route; want 1:\n%s", n, text)
	}
}

// syncWriter is a strings.Builder that several goroutines may write.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// TestServiceRanges: a range whose port is taken runs on the others, names
// the port (event 101) and shows it in the status; the port is tried again;
// a reload that grows the range opens only the new ports and keeps a
// connection on an old one.
func TestServiceRanges(t *testing.T) {
	echoLn := echoServer(t)
	var first int
	var taken net.Listener
	for attempt := 0; ; attempt++ {
		first = 20000 + rand.IntN(10000)
		var err error
		if taken, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+2)); err == nil {
			break
		}
		if attempt == 10 {
			t.Fatal(err)
		}
	}
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	write := func(last int) {
		text := fmt.Sprintf("logdir %s\nroute 127.0.0.1:%d-%d 127.0.0.1 %d\n", filepath.Join(dir, "logs"), first, last, portOf(echoLn.Addr()))
		if err := writeFileAtomic(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(first + 4)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	p.waitStderr(t, fmt.Sprintf("RelayTCPsvc[101] Error: The Relay TCP Service couldn't bound port %d (address already in use) to relay to 127.0.0.1:%d", first+2, portOf(echoLn.Addr())))
	p.waitStderr(t, fmt.Sprintf("RelayTCPsvc[101] Information: The Relay TCP Service is ready to get data from local ports %d-%d and relay to", first, first+4))
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(first+4), "last port")
	st := startProc(t, dir, "status", "-config", conf)
	if code := st.wait(t, 20*time.Second); code != 0 {
		t.Errorf("status exited with %d; want 0\n%s", code, st.output())
	}
	if want := fmt.Sprintf("Route 0 : From local address 127.0.0.1 ports %d-%d to IP 127.0.0.1 port %d : listening (not on port %d (address already in use)), 0 open, 1 total",
		first, first+4, portOf(echoLn.Addr()), first+2); !strings.Contains(st.output(), want) {
		t.Errorf("status lacks %q:\n%s", want, st.output())
	}
	held := dialTCP(t, "127.0.0.1:"+strconv.Itoa(first))
	defer held.Close()
	if !echoes(held) {
		t.Fatal("no echo")
	}
	taken.Close()
	write(first + 6)
	p.waitStderr(t, "changed in place")
	for _, off := range []int{2, 5, 6} {
		port := "127.0.0.1:" + strconv.Itoa(first+off)
		if !eventually(5*time.Second, func() bool { return relays(port) }) {
			t.Errorf("port %s does not relay after the reload", port)
		}
	}
	if !echoes(held) {
		t.Error("the connection on a port the reload kept was broken")
	}
	held.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the service exited with %d; want 0\n%s", code, p.output())
	}
}

// TestServiceUDP: the service runs a TCP and a UDP route on one port; the
// events and the status say which is which; sessions are logged.
func TestServiceUDP(t *testing.T) {
	srv := newUDPEchoServer(t, "u:")
	tcpEcho := echoServer(t)
	port := freePort(t)
	dir := tempDir(t)
	logDir := filepath.Join(dir, "logs")
	conf := filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf("logdir %s\nroute 127.0.0.1:%d 127.0.0.1 %d\nroute 127.0.0.1:%d 127.0.0.1 %d proto=udp idle=10m\n",
		logDir, port, portOf(tcpEcho.Addr()), port, srv.port())
	os.WriteFile(conf, []byte(text), 0o644)
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	p.waitStderr(t, fmt.Sprintf("RelayTCPsvc[101] Information: The Relay TCP Service is ready to get data from local port %d/udp and relay to 127.0.0.1:%d", port, srv.port()))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if got, err := exchangeDatagram(udpClient(t, addr), []byte("dns?")); err != nil || string(got) != "u:dns?" {
		t.Fatalf("through the UDP route: %q, %v", got, err)
	}
	roundTrip(t, addr, "and TCP")
	st := startProc(t, dir, "status", "-config", conf)
	if code := st.wait(t, 20*time.Second); code != 0 {
		t.Errorf("status exited with %d; want 0\n%s", code, st.output())
	}
	if want := fmt.Sprintf("Route 1 : From local address 127.0.0.1 port %d/udp to IP 127.0.0.1 port %d (idle=10m) : listening, 1 open, 1 total, 0 refused, 0 failed, sent 4 B, received 6 B, 0 datagrams dropped\n",
		port, srv.port()); !strings.Contains(st.output(), want) {
		t.Errorf("status lacks %q:\n%s", want, st.output())
	}
	js := startProc(t, dir, "status", "-config", conf, "-json")
	if code := js.wait(t, 20*time.Second); code != 0 {
		t.Errorf("status -json exited with %d; want 0\n%s", code, js.output())
	}
	var status ServiceStatus
	if err := json.Unmarshal([]byte(strings.Join(js.stdoutLines(), "\n")), &status); err != nil || len(status.Routes) != 2 ||
		status.Routes[0].UDPReport != nil || status.Routes[1].UDPReport == nil ||
		*status.Routes[1].UDPReport != (UDPReport{RcvBuf: defaultRcvBuf}) || strings.Count(js.output(), `"datagrams_dropped": {`) != 1 {
		t.Errorf("status -json: want the UDP route's drops (none), evictions (none) and receive buffer (4 MiB), and not the TCP route's (%v):\n%s", err, js.output())
	}
	coLog := filepath.Join(logDir, "CO"+time.Now().Format("060102")+".LOG")
	if !eventually(5*time.Second, func() bool {
		data, _ := os.ReadFile(coLog)
		return strings.Contains(string(data), fmt.Sprintf(" to 127.0.0.1:%d/udp", srv.port())) && strings.Contains(string(data), " Session from 127.0.0.1:")
	}) {
		data, _ := os.ReadFile(coLog)
		t.Errorf("connection log:\n%s", data)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the service exited with %d; want 0\n%s", code, p.output())
	}
	data, _ := os.ReadFile(coLog)
	if !strings.Contains(string(data), "sent 1 datagram 4 bytes received 1 datagram 6 bytes") || !strings.Contains(string(data), "(relay stopped)") {
		t.Errorf("the session's end is not logged with its counts:\n%s", data)
	}
}

// installTestService: a config file needs no installed service (Windows'
// Parameters key does: service_windows_test.go).
func installTestService(t *testing.T) {}
