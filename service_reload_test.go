//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadFixture is "relaytcp service" running one route to an echo server,
// from a config file in a directory of its own.
type reloadFixture struct {
	p               *relayProc
	dir, conf, text string // text: the config file as written at start
	addr            string // the route's local address
}

// startReloadFixture starts the service and checks that its route relays.
func startReloadFixture(t *testing.T) *reloadFixture {
	t.Helper()
	echo := echoServer(t)
	port := freePort(t)
	f := &reloadFixture{dir: tempDir(t), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	f.conf = filepath.Join(f.dir, "relaytcp.conf")
	f.text = fmt.Sprintf("# the relays\nlogdir %s\nroute 127.0.0.1:%d 127.0.0.1 %d\n", filepath.Join(f.dir, "logs"), port, portOf(echo.Addr()))
	if err := os.WriteFile(f.conf, []byte(f.text), 0o644); err != nil {
		t.Fatal(err)
	}
	f.p = startProc(t, f.dir, "service", "-config", f.conf)
	f.p.waitStderr(t, "successfully started")
	roundTrip(t, f.addr, "before")
	t.Cleanup(func() {
		f.p.cmd.Process.Signal(syscall.SIGTERM)
		f.p.wait(t, 20*time.Second)
	})
	return f
}

// count returns how many stderr lines of the service contain s.
func (f *reloadFixture) count(s string) int {
	n := 0
	for _, line := range f.p.stderrLines() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// stillRelays checks that the route relays and that no reload stopped it.
func (f *reloadFixture) stillRelays(t *testing.T, what string) {
	t.Helper()
	roundTrip(t, f.addr, what)
	if n := f.count("0 routes running"); n != 0 {
		t.Fatalf("%s: the service applied a configuration without routes\n%s", what, f.p.output())
	}
}

// restore writes the config file back as it was at start, atomically, and
// waits until the service has applied it.
func (f *reloadFixture) restore(t *testing.T) {
	t.Helper()
	before := f.count("configuration was reloaded: 1 routes running")
	if err := writeFileAtomic(f.conf, []byte(f.text), 0o644); err != nil {
		t.Fatal(err)
	}
	if !eventually(20*time.Second, func() bool { return f.count("configuration was reloaded: 1 routes running") > before }) {
		t.Fatalf("the restored file was not applied\n%s", f.p.output())
	}
	roundTrip(t, f.addr, "restored")
}

// configPollWait is long enough for the service to have looked at its
// file twice (configCheckInterval) after a change it already reported.
const configPollWait = 2*configCheckInterval + 500*time.Millisecond

// TestServiceKeepsRoutesWhenConfigGoes: a config file moved away, replaced
// by a symbolic link to nothing, or made unreadable is an error that keeps
// the running routes, reported once as a warning that names the file; the
// file back is applied. Before, each of these was an empty configuration
// that stopped every route within 2 s.
func TestServiceKeepsRoutesWhenConfigGoes(t *testing.T) {
	tests := []struct {
		name  string
		fault func(t *testing.T, f *reloadFixture)
		want  string // in the warning, after the file's name
	}{
		{"moved away", func(t *testing.T, f *reloadFixture) {
			if err := os.Rename(f.conf, f.conf+".away"); err != nil {
				t.Fatal(err)
			}
		}, " does not exist"},
		{"dangling symlink", func(t *testing.T, f *reloadFixture) {
			os.Remove(f.conf)
			os.Remove(filepath.Join(f.dir, "gone.conf")) // a restore wrote through the link
			if err := os.Symlink(filepath.Join(f.dir, "gone.conf"), f.conf); err != nil {
				t.Fatal(err)
			}
		}, " does not exist (a symbolic link to " + "GONE" + ", which does not exist)"},
		{"a directory in its place", func(t *testing.T, f *reloadFixture) {
			// Unreadable for root too (chmod 000 is not: see the next).
			os.Remove(f.conf)
			if err := os.Mkdir(f.conf, 0o755); err != nil {
				t.Fatal(err)
			}
		}, ": is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startReloadFixture(t)
			tt.fault(t, f)
			want := "RelayTCPsvc[100] Warning: The Relay TCP Service configuration was not reloaded, the running one stays: "
			f.p.waitStderr(t, want)
			time.Sleep(configPollWait)
			f.stillRelays(t, "after the file went")
			detail := strings.ReplaceAll(tt.want, "GONE", filepath.Join(f.dir, "gone.conf"))
			if n := f.count(want); n != 1 || f.count(f.conf) == 0 || f.count(detail) != 1 {
				t.Fatalf("want one warning naming %s and saying %q; got %d\n%s", f.conf, detail, n, f.p.output())
			}
			if fi, err := os.Lstat(f.conf); err == nil && fi.IsDir() {
				os.Remove(f.conf)
			}
			f.restore(t)
			// A second incident is reported again.
			tt.fault(t, f)
			if !eventually(20*time.Second, func() bool { return f.count(want) == 2 }) {
				t.Fatalf("the second incident was not reported\n%s", f.p.output())
			}
			f.stillRelays(t, "after the second incident")
		})
	}
}

// TestServiceKeepsRoutesWhenConfigUnreadable: a file the service may not
// read (chmod 000) keeps the running routes. A SIGHUP makes the service
// read it: a mode change does not change the file's stamp.
func TestServiceKeepsRoutesWhenConfigUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a file of mode 000: TestServiceKeepsRoutesWhenConfigGoes covers unreadable files with a directory in the file's place")
	}
	f := startReloadFixture(t)
	if err := os.Chmod(f.conf, 0); err != nil {
		t.Fatal(err)
	}
	f.p.cmd.Process.Signal(syscall.SIGHUP)
	f.p.waitStderr(t, "the running one stays: read config: open "+f.conf+": permission denied")
	f.stillRelays(t, "after chmod 000")
}

