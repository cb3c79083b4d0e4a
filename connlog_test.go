package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestConnLogYearOfDays: the connection log runs through a year of days
// (its clock given, a few lines a day, then pruning as the service does
// with LogRetentionDays=30): every day's lines are in that day's
// COyymmdd.LOG, at most one log file is open at any time, and what
// pruning leaves is the last 30 days. This is the part of a days-long soak
// that depends on the date.
func TestConnLogYearOfDays(t *testing.T) {
	dir := tempDir(t)
	l := &connLog{dir: dir}
	defer l.Close()
	countFDs := func() int {
		if runtime.GOOS != "linux" {
			return 0
		}
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	start := time.Date(2026, 1, 1, 0, 30, 0, 0, time.Local)
	baseFD := countFDs()
	for day := range 366 {
		for i := range 3 {
			now := start.AddDate(0, 0, day).Add(time.Duration(i) * 7 * time.Hour)
			if _, err := l.write(fmt.Appendf(nil, "day %d line %d\r\n", day, i), now); err != nil {
				t.Fatal(err)
			}
		}
		if n := countFDs(); n > baseFD+1 {
			t.Fatalf("day %d: %d descriptors open, %d before the first line: a day's file was left open", day, n, baseFD)
		}
	}
	for _, day := range []int{0, 59, 365} {
		date := start.AddDate(0, 0, day)
		got, err := os.ReadFile(filepath.Join(dir, "CO"+date.Format("060102")+".LOG"))
		want := fmt.Sprintf("day %d line 0\r\nday %d line 1\r\nday %d line 2\r\n", day, day, day)
		if err != nil || string(got) != want {
			t.Errorf("log of day %d (%s): %q, %v; want %q", day, date.Format("2006-01-02"), got, err, want)
		}
	}
	l.Close()
	// The files' times say when they were last written, as in service use.
	for day := range 366 {
		date := start.AddDate(0, 0, day)
		name := filepath.Join(dir, "CO"+date.Format("060102")+".LOG")
		last := date.Add(14 * time.Hour)
		if err := os.Chtimes(name, last, last); err != nil {
			t.Fatal(err)
		}
	}
	end := start.AddDate(0, 0, 365).Add(23 * time.Hour)
	if _, err := pruneLogs(dir, 30, end); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "CO*.LOG"))
	if len(left) < 30 || len(left) > 31 {
		t.Errorf("%d connection logs left after pruning to 30 days; want 30 or 31", len(left))
	}
	if _, err := os.Stat(filepath.Join(dir, "CO"+end.Format("060102")+".LOG")); err != nil {
		t.Errorf("pruning removed today's log: %v", err)
	}
}
