package main

// The running service's live status: what `relaytcp status`, `status
// -json`, the admin menu and the metrics show. The JSON field names are an
// interface (README, "Monitoring").

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ServiceStatus is the running service's state, as `relaytcp status -json`
// prints it.
type ServiceStatus struct {
	Service       string        `json:"service"`
	State         string        `json:"state"` // "Running", or the SCM's or systemd's word when it does not run
	Version       string        `json:"version"`
	Commit        string        `json:"commit"`
	Started       time.Time     `json:"started,omitzero"` // left out while the service does not run
	UptimeSeconds float64       `json:"uptime_seconds"`
	Reloads       int64         `json:"reloads"`
	LogDir        string        `json:"log_dir,omitempty"`        // the directory the running service writes its logs in
	ConnectionLog string        `json:"connection_log,omitempty"` // its connection log file of today, in LogDir
	Routes        []RouteReport `json:"routes"`
	// ConfigError is why the configuration on disk (or in the registry)
	// cannot be read, while the service goes on with the one it applied;
	// set by the status command, not by the service.
	ConfigError string `json:"config_error,omitempty"`
}

// newServiceStatus is the status of the service called name in state,
// as this build reports it: running since started (zero: it does not
// run), with no routes yet. Every status starts here: the service's, the
// status command's of a stopped service, the command-line relay's metrics.
func newServiceStatus(name, state string, started time.Time) *ServiceStatus {
	version, commit := buildVersion()
	st := &ServiceStatus{Service: name, State: state, Version: version, Commit: commit, Routes: []RouteReport{}}
	if !started.IsZero() {
		st.Started, st.UptimeSeconds = started, time.Since(started).Seconds()
	}
	return st
}

// RouteReport is one configured route: its configuration and what it is
// doing.
type RouteReport struct {
	Route          int             `json:"route"`  // its number in the configuration
	Listen         string          `json:"listen"` // the local side: ":155", "127.0.0.1:155"
	Config         string          `json:"config"` // the route's text form
	Proto          string          `json:"proto"`  // "tcp" or "udp"
	Listening      bool            `json:"listening"`
	State          string          `json:"state"`           // "listening", "not listening" or "disabled" (routeState)
	Disabled       bool            `json:"disabled"`        // disabled=1: switched off, listening on nothing
	Error          string          `json:"error,omitempty"` // why it is not listening, or on which ports of its range not
	Open           int64           `json:"open"`
	Total          int64           `json:"total"`
	Refused        int64           `json:"refused"`
	RefusedACL     int64           `json:"refused_acl"`
	RefusedMaxConn int64           `json:"refused_maxconn"`
	RefusedProxy   int64           `json:"refused_proxy"` // acceptproxy=1: no valid PROXY header
	Failed         int64           `json:"failed"`
	BytesSent      int64           `json:"bytes_sent"`
	BytesReceived  int64           `json:"bytes_received"`
	Backends       []BackendReport `json:"backends"`
	// Refusals by client limit, throughput under a cap (limitstatus.go).
	LimitReport
	// A UDP route's own numbers; nil for a TCP route. Embedded, so that
	// its fields are the route's own in JSON, and absent for TCP.
	*UDPReport
	// A TLS route's handshakes (tlsstatus.go); nil for a route without
	// TLS, likewise.
	*TLSReport
}

// UDPReport is what only a UDP route reports: the datagrams it did not
// relay, by reason, the sessions it evicted, and its receive buffer.
type UDPReport struct {
	DatagramsDropped DatagramDrops `json:"datagrams_dropped"`
	SessionsEvicted  int64         `json:"sessions_evicted"` // ended for a new client at maxconn=
	RcvBuf           int           `json:"rcvbuf"`           // bytes its sockets got (rcvbuf=, or less where the system caps it); 0 when not listening
}

