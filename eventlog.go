package main

import (
	"fmt"
	"io"
	"sync"
)

// The service's Event Log IDs, as in RelayTCP 1.0: 100 for the service's
// life, 101 for each route; and 102 for backends. messages.mc gives each
// the text "%1", so the messages below are the whole text of each event.
const (
	eventService = 100
	eventRoute   = 101
	eventBackend = 102 // a backend of a route went down or up (backends.go)
)

// serviceLog receives the service's events: the Windows Event Log when it
// runs under the SCM, standard error on Linux. Its methods have the shape of
// x/sys/windows/svc/eventlog.Log's.
type serviceLog interface {
	Info(id uint32, msg string) error
	Warning(id uint32, msg string) error
	Error(id uint32, msg string) error
}

// The manual's event texts.
const (
	msgStarted    = "The Relay TCP Service was successfully started"
	msgStopped    = "The Relay TCP Service was successfully stopped"
	msgNoRoutes   = "There is no routes to relay. The Service is stopped"
	msgNoPause    = "The Relay TCP Service cannot be paused"
	msgStartError = "There was error %v when trying to start the Relay TCP Service"
	msgReady      = "The Relay TCP Service is ready to get data from local %s and relay to %s"
	msgNotBound   = "The Relay TCP Service couldn't bound %s to relay to %s (%v)"
	// A range whose ports could not all be listened on, with the ports and
	// reasons: "ports 8005, 8007-8009 (address already in use)".
	msgNotBoundPorts = "The Relay TCP Service couldn't bound %s to relay to %s"
	msgNoResolve     = "The Relay TCP Service couldn't resolve %s IP address. This relay cannot be done. (%v)"
	// A route with other backends runs without this one (Warning).
	msgNoResolveBackend = "The Relay TCP Service couldn't resolve %s IP address. The relay from local %s goes on with its other backends. (%v)"
	msgNoResources      = "The Relay TCP Service couldn't get resources to relay to %s (%v)"
	msgLogDir           = "The Relay TCP Service cannot write its logs in %s (%v). Relaying goes on."
	msgLogDirBack       = "The Relay TCP Service writes its logs in %s again" // the end of a msgLogDir incident (Information)
	msgReloaded         = "The Relay TCP Service configuration was reloaded: %s"
	msgBadReload        = "The Relay TCP Service configuration was not reloaded, the running one stays: %v"
	msgNoControl        = "The Relay TCP Service runs without its control channel (%v): relaytcp status shows no live numbers"
	msgNoMetrics        = "The Relay TCP Service cannot serve metrics on %s (%v). Relaying goes on."
	msgStopAsked        = "The Relay TCP Service was asked to stop through its control channel"
)

// stderrLog writes events as lines "RelayTCPsvc[ID] Severity: text", for
// journald and for a service run by hand.
type stderrLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *stderrLog) write(severity string, id uint32, msg string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := fmt.Fprintf(l.w, "RelayTCPsvc[%d] %s: %s\n", id, severity, msg)
	return err
}

func (l *stderrLog) Info(id uint32, msg string) error    { return l.write("Information", id, msg) }
func (l *stderrLog) Warning(id uint32, msg string) error { return l.write("Warning", id, msg) }
func (l *stderrLog) Error(id uint32, msg string) error   { return l.write("Error", id, msg) }
