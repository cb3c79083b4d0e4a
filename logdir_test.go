package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordLog is a serviceLog that keeps its events as "Severity: text".
type recordLog struct {
	mu     sync.Mutex
	events []string
}

func (l *recordLog) add(severity, msg string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, severity+": "+msg)
	return nil
}

func (l *recordLog) Info(_ uint32, msg string) error    { return l.add("Information", msg) }
func (l *recordLog) Warning(_ uint32, msg string) error { return l.add("Warning", msg) }
func (l *recordLog) Error(_ uint32, msg string) error   { return l.add("Error", msg) }

// take returns the events so far and forgets them.
func (l *recordLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	events := l.events
	l.events = nil
	return events
}

// guardedLogDir makes a log directory (mode 0750 where modes exist), its
// connection log and its guard, not started: the test runs its checks.
func guardedLogDir(t *testing.T) (string, *connLog, *logDirGuard, *recordLog) {
	t.Helper()
	dir := filepath.Join(tempDir(t), "logs")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o750) // whatever the umask
	events := &recordLog{}
	l := &connLog{dir: dir}
	l.guard = openLogDir(dir, events, l)
	t.Cleanup(func() { l.Close() })
	return dir, l, l.guard, events
}

// todaysLog is the connection log file of today in dir.
func todaysLog(dir string) string {
	return filepath.Join(dir, "CO"+time.Now().Format("060102")+".LOG")
}

// checkEvents checks that events are want, one each, in order; a want
// ends with what the event must contain.
func checkEvents(t *testing.T, events []string, want ...string) {
	t.Helper()
	if len(events) != len(want) {
		t.Fatalf("events %q; want %d like %q", events, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(events[i], w) {
			t.Errorf("event %d is %q; want it to contain %q", i, events[i], w)
		}
	}
}

// TestLogDirGuardRecreates: a check finds the log directory removed,
// recreates it with its mode, has the connection log reopened at its path,
// and reports the incident once and its end once.
func TestLogDirGuardRecreates(t *testing.T) {
	dir, l, g, events := guardedLogDir(t)
	if _, err := l.Write([]byte("before" + newline)); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		l.Close() // Windows removes no directory with an open file
	}
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	g.check()
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("log directory not recreated: %v", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o750 {
		t.Errorf("recreated with mode %v; want 0750", fi.Mode().Perm())
	}
	if _, err := l.Write([]byte("after" + newline)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(todaysLog(dir)); err != nil || string(got) != "after"+newline {
		t.Errorf("connection log at its path holds %q, %v; want the line written after", got, err)
	}
	checkEvents(t, events.take(),
		"Warning: The Relay TCP Service cannot write its logs in "+dir+" (the directory was removed). Relaying goes on.",
		"Information: The Relay TCP Service writes its logs in "+dir+" again (the directory was recreated)")
	g.check()
	checkEvents(t, events.take())
}

// TestLogDirGuardOneReportPerIncident: a flood of data-log failures is one
// report; the incident ends only after a check interval without a fault,
// saying how many data logs it cost; a fault after that is a new incident.
func TestLogDirGuardOneReportPerIncident(t *testing.T) {
	dir, _, g, events := guardedLogDir(t)
	g.every = 300 * time.Millisecond
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			g.dataLogFailed(fmt.Errorf("write data log %s: no space left on device", filepath.Join(dir, fmt.Sprintf("RL%02d.LOG", i))))
		})
	}
	wg.Wait()
	g.check()
	checkEvents(t, events.take(), "Warning: The Relay TCP Service cannot write its logs in "+dir+" (write data log ")
	g.check()
	checkEvents(t, events.take()) // faults too recent for the end
	time.Sleep(g.every)
	g.check()
	checkEvents(t, events.take(), "Information: The Relay TCP Service writes its logs in "+dir+" again (100 data logs incomplete or not written)")
	g.dataLogFailed(errors.New("write data log: disk full again"))
	g.check()
	checkEvents(t, events.take(), "Warning: The Relay TCP Service cannot write its logs in "+dir+" (write data log: disk full again)")
}

// TestDataLogInRemovedDir: a data log created after its directory was
// removed recreates the directory and is created there, and a data log
// open across the removal is reopened at its path (where files can be
// removed while open).
func TestDataLogInRemovedDir(t *testing.T) {
	dir, l, g, events := guardedLogDir(t)
	var names dataLogNamer
	names.guard.Store(g)
	var held *dataLog
	if runtime.GOOS != "windows" {
		var err error
		if held, err = names.create(dir, time.Now()); err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		held.direction("a:1", "b:2").packet([]byte("before"))
	}
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	d, err := names.create(dir, time.Now())
	if err != nil {
		t.Fatalf("data log after the directory was removed: %v", err)
	}
	defer d.Close()
	d.direction("a:1", "b:2").packet([]byte("NEW-AFTER"))
	if got, _ := os.ReadFile(d.name); !strings.Contains(string(got), "NEW-AFTER") {
		t.Errorf("new data log %s holds %q", d.name, got)
	}
	if held != nil {
		held.direction("a:1", "b:2").packet([]byte("HELD-AFTER"))
		if got, err := os.ReadFile(held.name); err != nil || !strings.Contains(string(got), "HELD-AFTER") {
			t.Errorf("data log held across the removal: %s holds %q, %v; want what came after", held.name, got, err)
		}
	}
	l.Write([]byte("line" + newline))
	g.check()
	checkEvents(t, events.take(),
		"Warning: The Relay TCP Service cannot write its logs in "+dir+" (the directory was removed)",
		"Information: The Relay TCP Service writes its logs in "+dir+" again (the directory was recreated)")
	open := 1
	if held != nil {
		open = 2
	}
	if len(g.open) != open {
		t.Errorf("guard tracks %d open data logs; want %d", len(g.open), open)
	}
	d.Close()
	if held != nil {
		held.Close()
	}
	if len(g.open) != 0 {
		t.Errorf("guard still tracks %d closed data logs", len(g.open))
	}
}

// TestConnLogFileRemoved: a connection log file removed from its directory
// (which stays) is noticed by the next check, reopened at its path and
// reported once, with its end.
func TestConnLogFileRemoved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows does not remove a file that is open")
	}
	dir, l, g, events := guardedLogDir(t)
	if _, err := l.Write([]byte("before" + newline)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(todaysLog(dir)); err != nil {
		t.Fatal(err)
	}
	g.check()
	if _, err := os.Stat(todaysLog(dir)); err != nil {
		t.Fatalf("connection log not reopened at its path: %v", err)
	}
	l.Write([]byte("after" + newline))
	if got, err := os.ReadFile(todaysLog(dir)); err != nil || string(got) != "after"+newline {
		t.Errorf("connection log at its path holds %q, %v; want the line written after", got, err)
	}
	checkEvents(t, events.take(),
		"Warning: The Relay TCP Service cannot write its logs in "+dir+" ("+todaysLog(dir)+" was no longer at its path: reopened). Relaying goes on.",
		"Information: The Relay TCP Service writes its logs in "+dir+" again")
	g.check()
	checkEvents(t, events.take())
}
