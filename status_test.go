//go:build !windows

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statusFixture is a running service with known routes for the status
// tests.
type statusFixture struct {
	p                                        *relayProc
	dir, conf                                string
	plain, taken, denied, capped, dead, both int // local ports
	echoPort, deadPort, metricsPort          int
	live1, live2                             *testBackend
}

// startStatusFixture starts the service with: route 0 plain to an echo
// server; route 1 on a taken port; route 2 denying 127.0.0.1; route 3 with
// maxconn=1; route 4 to a dead port; route 5 with two backends.
func startStatusFixture(t *testing.T) *statusFixture {
	f := &statusFixture{dir: tempDir(t)}
	echoLn := echoServer(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	f.echoPort, f.taken, f.deadPort = portOf(echoLn.Addr()), portOf(taken.Addr()), freePort(t)
	f.plain, f.denied, f.capped, f.dead, f.both, f.metricsPort = freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	f.live1, f.live2 = newTestBackend(t, "L1"), newTestBackend(t, "L2")
	f.conf = filepath.Join(f.dir, "relaytcp.conf")
	text := fmt.Sprintf(`logdir %s
metrics 127.0.0.1:%d
route 127.0.0.1:%d 127.0.0.1 %d
route 127.0.0.1:%d 127.0.0.1 %d
route 127.0.0.1:%d 127.0.0.1 %d deny=127.0.0.1
route 127.0.0.1:%d 127.0.0.1 %d maxconn=1
route 127.0.0.1:%d 127.0.0.1 %d
route 127.0.0.1:%d 127.0.0.1 %d also=%s balance=first
`, filepath.Join(f.dir, "logs"), f.metricsPort, f.plain, f.echoPort, f.taken, f.echoPort, f.denied, f.echoPort,
		f.capped, f.echoPort, f.dead, f.deadPort, f.both, f.live1.port, f.live2.addr())
	if err := os.WriteFile(f.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f.p = startProc(t, f.dir, "service", "-config", f.conf)
	f.p.waitStderr(t, "successfully started")
	// The control channel is open before the service says it started.
	if _, err := os.Stat(f.conf + ".sock"); err != nil {
		t.Fatalf("the service said it started before its control channel was open: %v", err)
	}
	t.Cleanup(func() {
		f.p.cmd.Process.Signal(syscall.SIGTERM)
		f.p.wait(t, 20*time.Second)
	})
	return f
}

// run runs a relaytcp command against the fixture's service and returns its
// exit code and output.
func (f *statusFixture) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	p := startProc(t, f.dir, append([]string{args[0], "-config", f.conf}, args[1:]...)...)
	code := p.wait(t, 20*time.Second)
	return code, p.output()
}

// status returns `relaytcp status -json`.
func (f *statusFixture) status(t *testing.T) *ServiceStatus {
	t.Helper()
	p := startProc(t, f.dir, "status", "-config", f.conf, "-json")
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("status -json: exit %d\n%s", code, p.output())
	}
	var st ServiceStatus
	if err := json.Unmarshal([]byte(strings.Join(p.stdoutLines(), "\n")), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, p.output())
	}
	return &st
}

// exchange relays n bytes each way through addr on one connection and
// closes it.
func exchange(t *testing.T, addr string, n int) {
	t.Helper()
	c := dialTCP(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		c.Write(randomBytes(uint64(n), n))
		c.CloseWrite()
	}()
	got, err := io.Copy(io.Discard, c)
	if err != nil || got != int64(n) {
		t.Fatalf("exchange through %s: %d bytes back, %v; want %d", addr, got, err, n)
	}
}

