//go:build !windows

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keptConfig is a config file as an administrator writes it: comments,
// blank lines, defaults written out, extra spaces.
const keptConfig = `# relays, kept by config management

logdir /var/log/relaytcp
debug 0
maxconn  10

# mail
route 155  192.168.1.200 110
route 25 mail.example 25   maxconn=5
# web
route 80 web 8080
# end
`

// TestSaveKeepsUnchangedLines: a save rewrites only the lines of the
// settings and routes that changed; every other line stays byte for byte.
// Before, "debug 0" disappeared and every route line was rewritten.
func TestSaveKeepsUnchangedLines(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config) error
		want string
	}{
		{"nothing", func(*Config) error { return nil }, keptConfig},
		{"add a route", func(c *Config) error {
			return c.AddRoute(RouteSpec{LocalPort: 8080, RemoteHost: "new.example", RemotePort: 80})
		}, strings.Replace(keptConfig, "route 80 web 8080\n", "route 80 web 8080\nroute 8080 new.example 80\n", 1)},
		{"delete the middle route", func(c *Config) error { return c.DeleteRoute(1) },
			strings.Replace(keptConfig, "route 25 mail.example 25   maxconn=5\n", "", 1)},
		{"delete the first route", func(c *Config) error { return c.DeleteRoute(0) },
			strings.Replace(keptConfig, "route 155  192.168.1.200 110\n", "", 1)},
		{"change a route in place", func(c *Config) error { c.Routes[1].RemotePort = 26; return nil },
			strings.Replace(keptConfig, "route 25 mail.example 25   maxconn=5\n", "route 25 mail.example 26 maxconn=5\n", 1)},
		{"debug on", func(c *Config) error { c.Debug = true; return nil },
			strings.Replace(keptConfig, "debug 0\n", "debug 1\n", 1)},
		{"maxconn changed", func(c *Config) error { c.MaxConn = 20; return nil },
			strings.Replace(keptConfig, "maxconn  10\n", "maxconn 20\n", 1)},
		{"maxconn off", func(c *Config) error { c.MaxConn = 0; return nil },
			strings.Replace(keptConfig, "maxconn  10\n", "", 1)},
		{"a new setting", func(c *Config) error { c.LogRetentionDays = 7; return nil }, "logretention 7\n" + keptConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(tempDir(t), "relaytcp.conf")
			os.WriteFile(path, []byte(keptConfig), 0o644)
			cfg, f, err := loadConfigFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.edit(cfg); err != nil {
				t.Fatal(err)
			}
			if err := f.save(cfg); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.want {
				t.Fatalf("saved:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	// A file with Windows line ends keeps them.
	path := filepath.Join(tempDir(t), "relaytcp.conf")
	crlf := strings.ReplaceAll(keptConfig, "\n", "\r\n")
	os.WriteFile(path, []byte(crlf), 0o644)
	cfg, f, err := loadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DeleteRoute(2)
	if err := f.save(cfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != strings.Replace(crlf, "route 80 web 8080\r\n", "", 1) {
		t.Fatalf("saved:\n%q\nwant CRLF line ends kept", got)
	}
}

// routeCmd runs "relaytcp route -config conf ARGS..." and checks its exit
// code.
func routeCmd(t *testing.T, dir, conf string, wantCode int, args ...string) string {
	t.Helper()
	p := startProc(t, dir, append([]string{"route", "-config", conf}, args...)...)
	if code := p.wait(t, 30*time.Second); code != wantCode {
		t.Fatalf("route %v: exit %d; want %d\n%s", args, code, wantCode, p.output())
	}
	return p.output()
}

// TestRouteCommandsThroughSymlink: route add and delete on a config file
// that is a symbolic link write the file it points to: the link stays, the
// file keeps its mode, owner and group, and every line not changed. Before,
// the link was replaced by a regular file of mode 0644 owned by root.
func TestRouteCommandsThroughSymlink(t *testing.T) {
	dir := tempDir(t)
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	os.Mkdir(filepath.Join(dir, "managed"), 0o755)
	target := filepath.Join(dir, "managed", "relaytcp.conf")
	link := filepath.Join(dir, "etc", "relaytcp.conf")
	if err := os.WriteFile(target, []byte(keptConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../managed/relaytcp.conf", link); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534 // nobody, nogroup: not the saver's
		if err := os.Chown(target, uid, gid); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: the owner kept is the saver's own (a file of another owner is in TestSaveRefusesOwnerItCannotKeep)")
	}
	check := func(what, want string) {
		t.Helper()
		if dest, err := os.Readlink(link); err != nil || dest != "../managed/relaytcp.conf" {
			t.Fatalf("%s: %s is no longer the symbolic link: %q, %v", what, link, dest, err)
		}
		got, _ := os.ReadFile(target)
		if string(got) != want {
			t.Fatalf("%s: the target holds\n%s\nwant\n%s", what, got, want)
		}
		fi, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o600 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Fatalf("%s: target mode %v, owner %d:%d; want 0600, %d:%d", what, fi.Mode().Perm(), st.Uid, st.Gid, uid, gid)
		}
	}
	routeCmd(t, dir, link, 0, "add", "8080", "new.example", "80")
	added := strings.Replace(keptConfig, "route 80 web 8080\n", "route 80 web 8080\nroute 8080 new.example 80\n", 1)
	check("route add", added)
	routeCmd(t, dir, link, 0, "delete", ":25")
	check("route delete", strings.Replace(added, "route 25 mail.example 25   maxconn=5\n", "", 1))
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".relaytcp.conf.*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestSaveRefusesOwnerItCannotKeep: a user other than root who may write
// the directory but does not own the file cannot give the new file its
// owner: the save is refused, naming the file, rather than changing the
// owner. Run as root, the save runs as nobody.
func TestSaveRefusesOwnerItCannotKeep(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make a file owned by another user")
	}
	dir := tempDir(t)
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte(keptConfig), 0o666)
	os.Chmod(conf, 0o666) // past the umask
	// The test binary may sit in a directory nobody cannot enter.
	exe := filepath.Join(dir, "relaytcp.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil || os.WriteFile(exe, data, 0o755) != nil {
		t.Skipf("copy the test binary: %v", err)
	}
	cmd := exec.Command(exe, "route", "-config", conf, "add", "8080", "new.example", "80")
	cmd.Env = append(os.Environ(), execEnv+"=1", "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	want := "relaytcp route: config file " + conf + " cannot keep its owner 0 and group 0"
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitRuntime || !strings.Contains(string(out), want) {
		t.Fatalf("route add as nobody: %v\n%s\nwant exit %d and %q", err, out, exitRuntime, want)
	}
	fi, _ := os.Stat(conf)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("the file's owner is now %d", st.Uid)
	}
	if got, _ := os.ReadFile(conf); string(got) != keptConfig {
		t.Errorf("the file changed:\n%s", got)
	}
}

// deadPID returns the process ID of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestSaveRemovesStaleTemps: a save removes the temporary files of earlier
// saves of the same file whose writer is dead or that are older than a
// minute, and keeps a young one of a live writer and other files'. Before,
// every killed save left its temporary file for good.
func TestSaveRemovesStaleTemps(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(conf, []byte(keptConfig), 0o644)
	dead, live := deadPID(t), os.Getpid()
	name := func(pid, n int) string { return filepath.Join(dir, fmt.Sprintf(".relaytcp.conf.%d.%d.tmp", pid, n)) }
	files := map[string]bool{ // path: kept
		name(dead, 1): false,
		name(live, 2): true,
		name(live, 3): false, // old
		filepath.Join(dir, fmt.Sprintf(".other.conf.%d.4.tmp", dead)): true,
	}
	for path := range files {
		os.WriteFile(path, []byte("half"), 0o600)
	}
	old := time.Now().Add(-2 * staleTempAge)
	os.Chtimes(name(live, 3), old, old)
	routeCmd(t, dir, conf, 0, "add", "8080", "new.example", "80")
	for path, kept := range files {
		if _, err := os.Stat(path); (err == nil) != kept {
			t.Errorf("%s: kept %v; want %v", filepath.Base(path), err == nil, kept)
		}
	}
}

// TestSaveKilledLeavesNoTemp kills "route add" (SIGKILL) as soon as its
// temporary file appears, at most 50 times or for a minute, until one
// leaves it behind: the config file is never half-written, and the next
// save removes the leftover.
func TestSaveKilledLeavesNoTemp(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	// A long file (comments): a write that lasts long enough for the kill
	// to land in it.
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "# %d %s\n", i, strings.Repeat("long enough to be killed while it is written, ", 200))
	}
	b.WriteString("route 20000 host.example 80\n")
	os.WriteFile(conf, []byte(b.String()), 0o644)
	temps := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, ".relaytcp.conf.*.tmp"))
		return m
	}
	kills, deadline := 0, time.Now().Add(time.Minute)
	for len(temps()) == 0 && kills < 50 && time.Now().Before(deadline) {
		p := startProc(t, dir, "route", "-config", conf, "add", strconv.Itoa(1000+kills), "killed.example", "1")
		for done := false; !done; {
			select {
			case <-p.done:
				done = true
			case <-time.After(time.Millisecond):
				if len(temps()) > 0 {
					p.cmd.Process.Signal(syscall.SIGKILL)
					done = true
				}
			}
		}
		p.wait(t, 20*time.Second)
		kills++
		if _, _, err := loadConfigFile(conf); err != nil {
			t.Fatalf("after kill %d a reader sees a broken file: %v", kills, err)
		}
	}
	left := temps()
	t.Logf("%d tries left %d temporary files", kills, len(left))
	if len(left) == 0 {
		t.Skipf("no kill of %d landed in a save's write: TestSaveRemovesStaleTemps checks the rule with files made to look so", kills)
	}
	routeCmd(t, dir, conf, 0, "add", "999", "last.example", "1")
	if left := temps(); len(left) > 0 {
		t.Fatalf("the save after the kills left %v", left)
	}
}

