package main

import (
	"strings"
	"testing"
)

// TestMetricLines: a family's HELP and TYPE come once, before its first
// sample; label values are escaped as the text format wants (backslash,
// quote, newline) and left as they are otherwise; values print in Go's
// shortest form.
func TestMetricLines(t *testing.T) {
	var out strings.Builder
	m := &metricWriter{w: &out}
	m.sample("relaytcp_x", "gauge", "An x.", 1, "route", "0", "listen", ":155")
	m.sample("relaytcp_x", "gauge", "An x.", 2.5, "route", "1", "backend", `we"ird\host`+"\nx")
	m.sample("relaytcp_y", "counter", "A y.", 1e21)
	m.sample("relaytcp_y", "counter", "A y.", 123456789012, "a", "")
	want := `# HELP relaytcp_x An x.
# TYPE relaytcp_x gauge
relaytcp_x{route="0",listen=":155"} 1
relaytcp_x{route="1",backend="we\"ird\\host\nx"} 2.5
# HELP relaytcp_y A y.
# TYPE relaytcp_y counter
relaytcp_y 1e+21
relaytcp_y{a=""} 1.23456789012e+11
`
	if out.String() != want {
		t.Errorf("metric lines:\n%s\nwant:\n%s", out.String(), want)
	}
}
