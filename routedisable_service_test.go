//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statusRoutes runs status -json and returns its routes.
func statusRoutes(t *testing.T, dir, conf string) []RouteReport {
	t.Helper()
	out := startProc(t, dir, "status", "-json", "-config", conf)
	if code := out.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("status -json: exit %d\n%s", code, out.output())
	}
	var st ServiceStatus
	if err := json.Unmarshal([]byte(strings.Join(out.stdoutLines(), "\n")), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out.output())
	}
	return st.Routes
}

// portFree reports whether a new TCP listener can bind addr now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestRouteDisableEnable: route disable switches a running route off: its
// port is free when the command returns, its open connection still relays,
// then is cut after the drain time; the other route and its connection are
// not touched; the file keeps the route with disabled=1; route list,
// status and status -json say disabled. A UDP route frees its port too.
// route enable starts it again.
func TestRouteDisableEnable(t *testing.T) {
	dir := tempDir(t)
	echo := echoServer(t)
	ep := portOf(echo.Addr())
	a, b, u := freePort(t), freePort(t), freePort(t)
	addrA, addrB := "127.0.0.1:"+strconv.Itoa(a), "127.0.0.1:"+strconv.Itoa(b)
	conf := filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf("logdir %s\nroute %s 127.0.0.1 %d\nroute %s 127.0.0.1 %d\nroute 127.0.0.1:%d 127.0.0.1 %d proto=udp\n",
		filepath.Join(dir, "logs"), addrA, ep, addrB, ep, u, ep)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	defer func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t, 20*time.Second)
	}()
	heldA, heldB := dialTCP(t, addrA), dialTCP(t, addrB)
	defer heldA.Close()
	defer heldB.Close()
	if !echoes(heldA) || !echoes(heldB) {
		t.Fatal("no echo before the disable")
	}

	disabledAt := time.Now()
	out := runCmd(t, dir, 0, "route", "disable", ":"+strconv.Itoa(a), "-config", conf)
	lineA := fmt.Sprintf("Route 0 : From local address 127.0.0.1 port %d to IP 127.0.0.1 port %d", a, ep)
	if want := lineA + " (disabled)\ndisabled; 1 open connection may finish within 5s\n"; !strings.Contains(out, want) {
		t.Errorf("route disable:\n%s\nwant\n%s", out, want)
	}
	if !portFree(addrA) {
		t.Error("the port of the disabled route is not free when route disable returns")
	}
	if !echoes(heldA) {
		t.Error("the open connection of the disabled route stopped relaying at once")
	}
	if !echoes(heldB) || !relays(addrB) {
		t.Error("the other route or its open connection was touched")
	}
	if data, _ := os.ReadFile(conf); !strings.Contains(string(data), fmt.Sprintf("\nroute %s 127.0.0.1 %d disabled=1\nroute %s", addrA, ep, addrB)) {
		t.Errorf("the config file does not keep the route in its place with disabled=1:\n%s", data)
	}
	if out := runCmd(t, dir, 0, "route", "list", "-config", conf); !strings.Contains(out, lineA+" (disabled)\n") {
		t.Errorf("route list:\n%s", out)
	}
	if out := runCmd(t, dir, 0, "status", "-config", conf); !strings.Contains(out, lineA+" : disabled, 1 open, 1 total, ") {
		t.Errorf("status does not say disabled, with the open connection:\n%s", out)
	}
	routes := statusRoutes(t, dir, conf)
	if r := routes[0]; r.State != "disabled" || !r.Disabled || r.Listening || r.Error != "" || r.Open != 1 {
		t.Errorf("status -json, route 0: %+v", r)
	}
	if r := routes[1]; r.State != "listening" || r.Disabled || !r.Listening {
		t.Errorf("status -json, route 1: %+v", r)
	}
	p.waitStderr(t, fmt.Sprintf("; disabled %s 127.0.0.1 %d", addrA, ep))

	// The drain time cuts what is still open.
	heldA.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := heldA.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the disabled route's connection was not cut after the drain time")
	} else if err == nil {
		t.Error("the disabled route's connection got data instead of its end")
	}
	if took := time.Since(disabledAt); took < disabledDrain-500*time.Millisecond || took > disabledDrain+7*time.Second {
		t.Errorf("the disabled route's connection ended %v after the disable; want about %v", took, disabledDrain)
	}
	if out := runCmd(t, dir, 0, "route", "disable", "0", "-config", conf); !strings.Contains(out, lineA+" (disabled)\nalready disabled\n") {
		t.Errorf("route disable of a disabled route:\n%s", out)
	}

	runCmd(t, dir, 0, "route", "disable", ":"+strconv.Itoa(u)+"/udp", "-config", conf)
	if c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(u)); err != nil {
		t.Errorf("the port of the disabled UDP route is not free: %v", err)
	} else {
		c.Close()
	}

	out = runCmd(t, dir, 0, "route", "enable", ":"+strconv.Itoa(a), "-config", conf)
	if want := lineA + "\nenabled; listening\n"; !strings.Contains(out, want) {
		t.Errorf("route enable:\n%s\nwant\n%s", out, want)
	}
	roundTrip(t, addrA, "enabled again") // no wait: enable waited
	if routes := statusRoutes(t, dir, conf); routes[0].State != "listening" || routes[0].Disabled || routes[0].Total != 2 {
		t.Errorf("status -json after the enable, route 0 (its counters go on): %+v", routes[0])
	}
	if !echoes(heldB) {
		t.Error("the other route's connection did not survive the disable and the enable")
	}
}

