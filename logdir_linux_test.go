package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logDirServiceTest is a service run in front of an echo server, logging
// into logDir.
type logDirServiceTest struct {
	p      *relayProc
	logDir string
	addr   string
}

// startLogDirService starts "relaytcp service" with logdir logDir and
// debug 0 or 1, and waits until a first connection is in its connection
// log.
func startLogDirService(t *testing.T, dir, logDir string, debug int) *logDirServiceTest {
	t.Helper()
	echo := echoServer(t)
	port := freePort(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf("logdir %s\ndebug %d\nroute 127.0.0.1:%d 127.0.0.1 %d\n", logDir, debug, port, portOf(echo.Addr()))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &logDirServiceTest{p: startProc(t, dir, "service", "-config", conf), logDir: logDir, addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.p.waitStderr(t, "successfully started")
	roundTrip(t, s.addr, "before")
	if !eventually(10*time.Second, func() bool { return strings.Contains(s.connLog(), "Connection from") }) {
		t.Fatalf("no connection in the connection log:\n%s", s.p.output())
	}
	return s
}

// connLog is today's connection log at its path ("" if missing).
func (s *logDirServiceTest) connLog() string {
	data, _ := os.ReadFile(filepath.Join(s.logDir, "CO"+time.Now().Format("060102")+".LOG"))
	return string(data)
}

// count counts the service's stderr lines that contain want.
func (s *logDirServiceTest) count(want string) int {
	return strings.Count(strings.Join(s.p.stderrLines(), "\n"), want)
}

// dataLogWith returns the data log in the log directory that shows text
// (at most 16 bytes: one line of the ASCII column), or "".
func (s *logDirServiceTest) dataLogWith(text string) string {
	names, _ := filepath.Glob(filepath.Join(s.logDir, "RL*.LOG"))
	for _, name := range names {
		if data, err := os.ReadFile(name); err == nil && strings.Contains(string(data), text) {
			return name
		}
	}
	return ""
}

// deletedFilesOpen lists the files of dir the process holds open that are
// no longer at their path.
func deletedFilesOpen(t *testing.T, pid int, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") && strings.HasSuffix(target, " (deleted)") {
			deleted = append(deleted, target)
		}
	}
	return deleted
}

const (
	logDirWarning = "RelayTCPsvc[100] Warning: The Relay TCP Service cannot write its logs in "
	logDirBack    = "RelayTCPsvc[100] Information: The Relay TCP Service writes its logs in "
)

// TestServiceLogDirRemoved: the service's log directory (mode 0750, owned by
// uid 65534 when the test runs as root) is removed while it relays. Within
// a bounded wait the directory is back with its mode and owner, the
// connection log at its path gets the new lines, no removed file stays
// open, and the incident is reported once, with one recovery line; with
// debug 1, a connection held across the removal writes its data log at its
// path again and a new connection gets its data log. A second removal is
// repaired by a reload (SIGHUP) before the reload is reported. With debug
// 0 nothing but the periodic check can notice.
func TestServiceLogDirRemoved(t *testing.T) {
	for _, debug := range []int{1, 0} {
		t.Run(fmt.Sprintf("debug %d", debug), func(t *testing.T) { testLogDirRemoved(t, debug) })
	}
}

func testLogDirRemoved(t *testing.T, debug int) {
	dir := tempDir(t)
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logDir, 0o750) // whatever the umask
	if os.Getuid() == 0 {
		if err := os.Chown(logDir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.Stat(logDir)
	if err != nil {
		t.Fatal(err)
	}
	owner := before.Sys().(*syscall.Stat_t)
	s := startLogDirService(t, dir, logDir, debug)
	held := dialTCP(t, s.addr)
	defer held.Close()
	if !echoes(held) {
		t.Fatal("no echo on the held connection")
	}

	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	// Relaying goes on meanwhile, and its lines reach the log again.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		roundTrip(t, s.addr, "during "+strconv.Itoa(i))
		if strings.Contains(s.connLog(), "Connection from") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection log is not back at its path 20 s after the directory was removed:\n%s", s.p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	fi, err := os.Stat(logDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("recreated log directory has mode %v; want 0750", fi.Mode().Perm())
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != owner.Uid || st.Gid != owner.Gid {
		t.Errorf("recreated log directory is owned by %d:%d; want %d:%d", st.Uid, st.Gid, owner.Uid, owner.Gid)
	}

	held.Write([]byte("HELD-AFTER"))
	if !echoes(held) {
		t.Fatal("the held connection stopped relaying")
	}
	roundTrip(t, s.addr, "NEW-AFTER")
	if debug == 1 && !eventually(5*time.Second, func() bool { return s.dataLogWith("HELD-AFTER") != "" }) {
		t.Error("the connection held across the removal has no data log at its path for what it relayed after")
	}
	if debug == 1 && !eventually(5*time.Second, func() bool { return s.dataLogWith("NEW-AFTER") != "" }) {
		t.Error("a new connection after the removal has no data log")
	}
	if deleted := deletedFilesOpen(t, s.p.cmd.Process.Pid, logDir); len(deleted) > 0 {
		t.Errorf("the service still writes removed files: %v", deleted)
	}
	s.p.waitStderr(t, logDirBack+logDir+" again")
	if n := s.count(logDirWarning + logDir); n != 1 {
		t.Errorf("%d log-directory warnings; want 1:\n%s", n, s.p.output())
	}
	if n := s.count(logDirBack + logDir); n != 1 {
		t.Errorf("%d recovery lines; want 1:\n%s", n, s.p.output())
	}

	// A reload checks the directory at once.
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	reloads := s.count("configuration was reloaded")
	s.p.cmd.Process.Signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { return s.count("configuration was reloaded") > reloads }) {
		t.Fatalf("no reload reported:\n%s", s.p.output())
	}
	if _, err := os.Stat(logDir); err != nil {
		t.Errorf("the log directory is not back after a reload: %v", err)
	}
	held.Close()
	s.p.cmd.Process.Signal(syscall.SIGTERM)
	s.p.wait(t, 20*time.Second)
}