// TestStatusNumbers: after a known load, `relaytcp status` and `status
// -json` say exactly what happened on each route, and why a route does not
// listen.
func TestStatusNumbers(t *testing.T) {
	f := startStatusFixture(t)
	const conns, size = 20, 10000
	for range conns {
		exchange(t, "127.0.0.1:"+strconv.Itoa(f.plain), size)
	}
	for range 2 {
		relays("127.0.0.1:" + strconv.Itoa(f.denied))
	}
	held := dialTCP(t, "127.0.0.1:"+strconv.Itoa(f.capped))
	defer held.Close()
	if !echoes(held) {
		t.Fatal("the capped route does not relay its first connection")
	}
	relays("127.0.0.1:" + strconv.Itoa(f.capped))
	relays("127.0.0.1:" + strconv.Itoa(f.dead))
	// Two open connections on route 0, with bytes relayed so far.
	var open []*net.TCPConn
	for range 2 {
		c := dialTCP(t, "127.0.0.1:"+strconv.Itoa(f.plain))
		defer c.Close()
		c.Write(make([]byte, 1000))
		io.ReadFull(c, make([]byte, 1000))
		open = append(open, c)
	}

	var st *ServiceStatus
	want := fmt.Sprintf("Route 0 : From local address 127.0.0.1 port %d to IP 127.0.0.1 port %d : listening, 2 open, 22 total, 0 refused, 0 failed, sent 202.0 kB, received 202.0 kB", f.plain, f.echoPort)
	var out string
	if !eventually(5*time.Second, func() bool {
		_, out = f.run(t, "status")
		return strings.Contains(out, want)
	}) {
		t.Fatalf("status lacks %q:\n%s", want, out)
	}
	for _, w := range []string{
		"Status  : Running",
		fmt.Sprintf("Route 1 : From local address 127.0.0.1 port %d to IP 127.0.0.1 port %d : not listening: address already in use", f.taken, f.echoPort),
		fmt.Sprintf("Route 2 : From local address 127.0.0.1 port %d to IP 127.0.0.1 port %d (deny=127.0.0.1/32) : listening, 0 open, 0 total, 2 refused, 0 failed, sent 0 B, received 0 B", f.denied, f.echoPort),
		fmt.Sprintf("Route 3 : From local address 127.0.0.1 port %d to IP 127.0.0.1 port %d (maxconn=1) : listening, 1 open, 1 total, 1 refused, 0 failed", f.capped, f.echoPort),
		fmt.Sprintf("Route 4 : From local address 127.0.0.1 port %d to IP 127.0.0.1 port %d : listening, 0 open, 0 total, 0 refused, 1 failed", f.dead, f.deadPort),
		fmt.Sprintf("  Backend %s : up since ", f.live1.addr()),
		"Uptime  : ",
		", 0 reloads",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("status:\n%s", out)
	}

	st = f.status(t)
	if st.Service != "RelayTCPsvc" || st.State != "Running" || st.Started.IsZero() || st.UptimeSeconds <= 0 || st.Reloads != 0 || len(st.Routes) != 6 {
		t.Fatalf("status -json: %+v", st)
	}
	r0 := st.Routes[0]
	if r0.Route != 0 || r0.Listen != "127.0.0.1:"+strconv.Itoa(f.plain) || !r0.Listening || r0.Open != 2 || r0.Total != conns+2 ||
		r0.BytesSent != conns*size+2000 || r0.BytesReceived != conns*size+2000 || r0.Failed != 0 || r0.Refused != 0 {
		t.Errorf("route 0: %+v", r0)
	}
	if r1 := st.Routes[1]; r1.Listening || r1.Error != "address already in use" {
		t.Errorf("route 1: %+v", r1)
	}
	if r2 := st.Routes[2]; r2.Refused != 2 || r2.RefusedACL != 2 || r2.RefusedMaxConn != 0 {
		t.Errorf("route 2: %+v", r2)
	}
	if r3 := st.Routes[3]; r3.Refused != 1 || r3.RefusedMaxConn != 1 || r3.Open != 1 {
		t.Errorf("route 3: %+v", r3)
	}
	if r4 := st.Routes[4]; r4.Failed != 1 || r4.Total != 0 || len(r4.Backends) != 1 || r4.Backends[0].Failed != 1 {
		t.Errorf("route 4: %+v", r4)
	}
	r5 := st.Routes[5]
	if len(r5.Backends) != 2 || r5.Backends[0].Backend != f.live1.addr() || r5.Backends[0].State != "up" || r5.Backends[0].Role != "primary" ||
		r5.Backends[1].Backend != f.live2.addr() {
		t.Errorf("route 5: %+v", r5)
	}
	// The JSON's field names are an interface (README).
	p := startProc(t, f.dir, "status", "-config", f.conf, "-json")
	p.wait(t, 20*time.Second)
	raw := strings.Join(p.stdoutLines(), "\n")
	for _, field := range []string{`"service"`, `"state"`, `"version"`, `"commit"`, `"started"`, `"uptime_seconds"`, `"reloads"`, `"routes"`,
		`"route"`, `"listen"`, `"config"`, `"listening"`, `"error"`, `"open"`, `"total"`, `"refused"`, `"refused_acl"`, `"refused_maxconn"`,
		`"failed"`, `"bytes_sent"`, `"bytes_received"`, `"backends"`, `"backend"`, `"role"`, `"disabled"`, `"since"`} {
		if !strings.Contains(raw, field) {
			t.Errorf("status -json has no %s field", field)
		}
	}
	if !regexp.MustCompile(`"started": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`).MatchString(raw) {
		t.Errorf("started is not an RFC 3339 time:\n%s", raw)
	}
}