// freePorts returns the first of n consecutive ports free on 127.0.0.1,
// below the ephemeral range.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 20 {
		first := 20000 + rand.IntN(12000-n)
		free := true
		for port := first; port < first+n && free; port++ {
			free = portFree("127.0.0.1:" + strconv.Itoa(port))
		}
		if free {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

// TestRouteDisableRange: a service whose only route is disabled starts and
// listens on nothing; a port of a range names the whole range, which
// enable starts and disable stops whole.
func TestRouteDisableRange(t *testing.T) {
	dir := tempDir(t)
	echo := echoServer(t)
	first := freePorts(t, 4)
	conf := filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf("logdir %s\nroute 127.0.0.1:%d-%d 127.0.0.1 %d disabled=1\n", filepath.Join(dir, "logs"), first, first+3, portOf(echo.Addr()))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	defer func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t, 20*time.Second)
	}()
	ports := func(check func(addr string) bool) bool {
		for port := first; port <= first+3; port++ {
			if !check("127.0.0.1:" + strconv.Itoa(port)) {
				return false
			}
		}
		return true
	}
	if !ports(portFree) {
		t.Error("a disabled range listens at start")
	}
	if r := statusRoutes(t, dir, conf)[0]; r.State != "disabled" {
		t.Errorf("status -json: %+v", r)
	}
	if out := runCmd(t, dir, 0, "route", "enable", ":"+strconv.Itoa(first+2), "-config", conf); !strings.Contains(out, "\nenabled; listening\n") {
		t.Errorf("route enable of a port of the range:\n%s", out)
	}
	if !ports(relays) {
		t.Error("the enabled range does not relay on all its ports")
	}
	if out := runCmd(t, dir, 0, "route", "disable", ":"+strconv.Itoa(first+1), "-config", conf); !strings.Contains(out, fmt.Sprintf("ports %d-%d to IP", first, first+3)) {
		t.Errorf("route disable of a port of the range:\n%s", out)
	}
	if !ports(portFree) {
		t.Error("the disabled range still holds some of its ports")
	}
}

// TestRouteDisableWithoutService: without a running service, disable and
// enable change the file and say so; bad requests get exit codes 2 and 7.
func TestRouteDisableWithoutService(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	if out := runCmd(t, dir, exitNoConfig, "route", "disable", "0", "-config", conf); !strings.Contains(out, "does not exist") {
		t.Errorf("disable on a missing file:\n%s", out)
	}
	runCmd(t, dir, 0, "route", "add", "8082", "127.0.0.1", "80", "maxconn=5", "-config", conf)
	if out := runCmd(t, dir, 0, "route", "disable", ":8082", "-config", conf); !strings.HasPrefix(out, "stdout:\nRoute 0 : From local port 8082 to IP 127.0.0.1 port 80 (maxconn=5, disabled)\ndisabled\nstderr:\n") {
		t.Errorf("disable:\n%q", out)
	}
	if data, _ := os.ReadFile(conf); !strings.HasSuffix(string(data), "\nroute 8082 127.0.0.1 80 maxconn=5 disabled=1\n") {
		t.Errorf("config file:\n%s", data)
	}
	if out := runCmd(t, dir, 0, "route", "enable", "0", "-config", conf); !strings.HasPrefix(out, "stdout:\nRoute 0 : From local port 8082 to IP 127.0.0.1 port 80 (maxconn=5)\nenabled\nstderr:\n") {
		t.Errorf("enable:\n%q", out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"route", "disable"}, "relaytcp route: disable takes one route: its number, or its local side (:PORT or ADDR:PORT)"},
		{[]string{"route", "enable", "0", "1"}, "relaytcp route: enable takes one route"},
		{[]string{"route", "disable", ":8083"}, "relaytcp route: no route listens on :8083"},
		{[]string{"route", "enable", "3"}, "relaytcp route: no route 3 (the only route is 0)"},
	} {
		if out := runCmd(t, dir, exitUsage, append(tt.args, "-config", conf)...); !strings.Contains(out, tt.want) {
			t.Errorf("%q: want %q\n%s", tt.args, tt.want, out)
		}
	}
}

// TestAdminMenuDisableEnable: the Change Configuration screen's 4-Disable
// Route and 5-Enable Route, by the number on the screen; RelayTCP 1.0's
// choices keep their numbers.
func TestAdminMenuDisableEnable(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	runCmd(t, dir, 0, "route", "add", "8082", "127.0.0.1", "80", "-config", conf)
	input := strings.Join([]string{
		"3",      // Change Config
		"4", "0", // Disable Route 0
		"4", "0", // again
		"5", "7", "0", // Enable: no route 7, then route 0
		"3", // back
		"4", // exit
	}, "\n") + "\n"
	p := startProcWith(t, dir, func(cmd *exec.Cmd) { cmd.Stdin = strings.NewReader(input) }, "admin", "-config", conf)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.output())
	}
	out := p.output()
	for _, want := range []string{
		"1-Add Route      2-Delete Route      3-Exit\n4-Disable Route  5-Enable Route\n",
		"Disabled Route 0 : From local port 8082 to IP 127.0.0.1 port 80 (disabled)\n",
		"Route 0 : From local port 8082 to IP 127.0.0.1 port 80 (disabled)\n\n1-Add Route",
		"Nothing changed: route 0 is already disabled\n",
		"no route 7 (the only route is 0)",
		"Enabled Route 0 : From local port 8082 to IP 127.0.0.1 port 80\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("menu output lacks %q", want)
		}
	}
	if data, _ := os.ReadFile(conf); strings.Contains(string(data), "disabled") {
		t.Errorf("config file after disable and enable:\n%s", data)
	}
	if t.Failed() {
		t.Logf("menu output:\n%s", out)
	}
}