// mountSmallTmpfs mounts a 256 KiB tmpfs at a new directory under dir,
// unmounted when the test ends; it skips the test where mounting is not
// permitted.
func mountSmallTmpfs(t *testing.T, dir string) string {
	t.Helper()
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Skipf("a full disk needs a small tmpfs, and mounting one at %s is not permitted here: %v", mnt, err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// fillDisk writes a file in dir until the disk is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for range 1000 { // 4 MB at most: far past the 256 KiB
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return name
		}
	}
	t.Fatalf("%s never filled up", dir)
	return ""
}

// TestServiceLogDiskFull: the log directory's disk fills up while the
// service relays with debug 1: connections go on, the incident is reported
// once however many connections fail to log, and once space returns the
// connection log resumes, saying how many lines were lost, and the
// recovery is reported once.
func TestServiceLogDiskFull(t *testing.T) {
	dir := tempDir(t)
	mnt := mountSmallTmpfs(t, dir)
	logDir := filepath.Join(mnt, "logs")
	s := startLogDirService(t, dir, logDir, 1)
	filler := fillDisk(t, mnt)

	// Enough connections to fill the connection log's last page too.
	for i := range 60 {
		roundTrip(t, s.addr, "full "+strconv.Itoa(i))
	}
	s.p.waitStderr(t, logDirWarning+logDir)
	time.Sleep(500 * time.Millisecond)
	if n := s.count(logDirWarning + logDir); n != 1 {
		t.Errorf("%d log-directory warnings for one full disk; want 1:\n%s", n, s.p.output())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.p.waitStderr(t, logDirBack+logDir+" again")
	roundTrip(t, s.addr, "SPACE-BACK")
	if !eventually(5*time.Second, func() bool { return s.dataLogWith("SPACE-BACK") != "" }) {
		t.Error("no data log for a connection once space came back")
	}
	lost := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d Lost \d+ log lines since \d{4}/\d\d/\d\d \d\d:\d\d:\d\d: .*no space left on device\r?$`)
	if !eventually(5*time.Second, func() bool { return lost.MatchString(s.connLog()) }) {
		t.Errorf("the connection log does not say how many lines were lost:\n%s", s.connLog())
	}
	if n := s.count(logDirWarning + logDir); n != 1 {
		t.Errorf("%d log-directory warnings; want 1:\n%s", n, s.p.output())
	}
	if n := s.count(logDirBack + logDir); n != 1 {
		t.Errorf("%d recovery lines; want 1:\n%s", n, s.p.output())
	}
	s.p.cmd.Process.Signal(syscall.SIGTERM)
	s.p.wait(t, 20*time.Second)
}

// TestConnLogFullDisk: a connection log whose writes fail with ENOSPC
// (its file is /dev/full) is reported once, drops and counts its lines
// without trying to write each, and once writes work again (the link
// removed, the file created) resumes with a line saying how many were
// lost; the end of the incident says it too.
func TestConnLogFullDisk(t *testing.T) {
	dir, l, g, events := guardedLogDir(t)
	g.every = 0
	if err := os.Symlink("/dev/full", todaysLog(dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("one\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to /dev/full: %v; want ENOSPC", err)
	}
	l.Write([]byte("two\n"))
	l.Write([]byte("three\n"))
	g.check()
	checkEvents(t, events.take(), "Warning: The Relay TCP Service cannot write its logs in "+dir+" (write "+todaysLog(dir)+": no space left on device)")
	g.check()
	checkEvents(t, events.take()) // still failing: no end, no second report

	os.Remove(todaysLog(dir)) // space is back
	g.check()
	checkEvents(t, events.take(), "Information: The Relay TCP Service writes its logs in "+dir+" again (3 connection-log lines lost)")
	l.Write([]byte("four\n"))
	got, _ := os.ReadFile(todaysLog(dir))
	want := regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d Lost 3 log lines since \d{4}/\d\d/\d\d \d\d:\d\d:\d\d: write ` + regexp.QuoteMeta(todaysLog(dir)) + `: no space left on device\nfour\n$`)
	if !want.Match(got) {
		t.Errorf("connection log after the disk had room again:\n%s\nwant it to match %s", got, want)
	}
}