// DatagramDrops are a UDP route's datagrams that were not relayed, by
// reason. The reasons tell a burst from a policy and from a fault.
type DatagramDrops struct {
	// Queue: a receive queue was full. The kernel dropped them on the
	// route's socket or a session's (Linux), or a session already held
	// maxQueued while its backend was connected: a burst.
	Queue int64 `json:"queue"`
	// Denied: allow= or deny= (refused_acl counts the same datagrams).
	Denied int64 `json:"denied"`
	// MaxConn: a cap. The relay's global cap left no room for a new
	// session (refused_maxconn counts those), or maxconn= evicted a
	// session before its backend was connected.
	MaxConn int64 `json:"maxconn"`
	// Backend: no backend could be reached for the session, or the
	// backend's socket refused the datagram (its port unreachable).
	Backend int64 `json:"backend"`
	// Client: a client's new session refused by clientmaxconn=,
	// clientrate= or the global clientmaxconn (refused_client* count the
	// same datagrams); Rate: over rate= or connrate= (limitstatus.go).
	Client int64 `json:"client"`
	Rate   int64 `json:"rate"`
}

// total is the datagrams dropped for any reason.
func (d DatagramDrops) total() int64 {
	return d.Queue + d.Denied + d.MaxConn + d.Backend + d.Client + d.Rate
}

// BackendReport is one backend of a route.
type BackendReport struct {
	Backend   string    `json:"backend"` // HOST:PORT
	Role      string    `json:"role"`    // "primary" or "backup"
	State     string    `json:"state"`   // "up" or "down"
	Disabled  bool      `json:"disabled"`
	Since     time.Time `json:"since,omitzero"`      // when it last went up or down, or started; left out while it does not run
	LastCheck time.Time `json:"last_check,omitzero"` // the active check's (check=) last connect; left out without check=
	Open      int64     `json:"open"`
	Total     int64     `json:"total"`
	Failed    int64     `json:"failed"`
}

// routeReport builds the report of route n (spec) from the relay's numbers
// (rs; zero when the route does not run, then why says why).
func routeReport(n int, spec RouteSpec, rs RouteStatus, why string) RouteReport {
	r := RouteReport{Route: n, Listen: spec.listen(), Config: spec.String(), Proto: cmp.Or(spec.Proto, "tcp"), Listening: rs.Listening,
		Open: rs.Open, Total: rs.Total, Refused: rs.RefusedACL + rs.RefusedCap + rs.RefusedProxy, RefusedACL: rs.RefusedACL,
		RefusedMaxConn: rs.RefusedCap, RefusedProxy: rs.RefusedProxy, Failed: rs.Failed, BytesSent: rs.Sent, BytesReceived: rs.Received,
		LimitReport: limitReport(rs.Limits)}
	r.Refused += r.LimitReport.refused()
	if spec.Proto == "udp" {
		r.UDPReport = &UDPReport{SessionsEvicted: rs.Evicted, RcvBuf: rs.RcvBuf, DatagramsDropped: DatagramDrops{
			Queue: rs.QueueDrops, Denied: rs.RefusedACL, MaxConn: rs.RefusedCap + rs.CapDrops, Backend: rs.BackendDrops,
			Client: r.LimitReport.refused(), Rate: rs.Limits.rateDrops}}
	}
	r.TLSReport = tlsReport(spec, rs) // tlsstatus.go
	switch {
	case spec.Disabled: // nothing is wrong: it listens on nothing on purpose
	case !rs.Listening:
		r.Error = cmp.Or(why, "not started")
	default:
		r.Error = why // a range missing some ports: "not on port 8005 (...)"
	}
	r.State, r.Disabled = routeState(spec, rs), spec.Disabled
	for _, b := range rs.Backends {
		br := BackendReport{Backend: b.Addr, Role: "primary", State: "up", Disabled: b.Disabled, Since: b.Since,
			LastCheck: b.LastCheck, Open: b.Open, Total: b.Total, Failed: b.Failed}
		if b.Backup {
			br.Role = "backup"
		}
		if !b.Up {
			br.State = "down"
		}
		r.Backends = append(r.Backends, br)
	}
	if !rs.Listening { // the configured backends, without numbers
		for i, a := range spec.backendAddrs() {
			role := "primary"
			if i > len(splitBackends(spec.Also)) {
				role = "backup"
			}
			r.Backends = append(r.Backends, BackendReport{Backend: a, Role: role, State: "down"})
		}
	}
	return r
}

