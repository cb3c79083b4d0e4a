//go:build !windows

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCmd runs relaytcp with args in dir, checks its exit code and returns
// its output.
func runCmd(t *testing.T, dir string, wantCode int, args ...string) string {
	t.Helper()
	p := startProc(t, dir, args...)
	if code := p.wait(t, 30*time.Second); code != wantCode {
		t.Fatalf("relaytcp %s: exit %d; want %d\n%s", strings.Join(args, " "), code, wantCode, p.output())
	}
	return p.output()
}

// TestConfigOptionAnywhere: -config may stand anywhere in a command's
// arguments, in each spelling; it had to come right after the command
// (route add -config F ... said invalid local port "-config").
func TestConfigOptionAnywhere(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	runCmd(t, dir, 0, "route", "add", "-config", conf, "8082", "127.0.0.1", "80")
	runCmd(t, dir, 0, "route", "add", "8083", "127.0.0.1", "80", "-config", conf)
	runCmd(t, dir, 0, "route", "add", "8084", "127.0.0.1", "80", "idle=1h", "--config", conf)
	runCmd(t, dir, 0, "route", "add", "8085", "127.0.0.1", "80", "-config="+conf)
	runCmd(t, dir, 0, "route", "--config="+conf, "add", "8086", "127.0.0.1", "80")
	out := runCmd(t, dir, 0, "route", "list", "-config", conf)
	for _, port := range []string{"8082", "8083", "8084", "8085", "8086"} {
		if !strings.Contains(out, "From local port "+port+" ") {
			t.Errorf("route list lacks port %s:\n%s", port, out)
		}
	}
	if out := runCmd(t, dir, 0, "status", "-json", "-config", conf); !strings.Contains(out, `"config": "8086 127.0.0.1 80"`) {
		t.Errorf("status -json -config F:\n%s", out)
	}
	runCmd(t, dir, 0, "route", "delete", ":8086", "-config", conf)
	// Nothing went to the default file.
	if data, _ := os.ReadFile(conf); strings.Count(string(data), "\nroute ") != 4 {
		t.Errorf("config file:\n%s", data)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"route", "list", "-config"}, "relaytcp route: -config needs a file name"},
		{[]string{"route", "list", "-config="}, "relaytcp route: -config needs a file name"},
		{[]string{"status", "-config", "-json"}, `relaytcp status: -config needs a file name, not "-json"`},
		{[]string{"route", "-config", conf, "list", "--config", conf}, "relaytcp route: -config given twice"},
	} {
		if out := runCmd(t, dir, exitUsage, tt.args...); !strings.Contains(out, tt.want) {
			t.Errorf("%q: want %q\n%s", tt.args, tt.want, out)
		}
	}
}

// TestConfigOptionForms: configOption takes the option out of any place
// of the arguments, leaving the others in order.
func TestConfigOptionForms(t *testing.T) {
	t.Setenv("RELAYTCP_CONFIG", "")
	for _, tt := range []struct {
		args    []string
		path    string
		rest    []string
		wantErr bool
	}{
		{nil, DefaultConfigPath, nil, false},
		{[]string{"list"}, DefaultConfigPath, []string{"list"}, false},
		{[]string{"-config", "F", "list"}, "F", []string{"list"}, false},
		{[]string{"add", "-config", "F", "8082", "h", "80"}, "F", []string{"add", "8082", "h", "80"}, false},
		{[]string{"add", "8082", "h", "80", "-config=F"}, "F", []string{"add", "8082", "h", "80"}, false},
		{[]string{"-json", "--config", "F"}, "F", []string{"-json"}, false},
		{[]string{"-json", "--config=F"}, "F", []string{"-json"}, false},
		{[]string{"-config"}, "", nil, true},
		{[]string{"-config", "F", "-config", "G"}, "", nil, true},
	} {
		path, rest, err := configOption(tt.args)
		if (err != nil) != tt.wantErr || err == nil && (path != tt.path || !slices.Equal(rest, tt.rest)) {
			t.Errorf("configOption(%q) = %q, %q, %v; want %q, %q (error %v)", tt.args, path, rest, err, tt.path, tt.rest, tt.wantErr)
		}
	}
}