// TestMetrics: /metrics passes promtool's check, and its counters match
// the load.
func TestMetrics(t *testing.T) {
	f := startStatusFixture(t)
	for range 5 {
		exchange(t, "127.0.0.1:"+strconv.Itoa(f.plain), 1000)
	}
	relays("127.0.0.1:" + strconv.Itoa(f.denied))
	// The refused client may see its reset before the relay has counted
	// it: read the metrics until the refusal is in (or the time is up,
	// and the check below says what is missing).
	var resp *http.Response
	var body []byte
	deniedLine := fmt.Sprintf(`relaytcp_route_refused_total{route="2",listen="127.0.0.1:%d",reason="acl"} 1`, f.denied)
	eventually(5*time.Second, func() bool {
		var err error
		resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.metricsPort))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), deniedLine)
	})
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	text := string(body)
	listen := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	for _, w := range []string{
		fmt.Sprintf(`relaytcp_route_connections_total{route="0",listen="%s"} 5`, listen(f.plain)),
		fmt.Sprintf(`relaytcp_route_active_connections{route="0",listen="%s"} 0`, listen(f.plain)),
		fmt.Sprintf(`relaytcp_route_bytes_total{route="0",listen="%s",direction="sent"} 5000`, listen(f.plain)),
		fmt.Sprintf(`relaytcp_route_bytes_total{route="0",listen="%s",direction="received"} 5000`, listen(f.plain)),
		fmt.Sprintf(`relaytcp_route_refused_total{route="2",listen="%s",reason="acl"} 1`, listen(f.denied)),
		fmt.Sprintf(`relaytcp_route_refused_total{route="2",listen="%s",reason="maxconn"} 0`, listen(f.denied)),
		fmt.Sprintf(`relaytcp_route_listening{route="1",listen="%s"} 0`, listen(f.taken)),
		fmt.Sprintf(`relaytcp_backend_up{route="5",listen="%s",backend="%s"} 1`, listen(f.both), f.live2.addr()),
		fmt.Sprintf(`relaytcp_backend_connections_total{route="0",listen="%s",backend="127.0.0.1:%d"} 5`, listen(f.plain), f.echoPort),
		"relaytcp_config_reloads_total 0",
		"# TYPE relaytcp_route_connect_errors_total counter",
		`relaytcp_build_info{version="`,
	} {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	client := dialTCP(t, listen(f.plain))
	if !echoes(client) {
		t.Fatal("no echo")
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.Close()
	if strings.Contains(string(open), client.LocalAddr().String()) {
		t.Error("a client's address is in the metrics")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("promtool (Debian's prometheus package) is not installed: the format was not checked by it (scripts/test.sh installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\nmetrics:\n%s", err, out, text)
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

// TestBackendDisableDrains: a disabled backend's open connection finishes
// while new ones go to the other backend; status shows it; enabled again,
// it takes connections again. Bad requests are refused with exit code 2.
func TestBackendDisableDrains(t *testing.T) {
	f := startStatusFixture(t)
	addr := "127.0.0.1:" + strconv.Itoa(f.both)
	held, err := dialBackend(addr, "")
	if err != nil || held.backend != "L1" {
		t.Fatalf("first connection: %v, %v", held, err)
	}
	defer held.Close()
	code, out := f.run(t, "backend", "disable", "5", f.live1.addr())
	if want := fmt.Sprintf("Backend %s of route 5 is disabled: it gets no new connections; 1 open connection finish", f.live1.addr()); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("backend disable: exit %d\n%s\nwant %q", code, out, want)
	}
	for range 5 {
		if name, err := whichBackend(addr, ""); err != nil || name != "L2" {
			t.Fatalf("with L1 disabled: %s, %v; want L2", name, err)
		}
	}
	held.SetDeadline(time.Now().Add(5 * time.Second))
	held.Write([]byte("still draining\n"))
	if line, err := held.r.ReadString('\n'); err != nil || line != "still draining\n" {
		t.Fatalf("the disabled backend's open connection: %q, %v", line, err)
	}
	_, out = f.run(t, "status")
	if !strings.Contains(out, fmt.Sprintf("  Backend %s : disabled (draining), up since", f.live1.addr())) {
		t.Errorf("status does not show the disabled backend:\n%s", out)
	}
	if st := f.status(t); !st.Routes[5].Backends[0].Disabled || st.Routes[5].Backends[0].Open != 1 {
		t.Errorf("status -json: %+v", st.Routes[5].Backends[0])
	}
	held.Close()
	if code, out := f.run(t, "backend", "enable", "127.0.0.1:"+strconv.Itoa(f.both), f.live1.addr()); code != 0 || !strings.Contains(out, "is enabled") {
		t.Fatalf("backend enable by local side: exit %d\n%s", code, out)
	}
	if name, err := whichBackend(addr, ""); err != nil || name != "L1" {
		t.Fatalf("with L1 enabled again: %s, %v; want L1", name, err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"backend", "disable", "5", "127.0.0.1:1"}, fmt.Sprintf("route 5: no backend 127.0.0.1:1 (its backends: %s, %s)", f.live1.addr(), f.live2.addr())},
		{[]string{"backend", "disable", "9", f.live1.addr()}, "no route 9 (routes are 0 to 5)"},
		{[]string{"backend", "disable", "1", "127.0.0.1:1"}, "route 1 is not running"},
		{[]string{"backend", "pause", "5", f.live1.addr()}, "want disable or enable"},
	} {
		if code, out := f.run(t, tt.args...); code != exitUsage || !strings.Contains(out, tt.want) {
			t.Errorf("%v: exit %d, output %s; want %d and %q", tt.args, code, out, exitUsage, tt.want)
		}
	}
}

// TestStatusWhenNotRunning: without a running service, status prints the
// configuration and says there are no live numbers; -json says the state.
func TestStatusWhenNotRunning(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte("route 155 192.168.1.200 110\n"), 0o644)
	p := startProc(t, dir, "status", "-config", conf)
	if code := p.wait(t, 20*time.Second); code != 0 || !strings.Contains(p.output(), "Live    : none, no service answers on "+conf+".sock (config "+conf+")") ||
		!strings.Contains(p.output(), "Route 0 : From local port 155 to IP 192.168.1.200 port 110") {
		t.Errorf("status: exit %d\n%s", code, p.output())
	}
	p = startProc(t, dir, "status", "-config", conf, "-json")
	p.wait(t, 20*time.Second)
	// A service that does not run has no start time: no
	// "started":"0001-01-01T00:00:00Z", nor a backend's "since".
	if out := strings.Join(p.stdoutLines(), "\n"); strings.Contains(out, `"started"`) || strings.Contains(out, `"since"`) {
		t.Errorf("status -json of a stopped service has a start time:\n%s", out)
	}
	var st ServiceStatus
	if err := json.Unmarshal([]byte(strings.Join(p.stdoutLines(), "\n")), &st); err != nil || !strings.HasPrefix(st.State, "Not installed") ||
		len(st.Routes) != 1 || st.Routes[0].Listening || st.Routes[0].Error != "the service is not running" {
		t.Errorf("status -json: %+v, %v\n%s", st, err, p.output())
	}
	p = startProc(t, dir, "backend", "-config", conf, "disable", "0", "a:1")
	if code := p.wait(t, 20*time.Second); code != exitRuntime || !strings.Contains(p.output(), "relaytcp backend: the service is not running (nothing answers on "+conf+".sock)") {
		t.Errorf("backend with no service: exit %d\n%s", code, p.output())
	}
}

