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
	// onError is told of the first failure of a streak (the directory is
	// not writable, the disk is full); lines are dropped until a write
	// works again.
	onError func(error)

	mu      sync.Mutex
	day     string // the yymmdd of f
	f       *os.File
	failing bool
}

// Write appends one line (with its line ending) to today's file.
func (l *connLog) Write(line []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.write(line, time.Now())
	if err != nil {
		if !l.failing && l.onError != nil {
			l.onError(err)
		}
		l.failing = true
		return n, err
	}
	l.failing = false
	return n, nil
}

func (l *connLog) write(line []byte, now time.Time) (int, error) {
	day := now.Format("060102")
	if l.f == nil || day != l.day {
		if l.f != nil {
			l.f.Close()
			l.f = nil
		}
		name := connLogPath(l.dir, now)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 0, fmt.Errorf("open connection log: %w", err)
		}
		l.f, l.day = f, day
	}
	n, err := l.f.Write(line)
	if err != nil {
		err = fmt.Errorf("write connection log %s: %w", l.f.Name(), err)
		l.f.Close() // reopen on the next line: the file may have been removed
		l.f = nil
	}
	return n, err
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
