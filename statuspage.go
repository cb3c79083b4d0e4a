package main

// The status page: what the metrics listener serves besides /metrics. GET /
// is one static HTML file (statuspage.html: its style, script and SVG
// drawing inline, nothing loaded from elsewhere), served as it is; its
// script fetches /status.json every 2 s and draws it. The page holds no
// data of its own, so nothing is ever written into HTML on the server, and
// the script puts every value in with textContent.

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:embed statuspage.html
var statusPageHTML []byte

// statusPageHeaders go with the page: it may run its own inline script and
// style and fetch from where it came from, and nothing else; no site may
// frame it.
const statusPageHeaders = "Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n" +
	"X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"

// statusDocument is /status.json: the document of `relaytcp status -json`,
// and after it the last minute's rates (history), which only /status.json
// has.
type statusDocument struct {
	*ServiceStatus
	History *StatusHistory `json:"history"`
}

// statusJSON is /status.json's body for st. It is plain data: the error
// would be a number that JSON has no form for (NaN), never seen.
func statusJSON(st *ServiceStatus, h *statusHistory) ([]byte, error) {
	body, err := json.Marshal(statusDocument{ServiceStatus: st, History: h.rates(st)})
	if err != nil {
		return nil, fmt.Errorf("status.json: %w", err)
	}
	return append(body, '\n'), nil
}
