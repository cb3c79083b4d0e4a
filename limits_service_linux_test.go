package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServiceClientLimits: the service's global clientmaxconn counts one
// client across routes (127.0.0.2 holding a connection on route 0 is
// refused on route 1, while 127.0.0.3 gets in); status, status -json and
// the connection log say so; a reload that drops the global cap and gives
// route 1 a bandwidth cap applies both.
func TestServiceClientLimits(t *testing.T) {
	needLoopbackAliases(t)
	echo := echoServer(t)
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	a, b := freePort(t), freePort(t)
	write := func(global string, optB string) {
		text := fmt.Sprintf("logdir %s\n%sroute %d 127.0.0.1 %d\nroute %d 127.0.0.1 %d %s\n",
			filepath.Join(dir, "logs"), global, a, portOf(echo.Addr()), b, portOf(echo.Addr()), optB)
		if err := writeFileAtomic(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clientmaxconn 1\n", "clientprefix4=32")
	p := startProc(t, dir, "service", "-config", conf)
	p.waitStderr(t, "successfully started")
	addrA, addrB := "127.0.0.1:"+strconv.Itoa(a), "127.0.0.1:"+strconv.Itoa(b)

	held := dialFrom(t, "127.0.0.2", addrA)
	defer closeConn(held)
	if !isAdmitted(t, held) {
		t.Fatal("127.0.0.2's first connection refused")
	}
	if relaysFrom("127.0.0.2", addrB) {
		t.Fatal("127.0.0.2 got a second connection on another route over the global clientmaxconn 1")
	}
	if !relaysFrom("127.0.0.3", addrB) {
		t.Fatal("127.0.0.3 refused while 127.0.0.2 was at the global cap")
	}

	st := startProc(t, dir, "status", "-config", conf, "-json")
	if code := st.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("status -json: exit %d\n%s", code, st.output())
	}
	var status ServiceStatus
	if err := json.Unmarshal([]byte(strings.Join(st.stdoutLines(), "\n")), &status); err != nil || len(status.Routes) != 2 {
		t.Fatalf("status -json: %v\n%s", err, st.output())
	}
	if r := status.Routes[1]; r.RefusedGlobalClientMaxConn != 1 || r.Refused != 1 || r.Throughput != nil {
		t.Errorf("route 1: refused_global_clientmaxconn %d, refused %d, throughput %v; want 1, 1, none",
			r.RefusedGlobalClientMaxConn, r.Refused, r.Throughput)
	}
	text := startProc(t, dir, "status", "-config", conf)
	text.wait(t, 20*time.Second)
	if !strings.Contains(text.output(), "1 refused, 0 failed, sent 4 B, received 4 B, refused by global clientmaxconn 1") {
		t.Errorf("status does not count the refusal by limit:\n%s", text.output())
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "CO*.LOG"))
	if !eventually(5*time.Second, func() bool {
		return strings.Contains(readAll(logs), "client 127.0.0.2/32 has the global clientmaxconn of 1 open connections")
	}) {
		t.Errorf("the connection log does not name the refusal:\n%s", readAll(logs))
	}

	write("", "rate=1M")
	p.waitStderr(t, "configuration was reloaded")
	if !relaysFrom("127.0.0.2", addrB) {
		t.Error("127.0.0.2 still refused once the reload dropped the global clientmaxconn")
	}
	if !strings.Contains(startProcOutput(t, dir, "status", "-config", conf), "/s sent,") {
		t.Error("status shows no throughput on the route that a reload gave rate=1M")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, 20*time.Second)
}

// readAll returns the files' contents, concatenated.
func readAll(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		data, _ := readFileForTest(p)
		b.Write(data)
	}
	return b.String()
}

// startProcOutput runs relaytcp with args to its end and returns its output.
func startProcOutput(t *testing.T, dir string, args ...string) string {
	t.Helper()
	p := startProc(t, dir, args...)
	p.wait(t, 20*time.Second)
	return p.output()
}