// TestControlChannelAccessDenied: a user other than root and the service's
// own cannot use the control channel: the socket's mode keeps them out
// (exit 1, "access denied"), and were it open to all, the service's check
// of the peer would.
func TestControlChannelAccessDenied(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user (setpriv)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run a client as another user")
	}
	f := startStatusFixture(t)
	// The other user must reach the binary and the config file.
	bin := filepath.Join(f.dir, "relaytcp")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(f.dir, 0o755)
	asNobody := func(args ...string) (int, string) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Env = append(os.Environ(), execEnv+"=1")
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := asNobody("status", "-config", f.conf)
	if code != exitRuntime || !strings.Contains(out, "access denied to the control channel "+f.conf+".sock") {
		t.Errorf("status as nobody: exit %d\n%s", code, out)
	}
	code, out = asNobody("backend", "-config", f.conf, "disable", "5", f.live1.addr())
	if code != exitRuntime || !strings.Contains(out, "access denied") {
		t.Errorf("backend as nobody: exit %d\n%s", code, out)
	}
	// With the socket open to everyone, the service still refuses nobody.
	os.Chmod(f.conf+".sock", 0o666)
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin)
	cmd.Env = append(os.Environ(), controlProbeEnv+"="+f.conf+".sock")
	answer, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(answer), `"ok":false`) || !strings.Contains(string(answer), "access denied") {
		t.Errorf("a peer that is neither root nor the service's user: %v\n%s", err, answer)
	}
	// relaytcp's own client, refused by the service's check, says so in
	// plain words: not "broken pipe" from its request cut off. Several
	// times, as the cut used to depend on who was faster.
	for range 10 {
		code, out := asNobody("status", "-config", f.conf)
		if code != exitRuntime || !strings.Contains(out, "access denied to the control channel "+f.conf+".sock: run it as root or as the service's user") {
			t.Fatalf("status as nobody, the socket open to all: exit %d\n%s", code, out)
		}
	}
	// Root is let in.
	if code, out := f.run(t, "status"); code != 0 || !strings.Contains(out, "Live") {
		t.Errorf("status as root: exit %d\n%s", code, out)
	}
}