// TestServiceTruncateThenWrite: a file truncated to 0 bytes and written
// again within the settle time (as editors and deploys do) never stops the
// routes, even when the service reads it in between (SIGHUP). Before, the
// empty file was applied at once.
func TestServiceTruncateThenWrite(t *testing.T) {
	f := startReloadFixture(t)
	if err := os.Truncate(f.conf, 0); err != nil {
		t.Fatal(err)
	}
	f.p.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(emptyConfigSettle / 4)
	if err := os.WriteFile(f.conf, []byte(f.text), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(emptyConfigSettle + configPollWait)
	f.stillRelays(t, "after truncate then write")
}

// TestServiceKeepsRoutesWhenFileStaysEmpty: a file truncated to 0 bytes
// and left so is a write that failed, not a configuration: the routes stay,
// past the settle time, and one warning names the file. Before, the empty
// file was applied (every route stopped).
func TestServiceKeepsRoutesWhenFileStaysEmpty(t *testing.T) {
	f := startReloadFixture(t)
	if err := os.Truncate(f.conf, 0); err != nil {
		t.Fatal(err)
	}
	f.p.cmd.Process.Signal(syscall.SIGHUP)
	f.p.waitStderr(t, "the running one stays: config file "+f.conf+" is empty (0 bytes)")
	time.Sleep(emptyConfigSettle + configPollWait)
	f.stillRelays(t, "with the file left empty")
	if n := f.count("is empty (0 bytes)"); n != 1 {
		t.Errorf("%d warnings for the empty file; want 1\n%s", n, f.p.output())
	}
}

// TestServiceAppliesEmptyConfigAfterSettle: a file that truly has no
// routes (it parses, and stays so) is applied, after the settle time.
func TestServiceAppliesEmptyConfigAfterSettle(t *testing.T) {
	f := startReloadFixture(t)
	if err := os.WriteFile(f.conf, []byte("# no relays for now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	f.p.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(emptyConfigSettle / 2)
	f.stillRelays(t, "before the settle time")
	if !eventually(emptyConfigSettle+configPollWait+5*time.Second, func() bool { return f.count("configuration was reloaded: 0 routes running") == 1 }) {
		t.Fatalf("the file without routes was not applied\n%s", f.p.output())
	}
	if waited := time.Since(asked); waited < emptyConfigSettle {
		t.Fatalf("applied after %v; want at least %v", waited, emptyConfigSettle)
	}
	if c, err := net.DialTimeout("tcp", f.addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("the route still listens after a configuration without routes was applied")
	}
}

// TestServiceMissingConfigFile: "relaytcp service" on a file that does not
// exist (or a symbolic link to nothing) names it and exits with
// exitNoConfig, not with the manual's "no routes" (exit 1).
func TestServiceMissingConfigFile(t *testing.T) {
	dir := tempDir(t)
	missing := filepath.Join(dir, "missing.conf")
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(missing, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ conf, want string }{
		{missing, "config file " + missing + " does not exist"},
		{link, "config file " + link + " does not exist (a symbolic link to " + missing + ", which does not exist)"},
	} {
		p := startProc(t, dir, "service", "-config", tt.conf)
		if code := p.wait(t, 20*time.Second); code != exitNoConfig {
			t.Errorf("service -config %s: exit %d; want %d\n%s", tt.conf, code, exitNoConfig, p.output())
		}
		if out := p.output(); !strings.Contains(out, tt.want) || strings.Contains(out, msgNoRoutes) {
			t.Errorf("service -config %s: want %q\n%s", tt.conf, tt.want, out)
		}
	}
}

// TestRouteCommandsOnMissingConfig: "route list" and "route delete" on a
// file that does not exist say so, with exitNoConfig; "route add" creates
// it, as a new user starts.
func TestRouteCommandsOnMissingConfig(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "new", "relaytcp.conf")
	run := func(wantCode int, args ...string) string { return routeCmd(t, dir, conf, wantCode, args...) }
	want := "relaytcp route: config file " + conf + " does not exist (relaytcp route add creates it)"
	if out := run(exitNoConfig, "list"); !strings.Contains(out, want) {
		t.Errorf("list: want %q\n%s", want, out)
	}
	if out := run(exitNoConfig, "delete", ":155"); !strings.Contains(out, want) {
		t.Errorf("delete: want %q\n%s", want, out)
	}
	if _, err := os.Stat(conf); err == nil {
		t.Fatalf("list or delete created %s", conf)
	}
	run(0, "add", "155", "192.168.1.200", "110")
	if out := run(0, "list"); !strings.Contains(out, "Route 0 : From local port 155 to IP 192.168.1.200 port 110") {
		t.Errorf("list after add: %s", out)
	}
	p := startProc(t, dir, "status", "-config", filepath.Join(dir, "none.conf"))
	if code := p.wait(t, 20*time.Second); code != exitNoConfig || !strings.Contains(p.output(), "does not exist") {
		t.Errorf("status on a missing file: exit %d; want %d\n%s", code, exitNoConfig, p.output())
	}
}

// TestStatusWithBrokenConfigFile: while the file on disk has an error, or
// is gone, "relaytcp status" shows the running service's live status with
// the file's error as a warning, and exits 0; -json says it in
// config_error. Before, it exited 5 and showed nothing.
func TestStatusWithBrokenConfigFile(t *testing.T) {
	f := startReloadFixture(t)
	for _, tt := range []struct {
		name  string
		fault func()
		want  string
	}{
		{"a syntax error", func() { os.WriteFile(f.conf, []byte(f.text+"route 1 2 3 4\n"), 0o644) }, f.conf + ":4: route 1: "},
		{"gone", func() { os.Remove(f.conf) }, "config file " + f.conf + " does not exist"},
	} {
		tt.fault()
		p := startProc(t, f.dir, "status", "-config", f.conf)
		code := p.wait(t, 20*time.Second)
		stdout, stderr := strings.Join(p.stdoutLines(), "\n"), strings.Join(p.stderrLines(), "\n")
		if code != 0 || !strings.Contains(stdout, "Error   : "+tt.want) || !strings.Contains(stdout, "\nLive\nRoute 0 : ") ||
			!strings.Contains(stdout, " : listening, ") || !strings.Contains(stderr, "relaytcp status: warning: "+tt.want) {
			t.Errorf("%s: status exit %d; want 0, the live status and the warning %q\n%s", tt.name, code, tt.want, p.output())
		}
		p = startProc(t, f.dir, "status", "-config", f.conf, "-json")
		code = p.wait(t, 20*time.Second)
		var st struct {
			State       string `json:"state"`
			ConfigError string `json:"config_error"`
			Routes      []struct {
				Listening bool `json:"listening"`
			} `json:"routes"`
		}
		err := json.Unmarshal([]byte(strings.Join(p.stdoutLines(), "\n")), &st)
		if code != 0 || err != nil || st.State != "Running" || !strings.Contains(st.ConfigError, tt.want) || len(st.Routes) != 1 || !st.Routes[0].Listening {
			t.Errorf("%s: status -json exit %d: %+v, %v\n%s", tt.name, code, st, err, p.output())
		}
	}
}