// printLiveStatus prints the live part of `relaytcp status`: a line per
// route, a line per backend of routes that have several, then the uptime.
func printLiveStatus(w io.Writer, st *ServiceStatus) {
	fmt.Fprintln(w, "Live")
	for _, r := range st.Routes {
		fmt.Fprintln(w, r.line())
		if len(r.Backends) > 1 && r.Listening {
			for _, b := range r.Backends {
				fmt.Fprintln(w, b.line())
			}
		}
	}
	if len(st.Routes) == 0 {
		fmt.Fprintln(w, "(no routes)")
	}
	fmt.Fprintf(w, "Uptime  : %s since %s, %s\n", st.uptime(), st.Started.Local().Format(logTimeLayout), plural(int(st.Reloads), "reload"))
}

// line is the route's status line: the manual's route line, then its state
// and numbers.
func (r RouteReport) line() string {
	head := "Route " + strconv.Itoa(r.Route) + " : " + r.Config
	if spec, err := ParseRouteSpec(r.Config); err == nil {
		spec.Disabled = false // the state says it
		head = routeLine(r.Route, spec)
	}
	listening := "listening"
	switch {
	case r.Disabled: // and the numbers: its open connections drain
		listening = "disabled"
	case !r.Listening:
		return head + " : not listening: " + r.Error
	case r.Error != "":
		listening += " (" + r.Error + ")"
	}
	return fmt.Sprintf("%s : %s, %d open, %d total, %d refused, %d failed, sent %s, received %s%s%s",
		head, listening, r.Open, r.Total, r.Refused, r.Failed, byteSize(r.BytesSent), byteSize(r.BytesReceived), r.LimitReport.counts(), r.UDPReport.counts()+r.TLSReport.counts())
}

// counts is the end of a UDP route's status line: its dropped datagrams,
// with the reasons that dropped any, and its evicted sessions if any:
// ", 47 datagrams dropped (queue 44, denied 3), 2 sessions evicted".
// Nothing for a TCP route.
func (u *UDPReport) counts() string {
	if u == nil {
		return ""
	}
	d := u.DatagramsDropped
	s := ", " + plural(int(d.total()), "datagram") + " dropped"
	var why []string
	for _, r := range []struct {
		name string
		n    int64
	}{{"queue", d.Queue}, {"denied", d.Denied}, {"maxconn", d.MaxConn}, {"backend", d.Backend}, {"client", d.Client}, {"rate", d.Rate}} {
		if r.n > 0 {
			why = append(why, fmt.Sprintf("%s %d", r.name, r.n))
		}
	}
	if len(why) > 0 {
		s += " (" + strings.Join(why, ", ") + ")"
	}
	if u.SessionsEvicted > 0 {
		s += ", " + plural(int(u.SessionsEvicted), "session") + " evicted"
	}
	return s
}

// line is the backend's status line, under its route's.
func (b BackendReport) line() string {
	state := b.State
	if b.Disabled {
		state = "disabled (draining), " + state
	}
	role := ""
	if b.Role == "backup" {
		role = " (backup)"
	}
	return fmt.Sprintf("  Backend %s%s : %s since %s, %d open, %d total, %d failed",
		b.Backend, role, state, b.Since.Local().Format(logTimeLayout), b.Open, b.Total, b.Failed)
}

// uptime is how long the service has run, to the second.
func (st *ServiceStatus) uptime() string {
	return (time.Duration(st.UptimeSeconds) * time.Second).String()
}

// byteSize writes a byte count in decimal units with one decimal: 512 B,
// 12.3 MB, 1.2 GB.
func byteSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB", "PB"} {
		v /= 1000
		if v < 999.95 || unit == "PB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return fmt.Sprintf("%d B", n)
}
