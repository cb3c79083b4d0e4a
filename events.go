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
	// BackendDown: a backend (Remote) failed Checks checks in a row and
	// gets no new connections while others are up; Err is the last
	// failure.
	BackendDown
	// BackendUp: a backend that was down passed Checks checks in a row.
	BackendUp
	// BackendDisabled: an administrator took a backend out; its Open
	// connections finish. BackendEnabled: put back.
	BackendDisabled
	BackendEnabled
	// SessionOpened: a UDP client's first datagram opened its session to
	// Remote. SessionClosed: the session ended (Err: idle, evicted, relay
	// stopped), with its datagrams and bytes each way.
	SessionOpened
	SessionClosed
	// SessionsEvicting: a UDP route has Cap (its cap) sessions and
	// ends the least recently used for new clients; once per incident.
	SessionsEvicting
	// BufferCapped: a UDP route's sockets got a smaller receive buffer
	// than rcvbuf= asked (Err says what was granted, and why); once per
	// start of the route.
	BufferCapped
	// TLSFailed: a TLS handshake with a client, or an SNI route's
	// ClientHello, failed (Err says why); the client was closed.
	// TLSWarning: a route's changed certificate could not be loaded and
	// the one before is kept (tlscert.go), or a route starts with
	// backendtls=noverify (Err says which).
	TLSFailed
	TLSWarning
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
	Failures int   // AcceptRecovered: how many accepts failed in the incident
	Checks   int   // BackendDown, BackendUp: the checks in a row that decided it
	Cap      int   // SessionsEvicting: the route's session cap
	Open     int64 // BackendDisabled: the backend's open connections, which finish
	// SessionClosed: the datagrams relayed each way.
	SentDatagrams, ReceivedDatagrams int64
	DataLog                          string // ConnOpened: the data log file, if any
	// TLS is ConnOpened's TLS summary on a TLS route: version, cipher
	// suite, server name, client certificate (tlsconn.go).
	TLS string
	Err error // why it failed or closed
}

// logTimeLayout is the manual's connection-log time stamp: 2000/08/20 00:18:35.
const logTimeLayout = "2006/01/02 15:04:05"

// String formats the event as one connection-log line, the manual's time
// stamp and then Message:
//
//	2000/08/20 00:18:35 Connection from 127.0.0.1:4356 to 192.168.1.3:23
//	2000/08/20 00:18:40 Closed 127.0.0.1:4356 to 192.168.1.3:23 sent 120 received 3400 bytes in 5.012s (client closed)
func (e Event) String() string {
	return e.Time.Format(logTimeLayout) + " " + e.Message()
}

// Message is the event's text, starting with a word that says what it is.
func (e Event) Message() string {
	switch e.Kind {
	case ConnOpened:
		if e.TLS != "" {
			return fmt.Sprintf("Connection from %s to %s (%s)", e.Client, e.Remote, e.TLS)
		}
		return fmt.Sprintf("Connection from %s to %s", e.Client, e.Remote)
	case ConnClosed:
		return fmt.Sprintf("Closed %s to %s sent %d received %d bytes in %s (%v)",
			e.Client, e.Remote, e.Sent, e.Received, e.Duration.Round(time.Millisecond), e.Err)
	case ConnFailed:
		return fmt.Sprintf("Failed %s to %s after %s: %v", e.Client, e.Remote, e.Duration.Round(time.Millisecond), e.Err)
	case AcceptFailed:
		return fmt.Sprintf("Error on route %d, backing off: %v", e.Route, e.Err)
	case AcceptRecovered:
		return fmt.Sprintf("Recovered on route %d after %d errors", e.Route, e.Failures)
	case ConnRefused:
		return fmt.Sprintf("Refused %s to %s: %v", e.Client, e.Remote, e.Err)
	case BackendDown:
		return fmt.Sprintf("Backend %s of route %d is down: %v (%s)", e.Remote, e.Route, e.Err, plural(e.Checks, "failed check"))
	case BackendUp:
		return fmt.Sprintf("Backend %s of route %d is up (%s)", e.Remote, e.Route, plural(e.Checks, "good check"))
	case BackendDisabled:
		return fmt.Sprintf("Backend %s of route %d is disabled: it gets no new connections; %s finish", e.Remote, e.Route, plural(int(e.Open), "open connection"))
	case BackendEnabled:
		return fmt.Sprintf("Backend %s of route %d is enabled", e.Remote, e.Route)
	case SessionOpened:
		return fmt.Sprintf("Session from %s to %s/udp", e.Client, e.Remote)
	case SessionClosed:
		return fmt.Sprintf("Closed session %s to %s/udp sent %s %d bytes received %s %d bytes in %s (%v)",
			e.Client, e.Remote, plural(int(e.SentDatagrams), "datagram"), e.Sent, plural(int(e.ReceivedDatagrams), "datagram"), e.Received,
			e.Duration.Round(time.Millisecond), e.Err)
	case BufferCapped:
		return fmt.Sprintf("Route %d: %v", e.Route, e.Err)
	case SessionsEvicting:
		return fmt.Sprintf("Route %d has its maximum of %d UDP sessions: the least recently used ones end for new clients", e.Route, e.Cap)
	case TLSFailed:
		return fmt.Sprintf("TLS failed %s to %s: %v", e.Client, e.Remote, e.Err)
	case TLSWarning:
		return fmt.Sprintf("Route %d: %v", e.Route, e.Err)
	case DataLogFailed:
		return fmt.Sprintf("DataLogError %s to %s: %v", e.Client, e.Remote, e.Err)
	}
	return fmt.Sprintf("Event %d on route %d", e.Kind, e.Route)
}

// plural writes a count and a noun, adding the plural s when the count is
// not 1: "1 good check", "3 failed checks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
