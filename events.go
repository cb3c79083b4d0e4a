package main

import (
	"fmt"
	"time"
)

// EventKind says what happened to a route or a connection.
type EventKind int

// The kinds of Event a Relay reports.
const (
	// ConnOpened: a client was accepted and the remote side answered.
	ConnOpened EventKind = iota
	// ConnClosed: both directions of a relayed connection have ended.
	ConnClosed
	// ConnFailed: the remote side could not be reached; the client was closed.
	ConnFailed
	// AcceptFailed: accepting a client, or dialing for one, failed for lack
	// of resources or another accept error (the first error of an incident;
	// the route backs off and keeps trying).
	AcceptFailed
	// AcceptRecovered: a connection is relayed again after Failures errors.
	AcceptRecovered
	// DataLogFailed: the data log of a connection could not be created or
	// written; the connection goes on without it.
	DataLogFailed
	// ConnRefused: a client was closed at once by the route's access lists
	// or a connection cap (Err says which).
	ConnRefused
)

// Event is one thing that happened on a route, reported through Relay.Events.
type Event struct {
	Kind     EventKind
	Time     time.Time
	Route    int
	Client   string // the client's ip:port
	Remote   string // the remote side's ip:port, or host:port if it was never reached
	Sent     int64  // bytes relayed from the client to the remote side
	Received int64  // bytes relayed from the remote side to the client
	Duration time.Duration
	Failures int    // AcceptRecovered: how many accepts failed in the incident
	DataLog  string // ConnOpened: the data log file, if any
	Err      error  // why it failed or closed
}

// logTimeLayout is the manual's connection-log time stamp: 2000/08/20 00:18:35.
const logTimeLayout = "2006/01/02 15:04:05"

// String formats the event as one connection-log line, starting with the
// manual's time stamp and then a word that says what the line is:
//
//	2000/08/20 00:18:35 Connection from 127.0.0.1:4356 to 192.168.1.3:23
//	2000/08/20 00:18:40 Closed 127.0.0.1:4356 to 192.168.1.3:23 sent 120 received 3400 bytes in 5.012s (client closed)
func (e Event) String() string {
	ts := e.Time.Format(logTimeLayout)
	switch e.Kind {
	case ConnOpened:
		return fmt.Sprintf("%s Connection from %s to %s", ts, e.Client, e.Remote)
	case ConnClosed:
		return fmt.Sprintf("%s Closed %s to %s sent %d received %d bytes in %s (%v)",
			ts, e.Client, e.Remote, e.Sent, e.Received, e.Duration.Round(time.Millisecond), e.Err)
	case ConnFailed:
		return fmt.Sprintf("%s Failed %s to %s after %s: %v", ts, e.Client, e.Remote, e.Duration.Round(time.Millisecond), e.Err)
	case AcceptFailed:
		return fmt.Sprintf("%s Error on route %d, backing off: %v", ts, e.Route, e.Err)
	case AcceptRecovered:
		return fmt.Sprintf("%s Recovered on route %d after %d errors", ts, e.Route, e.Failures)
	case ConnRefused:
		return fmt.Sprintf("%s Refused %s to %s: %v", ts, e.Client, e.Remote, e.Err)
	case DataLogFailed:
		return fmt.Sprintf("%s DataLogError %s to %s: %v", ts, e.Client, e.Remote, e.Err)
	}
	return fmt.Sprintf("%s Event %d on route %d", ts, e.Kind, e.Route)
}
