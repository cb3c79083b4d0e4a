package main

// Metrics for Prometheus: the live status in the text exposition format
// 0.0.4, served at /metrics by an HTTP listener that is off unless
// configured (metrics ADDR:PORT, MetricsAddr, -metrics). Labels are the
// route's number and local side, and the backend's HOST:PORT: never a
// client's address, so the series stay few.

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// parseMetricsAddr checks a metrics listener address: IP:PORT ([IPV6]:PORT)
// or :PORT (every interface). It is not resolved: names are refused.
func parseMetricsAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("invalid metrics address %q: want IP:PORT, such as 127.0.0.1:9155", s)
	}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.Zone() != "" {
			return "", fmt.Errorf("invalid metrics address %q: %q is not an IP address", s, host)
		}
		host = ip.String()
	}
	p, err := parsePort("metrics port", port)
	if err != nil {
		return "", fmt.Errorf("invalid metrics address %q: %v", s, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// metricWriter writes metric families: a family's HELP and TYPE once, then
// its samples.
type metricWriter struct {
	w    io.Writer
	last string
	line []byte // a sample's line, reused: 1,000 routes make 20,000 lines
}

// sample writes one sample of family name (type typ) with labels given as
// name, value pairs.
func (m *metricWriter) sample(name, typ, help string, value float64, labels ...string) {
	b := m.line[:0]
	if name != m.last {
		b = fmt.Appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		m.last = name
	}
	b = append(b, name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]...)
			b = append(b, `="`...)
			b = append(b, escapeLabel(labels[i+1])...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, value, 'g', -1, 64)
	b = append(b, '\n')
	m.w.Write(b)
	m.line = b
}

// escapeLabel escapes a label value as the text format wants. Most values
// need nothing: a Replacer built for each label was most of the 360 ms of
// CPU that /metrics of 1,000 routes took (BenchmarkStatusPage).
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// writeMetrics writes st in the Prometheus text exposition format 0.0.4.
func writeMetrics(w io.Writer, st *ServiceStatus) {
	m := &metricWriter{w: w}
	m.sample("relaytcp_build_info", "gauge", "The relaytcp build: always 1.", 1, "version", st.Version, "commit", st.Commit)
	m.sample("relaytcp_start_time_seconds", "gauge", "When the relay started, in Unix seconds.", float64(st.Started.Unix()))
	m.sample("relaytcp_config_reloads_total", "counter", "Configurations applied without a restart.", float64(st.Reloads))

	type family struct {
		name, typ, help string
		value           func(RouteReport) float64
	}
	routeFamilies := []family{
		{"relaytcp_route_listening", "gauge", "1 while the route listens, 0 if it could not start or is disabled.",
			func(r RouteReport) float64 { return boolValue(r.Listening) }},
		{"relaytcp_route_disabled", "gauge", "1 while the route is switched off (disabled=1): it listens on nothing.",
			func(r RouteReport) float64 { return boolValue(r.Disabled) }},
		{"relaytcp_route_active_connections", "gauge", "Connections open now (connecting or relaying).",
			func(r RouteReport) float64 { return float64(r.Open) }},
		{"relaytcp_route_connections_total", "counter", "Connections relayed (a backend answered).",
			func(r RouteReport) float64 { return float64(r.Total) }},
		{"relaytcp_route_connect_errors_total", "counter", "Clients closed because no backend answered.",
			func(r RouteReport) float64 { return float64(r.Failed) }},
	}
	for _, f := range routeFamilies {
		for _, r := range st.Routes {
			m.sample(f.name, f.typ, f.help, f.value(r), "route", strconv.Itoa(r.Route), "listen", r.Listen)
		}
	}
	for _, r := range st.Routes {
		for _, d := range []struct {
			direction string
			n         int64
		}{{"sent", r.BytesSent}, {"received", r.BytesReceived}} {
			m.sample("relaytcp_route_bytes_total", "counter", "Bytes relayed: sent from clients to backends, received from backends to clients.",
				float64(d.n), "route", strconv.Itoa(r.Route), "listen", r.Listen, "direction", d.direction)
		}
	}
	for _, r := range st.Routes {
		for _, c := range []struct {
			reason string
			n      int64
		}{{"acl", r.RefusedACL}, {"maxconn", r.RefusedMaxConn}, {"proxy", r.RefusedProxy},
			{"clientmaxconn", r.RefusedClientMaxConn}, {"clientrate", r.RefusedClientRate}, {"global_clientmaxconn", r.RefusedGlobalClientMaxConn}} {
			m.sample("relaytcp_route_refused_total", "counter", "Clients refused: by allow=/deny= (acl), by maxconn= or the global cap (maxconn), for want of a PROXY header (proxy), by clientmaxconn=, clientrate= or the global clientmaxconn.",
				float64(c.n), "route", strconv.Itoa(r.Route), "listen", r.Listen, "reason", c.reason)
		}
	}

	writeLimitMetrics(m, st) // limitstatus.go
	for _, r := range st.Routes {
		if r.UDPReport == nil {
			continue
		}
		d := r.DatagramsDropped
		for _, c := range []struct {
			reason string
			n      int64
		}{{"queue", d.Queue}, {"denied", d.Denied}, {"maxconn", d.MaxConn}, {"backend", d.Backend}, {"client", d.Client}, {"rate", d.Rate}} {
			m.sample("relaytcp_route_datagrams_dropped_total", "counter", "UDP datagrams not relayed: a receive queue was full (queue), by allow=/deny= (denied), by a cap (maxconn), for want of a backend (backend), by a per-client limit (client), over rate= or connrate= (rate).",
				float64(c.n), "route", strconv.Itoa(r.Route), "listen", r.Listen, "reason", c.reason)
		}
	}
	for _, r := range st.Routes {
		if r.UDPReport != nil {
			m.sample("relaytcp_route_sessions_evicted_total", "counter", "UDP sessions ended for a new client at the route's maxconn=.",
				float64(r.SessionsEvicted), "route", strconv.Itoa(r.Route), "listen", r.Listen)
		}
	}

	writeTLSMetrics(m, st) // tlsstatus.go

	type backendFamily struct {
		name, typ, help string
		value           func(BackendReport) float64
	}
	backendFamilies := []backendFamily{
		{"relaytcp_backend_up", "gauge", "1 while the backend is up, 0 while it is down.",
			func(b BackendReport) float64 { return boolValue(b.State == "up") }},
		{"relaytcp_backend_disabled", "gauge", "1 while an administrator has disabled the backend.",
			func(b BackendReport) float64 { return boolValue(b.Disabled) }},
		{"relaytcp_backend_active_connections", "gauge", "Connections open to the backend now.",
			func(b BackendReport) float64 { return float64(b.Open) }},
		{"relaytcp_backend_connections_total", "counter", "Connections relayed to the backend.",
			func(b BackendReport) float64 { return float64(b.Total) }},
		{"relaytcp_backend_connect_errors_total", "counter", "Connects to the backend that failed.",
			func(b BackendReport) float64 { return float64(b.Failed) }},
	}
	for _, f := range backendFamilies {
		for _, r := range st.Routes {
			if !r.Listening {
				continue
			}
			for _, b := range r.Backends {
				m.sample(f.name, f.typ, f.help, f.value(b), "route", strconv.Itoa(r.Route), "listen", r.Listen, "backend", b.Backend)
			}
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