// startForegroundService starts "relaytcp service -config CONF" with one
// route to an echo server and waits until it has started; it returns the
// process, the config file and the route's address.
func startForegroundService(t *testing.T, dir string) (p *relayProc, conf, addr string) {
	t.Helper()
	echo := echoServer(t)
	conf = filepath.Join(dir, "relaytcp.conf")
	addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	text := "logdir " + filepath.Join(dir, "logs") + "\nroute " + addr + " " + strings.Replace(echo.Addr().String(), ":", " ", 1) + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p = startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "RelayTCPsvc[100] Information: The Relay TCP Service was successfully started")
	return p, conf, addr
}

// TestStopForegroundService: relaytcp stop stops a service started by hand
// (no systemd) through its control channel, and the service exits 0 as on
// SIGTERM; stop used to answer with systemctl's "System has not been booted
// with systemd". status says Running while it runs, and names the control
// channel and the config file it looked at when nothing answers.
func TestStopForegroundService(t *testing.T) {
	dir := tempDir(t)
	p, conf, addr := startForegroundService(t, dir)
	sock := conf + ".sock"
	if out := runCmd(t, dir, 0, "status", "-config", conf); !strings.Contains(out, "Status  : Running") {
		t.Errorf("status of a foreground service:\n%s", out)
	}
	roundTrip(t, addr, "before stop")
	out := runCmd(t, dir, 0, "stop", "-config", conf)
	if !strings.Contains(out, "Service : RelayTCPsvc\nStatus  : Stopped") || strings.Contains(out, "systemd") {
		t.Errorf("stop:\n%s", out)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("the service exited %d; want 0\n%s", code, p.output())
	}
	p.waitStderr(t, "RelayTCPsvc[100] Information: The Relay TCP Service was asked to stop through its control channel")
	p.waitStderr(t, "RelayTCPsvc[100] Information: The Relay TCP Service was successfully stopped")

	if out := runCmd(t, dir, exitRuntime, "stop", "-config", conf); !strings.Contains(out, "relaytcp stop: the service is not running (nothing answers on "+sock+")") {
		t.Errorf("stop with no service:\n%s", out)
	}
	if out := runCmd(t, dir, 0, "status", "-config", conf); !strings.Contains(out, "Live    : none, no service answers on "+sock+" (config "+conf+")") {
		t.Errorf("status with no service:\n%s", out)
	}
}

// TestStartWithoutSystemd: where systemd does not run, start says how to
// run the service instead of systemctl's complaint, exit 1; where a
// service answers already, start says it runs.
func TestStartWithoutSystemd(t *testing.T) {
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		t.Skip("systemd runs here: start uses systemctl")
	}
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	out := runCmd(t, dir, exitRuntime, "start", "-config", conf)
	for _, want := range []string{
		"relaytcp start: systemd is not running here, so there is no relaytcp unit to start; run the service yourself:",
		"relaytcp service -config " + conf + "\n",
		"nohup relaytcp service -config " + conf + " >>",
		"relaytcp stop -config " + conf + " stops it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("start without systemd lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "System has not been booted") || strings.Contains(out, "systemctl") {
		t.Errorf("start without systemd passes on systemctl's complaint:\n%s", out)
	}
	p, conf, _ := startForegroundService(t, dir)
	if out := runCmd(t, dir, 0, "start", "-config", conf); !strings.Contains(out, "Status  : Running") {
		t.Errorf("start with a service running:\n%s", out)
	}
	runCmd(t, dir, 0, "stop", "-config", conf)
	p.wait(t, 20*time.Second)
}

// TestAdminMenuStopsForegroundService: the admin menu shows a foreground
// service Running, and its 2-Stop Service stops it.
func TestAdminMenuStopsForegroundService(t *testing.T) {
	dir := tempDir(t)
	p, conf, _ := startForegroundService(t, dir)
	admin := startProcWith(t, dir, func(cmd *exec.Cmd) { cmd.Stdin = strings.NewReader("2\n4\n") }, "admin", "-config", conf)
	if code := admin.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("admin: exit %d\n%s", code, admin.output())
	}
	out := admin.output()
	if !strings.Contains(out, "Status  : Running") || !strings.Contains(out, "Stopping the service: done") {
		t.Errorf("admin menu:\n%s", out)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the service exited %d; want 0\n%s", code, p.output())
	}
	// The screen after the stop says nothing answers.
	if last := out[strings.LastIndex(out, "Status\n"):]; !strings.Contains(last, "Live    : none, no service answers on") {
		t.Errorf("the screen after the stop:\n%s", last)
	}
}

