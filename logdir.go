package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
)

// logDirGuard keeps the service's log directory usable while the service
// runs. The directory may be removed, or its disk may fill up; on Linux a
// removed directory does not even fail the writes, which go on into the
// removed files. The guard notices within logCheckInterval (at once when a
// write fails), recreates the directory as the service found it, has the
// logs reopened at their paths, and reports each incident once through the
// service log (event 100), and its end once. Relaying never waits for it:
// the connection log is written off the relay's path (lineQueue), and a
// data log only asks it to recreate the directory, which takes a few
// system calls.
type logDirGuard struct {
	path string
	log  serviceLog
	conn *connLog // the connection log it checks
	// every is how often check runs, and how long no fault may come before
	// an incident is over.
	every time.Duration

	mu        sync.Mutex
	attrs     logDirAttrs           // the directory as the service found it
	pending   error                 // the fault that starts an incident, not reported yet
	reported  bool                  // an incident is reported and not over
	lastFault time.Time             // the last fault that was not repaired at once
	recreated bool                  // the incident recreated the directory
	lost      int                   // connection-log lines the incident lost
	dataLogs  int                   // data logs the incident cut short or left unwritten
	open      map[*dataLog]struct{} // the open data logs in the directory, for repair to reopen

	checking sync.Mutex    // one check at a time: the timer's, a reload's
	wake     chan struct{} // a fault: check now, to report it
	stopped  chan struct{} // closed by stop
	done     chan struct{} // closed when the checks have stopped
}

// logCheckInterval is how often the service checks its log directory, as
// often as it looks at its config file: a few system calls each time.
const logCheckInterval = 2 * time.Second

// errLogDirRemoved is the fault of a log directory that is no longer there.
var errLogDirRemoved = errors.New("the directory was removed")

// openLogDir creates the log directory when missing, remembers how it is
// (mode and owner, to recreate it the same) and returns its guard, which
// starts checking it with start. A directory that cannot be created is
// reported at once; conn's writes then fail and are dropped until it can.
func openLogDir(path string, log serviceLog, conn *connLog) *logDirGuard {
	g := &logDirGuard{path: path, log: log, conn: conn, every: logCheckInterval,
		open: make(map[*dataLog]struct{}), wake: make(chan struct{}, 1)}
	if err := createLogDir(path); err != nil {
		log.Warning(eventService, fmt.Sprintf(msgLogDir, path, err))
		g.reported, g.lastFault = true, time.Now()
		return g
	}
	g.attrs = readLogDirAttrs(path)
	return g
}

// start checks the directory every g.every, and at once after a fault,
// until stop.
func (g *logDirGuard) start() {
	g.stopped, g.done = make(chan struct{}), make(chan struct{})
	go g.checkEvery(g.every)
}

// checkEvery is the guard's goroutine.
func (g *logDirGuard) checkEvery(every time.Duration) {
	defer close(g.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-g.stopped:
			return
		case <-tick.C:
		case <-g.wake:
		}
		g.check()
	}
}

// stop ends the checks (if started); repairs asked by the data logs still
// work.
func (g *logDirGuard) stop() {
	if g.stopped == nil {
		return
	}
	close(g.stopped)
	<-g.done
}

// check recreates the directory if it is gone, has the connection log
// reopened if its file is no longer at its path and resumed if its writes
// failed, then reports a new incident, or the end of one: when the
// directory is there, the connection log works and no fault came for
// g.every.
func (g *logDirGuard) check() {
	g.checking.Lock()
	defer g.checking.Unlock()
	_, dirErr := g.repair()
	lost, connOK := g.conn.check()

	g.mu.Lock()
	var warning, info string
	if g.pending != nil {
		warning = fmt.Sprintf(msgLogDir, g.path, g.pending)
		g.pending, g.reported = nil, true
	}
	g.lost += lost
	if g.reported && dirErr == nil && connOK && time.Since(g.lastFault) >= g.every {
		info = fmt.Sprintf(msgLogDirBack, g.path) + g.incidentLosses()
		g.reported, g.recreated, g.lost, g.dataLogs = false, false, 0, 0
	}
	g.mu.Unlock()
	// Reported outside the lock, in order: only check reports.
	if warning != "" {
		g.log.Warning(eventService, warning)
	}
	if info != "" {
		g.log.Info(eventService, info)
	}
}

// incidentLosses says what the incident cost, for its end's report:
// " (the directory was recreated; 12 connection-log lines lost)". g.mu is
// held.
func (g *logDirGuard) incidentLosses() string {
	var what []string
	if g.recreated {
		what = append(what, "the directory was recreated")
	}
	if g.lost > 0 {
		what = append(what, plural(g.lost, "connection-log line")+" lost")
	}
	if g.dataLogs > 0 {
		what = append(what, plural(g.dataLogs, "data log")+" incomplete or not written")
	}
	if len(what) == 0 {
		return ""
	}
	return " (" + strings.Join(what, "; ") + ")"
}

// repair recreates the directory if it is not there, with the mode and
// owner it had (on Windows, createLogDir's access list), and has the open
// data logs reopened in it. It returns whether it recreated it, and an
// error while there is no directory to write in. Any goroutine may call
// it.
func (g *logDirGuard) repair() (recreated bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fi, err := os.Stat(g.path)
	switch {
	case err == nil && fi.IsDir():
		return false, nil
	case err == nil:
		err = fmt.Errorf("log directory %s is not a directory", g.path)
		g.faultLocked(err)
		return false, err
	case !errors.Is(err, fs.ErrNotExist):
		g.faultLocked(err) // not allowed to look, say
		return false, err
	}
	attrErr := recreateLogDir(g.path, g.attrs)
	if fi, err := os.Stat(g.path); err != nil || !fi.IsDir() {
		if attrErr == nil {
			attrErr = fmt.Errorf("recreate log directory %s: %w", g.path, err)
		}
		g.faultLocked(fmt.Errorf("%w, and it cannot be recreated: %w", errLogDirRemoved, attrErr))
		return false, attrErr
	}
	if attrErr != nil {
		// There, but not as it was: worth a report.
		g.faultLocked(fmt.Errorf("%w; recreated, but not as it was: %w", errLogDirRemoved, attrErr))
	} else {
		g.repairedLocked(errLogDirRemoved)
	}
	g.recreated = true
	for d := range g.open {
		d.reopen.Store(true)
	}
	return true, nil
}

// fault records a failure to write a log: the first of an incident is
// reported by the next check, which it asks for now.
func (g *logDirGuard) fault(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faultLocked(err)
}

func (g *logDirGuard) faultLocked(err error) {
	g.lastFault = time.Now()
	if !g.reported && g.pending == nil {
		g.pending = err
		g.signal()
	}
}

// repaired records a fault that is repaired already (a removed file or
// directory, made again): the incident is reported, but its end need not
// wait for a quiet interval.
func (g *logDirGuard) repaired(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.repairedLocked(err)
}

func (g *logDirGuard) repairedLocked(err error) {
	if !g.reported && g.pending == nil {
		g.pending = err
		g.signal()
	}
}

// signal asks for a check without waiting for it.
func (g *logDirGuard) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// dataLogFailed records a data log that could not be created or written:
// a fault, counted in the incident's report.
func (g *logDirGuard) dataLogFailed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faultLocked(err)
	g.dataLogs++
}

// track and untrack keep the set of open data logs in the directory, which
// repair has reopened.
func (g *logDirGuard) track(d *dataLog) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open[d] = struct{}{}
}

func (g *logDirGuard) untrack(d *dataLog) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.open, d)
}