// TestSaveEditsReadBack: random edits of random files (comments, blank
// lines, settings, routes) save files that read back as the edited
// configuration and keep every comment and blank line in order.
func TestSaveEditsReadBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 5))
	dir := tempDir(t)
	for n := range 200 {
		var lines []string
		port := 1000
		for range rng.IntN(12) {
			switch rng.IntN(5) {
			case 0:
				lines = append(lines, fmt.Sprintf("# comment %d", rng.IntN(100)))
			case 1:
				lines = append(lines, "")
			default:
				port += 1 + rng.IntN(3)
				lines = append(lines, fmt.Sprintf("route %d  host%d.example %d", port, rng.IntN(5), 1+rng.IntN(9)))
			}
		}
		if rng.IntN(2) == 0 {
			lines = append(lines, "debug 0")
		}
		path := filepath.Join(dir, fmt.Sprintf("%d.conf", n))
		text := strings.Join(lines, "\n") + "\n"
		os.WriteFile(path, []byte(text), 0o644)
		cfg, f, err := loadConfigFile(path)
		if err != nil {
			t.Fatalf("file %d: %v", n, err)
		}
		for range 1 + rng.IntN(3) {
			switch k := rng.IntN(4); {
			case k == 0 && len(cfg.Routes) > 0:
				cfg.DeleteRoute(rng.IntN(len(cfg.Routes)))
			case k == 1 && len(cfg.Routes) > 0:
				cfg.Routes[rng.IntN(len(cfg.Routes))].RemotePort = 100 + rng.IntN(100)
			case k == 2:
				cfg.Debug = !cfg.Debug
			default:
				cfg.AddRoute(RouteSpec{LocalPort: 2000 + rng.IntN(1000), RemoteHost: "new.example", RemotePort: 80})
			}
		}
		if err := f.save(cfg); err != nil {
			t.Fatalf("file %d: save: %v", n, err)
		}
		saved, _ := os.ReadFile(path)
		again, _, err := loadConfigFile(path)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(cfg) {
			t.Fatalf("file %d:\n%s\nsaved as\n%s\nreads back %+v, %v; want %+v", n, strings.Join(lines, "\n"), saved, again, err, cfg)
		}
		kept, want := commentsAndBlanks(string(saved)), commentsAndBlanks(text)
		if strings.Join(kept, "|") != strings.Join(want, "|") {
			t.Fatalf("file %d: comments and blank lines %q; want %q\n%q\nsaved as\n%q", n, kept, want, text, saved)
		}
	}
}

// commentsAndBlanks returns a file's comment lines and blank lines, in
// order.
func commentsAndBlanks(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
