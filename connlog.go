package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// connLog is the service's connection log: lines appended to
// LogDir/COyymmdd.LOG, a new file each local day, as in RelayTCP 1.0. Each
// line is one write to a file opened for appending, so lines never
// interleave, even with another process writing the same file.
type connLog struct {
	dir string
	// guard recreates a removed directory, hears of failures, and runs
	// check, which resumes a broken log; the service always sets it.
	guard *logDirGuard

	mu  sync.Mutex
	day string // the yymmdd of f
	f   *os.File
	// broken is the failure that stopped the log (the disk is full, the
	// directory is not writable), nil while it works. Lines are then
	// dropped and counted, and check tries to resume.
	broken  error
	since   time.Time // when it broke
	lost    int       // lines dropped since
	partial bool      // the failed write may have left a line unfinished
}

// Write appends one line (with its line ending) to today's file. A write
// that fails because the directory is gone is tried again once the guard
// has recreated it; another failure breaks the log until check resumes it.
func (l *connLog) Write(line []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		l.lost++
		return 0, l.broken
	}
	now := time.Now()
	n, err := l.write(line, now)
	if err != nil && n == 0 && l.guard != nil {
		if recreated, _ := l.guard.repair(); recreated {
			n, err = l.write(line, now)
		}
	}
	if err != nil {
		l.broken, l.since, l.lost, l.partial = err, now, 1, n > 0
		if l.guard != nil {
			l.guard.fault(err)
		}
	}
	return n, err
}

func (l *connLog) write(line []byte, now time.Time) (int, error) {
	if err := l.open(now); err != nil {
		return 0, err
	}
	n, err := l.f.Write(line)
	if err != nil {
		l.f.Close() // reopen on the next line: the file may have been removed
		l.f = nil
	}
	return n, err
}

// open opens the file of now's day, unless it is open.
func (l *connLog) open(now time.Time) error {
	day := now.Format("060102")
	if l.f != nil && day == l.day {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	name := connLogPath(l.dir, now)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err // an *fs.PathError: "open DIR/COyymmdd.LOG: ..."
	}
	l.f, l.day = f, day
	return nil
}

// check is the guard's: it reopens the file when it is no longer the one
// at its path (removed, with its directory or not), and tries to resume a
// broken log, writing first how many lines were lost. It returns the lines
// lost by a breakage that ended now, and whether the log works.
func (l *connLog) check() (lost int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.broken == nil {
		if l.f == nil || l.atPath() {
			return 0, true
		}
		// Lines written since the last check went with the file.
		l.guard.repaired(fmt.Errorf("%s was no longer at its path: reopened", l.f.Name()))
		l.f.Close()
		l.f = nil
		err := l.open(now)
		if err == nil {
			return 0, true
		}
		l.broken, l.since, l.lost, l.partial = err, now, 0, false
		l.guard.fault(err)
		return 0, false
	}
	if l.lost == 0 && !l.partial {
		if l.open(now) != nil {
			return 0, false
		}
	} else {
		notice := fmt.Sprintf("%s Lost %d log lines since %s: %v%s",
			now.Format(logTimeLayout), l.lost, l.since.Format(logTimeLayout), l.broken, newline)
		if l.partial {
			notice = newline + notice // end the line the failure cut
		}
		n, err := l.write([]byte(notice), now)
		if err != nil {
			l.partial = l.partial || n > 0
			return 0, false
		}
	}
	lost = l.lost
	l.broken, l.lost, l.partial = nil, 0, false
	return lost, true
}

// atPath reports whether the open file is still the one at its path.
func (l *connLog) atPath() bool {
	open, err := l.f.Stat()
	if err != nil {
		return false
	}
	there, err := os.Stat(l.f.Name())
	return err == nil && os.SameFile(open, there)
}

// connLogPath is the connection log file of the day of now in dir:
// COyymmdd.LOG, as in RelayTCP 1.0.
func connLogPath(dir string, now time.Time) string {
	return filepath.Join(dir, "CO"+now.Format("060102")+".LOG")
}

// Close closes the current file.
func (l *connLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