// TestControlProtocol: the control channel speaks JSON lines to any
// client, several requests on one connection, and refuses bad ones with a
// clear error.
func TestControlProtocol(t *testing.T) {
	f := startStatusFixture(t)
	c, err := net.Dial("unix", f.conf+".sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	in := bufio.NewReader(c)
	ask := func(req string) map[string]any {
		t.Helper()
		io.WriteString(c, req+"\n")
		line, err := in.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		var ans map[string]any
		if err := json.Unmarshal([]byte(line), &ans); err != nil {
			t.Fatalf("%s: answer %q: %v", req, line, err)
		}
		return ans
	}
	// The service itself says it runs: "state":"" used to be patched by
	// relaytcp status only.
	if ans := ask(`{"cmd":"status"}`); ans["ok"] != true || ans["status"] == nil || ans["status"].(map[string]any)["state"] != "Running" {
		t.Errorf("status: %v", ans)
	}
	if ans := ask(`{"cmd":"reboot"}`); ans["ok"] != false || ans["error"] != `unknown command "reboot" (commands: status, backend, stop)` {
		t.Errorf("unknown command: %v", ans)
	}
	if ans := ask(`not json`); ans["ok"] != false || !strings.HasPrefix(ans["error"].(string), "not a JSON request") {
		t.Errorf("not JSON: %v", ans)
	}
	if ans := ask(`{"cmd":"status"}`); ans["ok"] != true {
		t.Errorf("status after errors: %v", ans)
	}
}

// startedCheckLog is a service log that, when the service reports that it
// started, looks whether its control channel is open yet.
type startedCheckLog struct {
	*stderrLog
	control string
	checked bool
	openErr error
}

func (l *startedCheckLog) Info(id uint32, msg string) error {
	if msg == msgStarted {
		l.checked = true
		_, l.openErr = os.Stat(l.control)
	}
	return l.stderrLog.Info(id, msg)
}

// TestControlOpenBeforeStarted: the service opens its control channel
// before it reports that it started (event 100), so that `relaytcp status`
// right after `systemctl start` finds it.
func TestControlOpenBeforeStarted(t *testing.T) {
	echoLn := echoServer(t)
	dir := tempDir(t)
	cfg := &Config{LogDir: dir, Routes: []RouteSpec{
		{BindAddr: "127.0.0.1", LocalPort: freePort(t), RemoteHost: "127.0.0.1", RemotePort: portOf(echoLn.Addr())},
	}}
	log := &startedCheckLog{stderrLog: &stderrLog{w: io.Discard}, control: filepath.Join(dir, "relaytcp.conf.sock")}
	s, err := startService(cfg, log, log.control)
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(context.Background())
	if !log.checked {
		t.Fatal("the service did not report that it started")
	}
	if log.openErr != nil {
		t.Errorf("the control channel was not open when the service reported that it started: %v", log.openErr)
	}
	if _, err := os.Stat(log.control); err != nil {
		t.Errorf("no control channel: %v", err)
	}
}

// TestStatusBytesAfterShutdown: what a route relayed stays in its status
// once the relay has stopped (its engines gone), in both relays.
func TestStatusBytesAfterShutdown(t *testing.T) {
	forRelays(t, func(t *testing.T, kind relayKind) {
		echo := echoServer(t)
		r := kind.newRelay(nil)
		addr := startRoute(t, r, 0, echo.Addr())
		roundTrip(t, addr, "hello")
		var before RouteStatus
		if !eventually(5*time.Second, func() bool { before = r.Status()[0]; return before.Open == 0 }) {
			t.Fatalf("the connection is still open: %+v", before)
		}
		if before.Sent != 5 || before.Received != 5 {
			t.Fatalf("before shutdown: sent %d received %d; want 5 and 5", before.Sent, before.Received)
		}
		r.Shutdown(context.Background())
		if after := r.Status()[0]; after.Sent != 5 || after.Received != 5 {
			t.Errorf("after shutdown: sent %d received %d; want 5 and 5", after.Sent, after.Received)
		}
	})
}