// TestControlStop: {"cmd":"stop"} on the control channel is answered
// before the service closes the connection and stops (it used to lose the
// race with the stop about one time in three under -race).
func TestControlStop(t *testing.T) {
	dir := tempDir(t)
	p, conf, _ := startForegroundService(t, dir)
	c, err := net.Dial("unix", conf+".sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, `{"cmd":"stop"}`+"\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if want := `{"ok":true,"message":"Stopping: open connections may finish for 5s"}` + "\n"; err != nil || line != want {
		t.Errorf("stop: %q, %v; want %q", line, err, want)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the service exited %d; want 0\n%s", code, p.output())
	}
	p.waitStderr(t, "The Relay TCP Service was successfully stopped")
}

// TestRouteAddReportsState: with a service running, route add waits until
// the service has applied the change and says whether the route listens;
// a port the service cannot bind is exit code 3, the route staying written
// (as netsh's add does). route add used to exit 0 at once, the failure
// showing only in status. route delete waits likewise, so the port is
// closed when it returns. backend disable takes the new route as :PORT.
func TestRouteAddReportsState(t *testing.T) {
	dir := tempDir(t)
	p, conf, first := startForegroundService(t, dir)
	defer func() {
		runCmd(t, dir, 0, "stop", "-config", conf)
		p.wait(t, 20*time.Second)
	}()
	echo := echoServer(t)
	echoPort := strconv.Itoa(portOf(echo.Addr()))
	taken := newLocalListener(t)
	takenPort := strconv.Itoa(portOf(taken.Addr()))

	out := runCmd(t, dir, exitBind, "route", "add", "-config", conf, "127.0.0.1:"+takenPort, "127.0.0.1", echoPort)
	want := "stdout:\nRoute 1 : From local address 127.0.0.1 port " + takenPort + " to IP 127.0.0.1 port " + echoPort +
		"\nadded; not listening: address already in use\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("route add on a taken port:\n%s\nwant it to start with\n%s", out, want)
	}
	if data, _ := os.ReadFile(conf); !strings.Contains(string(data), "route 127.0.0.1:"+takenPort+" ") {
		t.Errorf("the route on the taken port was not kept in the file:\n%s", data)
	}

	free := strconv.Itoa(freePort(t))
	out = runCmd(t, dir, 0, "route", "add", "127.0.0.1:"+free, "127.0.0.1", echoPort, "-config", conf)
	if !strings.Contains(out, "Route 2 : From local address 127.0.0.1 port "+free+" ") || !strings.Contains(out, "\nadded; listening\n") {
		t.Errorf("route add on a free port:\n%s", out)
	}
	roundTrip(t, "127.0.0.1:"+free, "right after route add") // no wait: add waited

	// The first route is on 127.0.0.1 only: a port alone names it.
	firstPort := first[strings.LastIndex(first, ":")+1:]
	if out := runCmd(t, dir, 0, "backend", "disable", ":"+firstPort, "127.0.0.1:"+firstBackendPort(t, conf), "-config", conf); !strings.Contains(out, "is disabled") {
		t.Errorf("backend disable :%s:\n%s", firstPort, out)
	}

	out = runCmd(t, dir, 0, "route", "delete", ":"+free, "-config", conf)
	if !strings.Contains(out, "Deleted Route 2 : From local address 127.0.0.1 port "+free+" ") {
		t.Errorf("route delete:\n%s", out)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+free, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("127.0.0.1:%s still accepts right after route delete", free)
	}
}

// firstBackendPort returns the remote port of the first route in conf.
func firstBackendPort(t *testing.T, conf string) string {
	t.Helper()
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "route" {
			return f[3]
		}
	}
	t.Fatalf("no route in %s", conf)
	return ""
}
