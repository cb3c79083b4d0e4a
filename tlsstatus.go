package main

// The handshakes of TLS routes in the status (text and JSON) and in the
// metrics: relaytcp_tls_handshakes_total{route,listen,result}.

import (
	"fmt"
	"strconv"
)

// TLSReport is what only a route with TLS options reports: its TLS
// handshakes with clients (tls=) and backends (backendtls=), and the
// ClientHellos of sni= that picked no route.
type TLSReport struct {
	TLSHandshakes       int64 `json:"tls_handshakes"`        // completed
	TLSHandshakesFailed int64 `json:"tls_handshakes_failed"` // failed, or no route for the ClientHello
}

// tlsReport is the TLS report of route spec, nil when it has no TLS.
func tlsReport(spec RouteSpec, rs RouteStatus) *TLSReport {
	if !spec.usesTLS() {
		return nil
	}
	return &TLSReport{TLSHandshakes: rs.TLSDone, TLSHandshakesFailed: rs.TLSFailed}
}

// counts is the end of a TLS route's status line: ", TLS 12 handshakes, 1
// failed". Nothing for other routes.
func (t *TLSReport) counts() string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf(", TLS %s, %d failed", plural(int(t.TLSHandshakes), "handshake"), t.TLSHandshakesFailed)
}

// writeTLSMetrics writes the TLS routes' handshake counters.
func writeTLSMetrics(m *metricWriter, st *ServiceStatus) {
	for _, r := range st.Routes {
		if r.TLSReport == nil {
			continue
		}
		for _, c := range []struct {
			result string
			n      int64
		}{{"done", r.TLSHandshakes}, {"failed", r.TLSHandshakesFailed}} {
			m.sample("relaytcp_tls_handshakes_total", "counter", "TLS handshakes of routes with tls=, backendtls= or sni=: completed (done), failed or matched no route (failed).",
				float64(c.n), "route", strconv.Itoa(r.Route), "listen", r.Listen, "result", c.result)
		}
	}
}
