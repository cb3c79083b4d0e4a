package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// reloadProbe drives a configReloader with configurations and versions
// the test sets, recording what it applies and reports.
type reloadProbe struct {
	r       *configReloader
	cfg     *Config
	version string
	err     error
	applied []*Config
	log     strings.Builder
	now     time.Time
}

func newReloadProbe(settle time.Duration) *reloadProbe {
	p := &reloadProbe{now: time.Unix(1e9, 0)}
	p.r = &configReloader{Settle: settle, Log: &stderrLog{w: &p.log},
		Load:  func() (*Config, string, error) { return p.cfg, p.version, p.err },
		Apply: func(c *Config) { p.applied = append(p.applied, c) }}
	return p
}

// reload advances the clock by after and reloads; it returns the wait
// Reload asked for.
func (p *reloadProbe) reload(after time.Duration, asked bool) time.Duration {
	p.now = p.now.Add(after)
	return p.r.Reload(p.now, asked)
}

// warnings counts the warnings logged so far.
func (p *reloadProbe) warnings() int { return strings.Count(p.log.String(), "] Warning: ") }

var oneRoute = &Config{Routes: []RouteSpec{{LocalPort: 155, RemoteHost: "a.example", RemotePort: 110}}}

// TestReloadReportsAnErrorOnce: a configuration that cannot be read keeps
// the running one; its error is a warning once per incident, again when it
// changes, when a reload is asked for, or after a configuration applied.
func TestReloadReportsAnErrorOnce(t *testing.T) {
	p := newReloadProbe(0)
	gone := &configMissingError{what: "config file /etc/relaytcp/relaytcp.conf"}
	p.err = gone
	for range 5 {
		if wait := p.reload(configCheckInterval, false); wait != 0 {
			t.Fatalf("an error asks to wait %v", wait)
		}
	}
	if n := p.warnings(); n != 1 || len(p.applied) != 0 || !strings.Contains(p.log.String(),
		"RelayTCPsvc[100] Warning: The Relay TCP Service configuration was not reloaded, the running one stays: config file /etc/relaytcp/relaytcp.conf does not exist\n") {
		t.Fatalf("5 reloads of a missing file: %d applied, log:\n%s", len(p.applied), p.log.String())
	}
	p.err = errors.New("relaytcp.conf:3: unknown setting")
	p.reload(0, false)
	p.reload(0, false)
	p.reload(0, true) // SIGHUP: the administrator wants an answer
	if n := p.warnings(); n != 3 {
		t.Fatalf("%d warnings; want 3 (a new error, then a SIGHUP)\n%s", n, p.log.String())
	}
	p.cfg, p.err = oneRoute, nil
	p.reload(0, false)
	if len(p.applied) != 1 || p.applied[0] != oneRoute {
		t.Fatalf("a good configuration after errors: applied %v", p.applied)
	}
	p.err = gone
	p.reload(0, false)
	if n := p.warnings(); n != 4 {
		t.Fatalf("a second incident: %d warnings; want 4", n)
	}
}

// TestReloadEmptyConfigSettles: a configuration without routes applies
// only once it has stayed so, unchanged, for the settle time; a change in
// between starts the time again, and routes back cancel it.
func TestReloadEmptyConfigSettles(t *testing.T) {
	const settle = 2 * time.Second
	p := newReloadProbe(settle)
	p.cfg, p.version = &Config{}, "v1"
	if wait := p.reload(0, false); wait != settle || len(p.applied) != 0 {
		t.Fatalf("first read of an empty configuration: wait %v, applied %d; want %v, 0", wait, len(p.applied), settle)
	}
	if wait := p.reload(settle/2, true); wait != settle/2 || len(p.applied) != 0 {
		t.Fatalf("half way: wait %v, applied %d; want %v, 0", wait, len(p.applied), settle/2)
	}
	p.version = "v2" // written again, still without routes: from the start
	if wait := p.reload(settle/2, false); wait != settle || len(p.applied) != 0 {
		t.Fatalf("changed: wait %v, applied %d; want %v, 0", wait, len(p.applied), settle)
	}
	if wait := p.reload(settle, false); wait != 0 || len(p.applied) != 1 || len(p.applied[0].Routes) != 0 {
		t.Fatalf("settled: wait %v, applied %v; want the empty configuration", wait, p.applied)
	}

	// Truncated, then written with its routes: never applied empty.
	p = newReloadProbe(settle)
	p.cfg, p.version = &Config{}, "0 bytes"
	p.reload(0, false)
	p.cfg, p.version = oneRoute, "written"
	if wait := p.reload(settle/4, false); wait != 0 || len(p.applied) != 1 || p.applied[0] != oneRoute {
		t.Fatalf("written again: wait %v, applied %v", wait, p.applied)
	}
	p.reload(settle, false)
	if len(p.applied) != 2 || p.applied[1] != oneRoute {
		t.Fatalf("the empty configuration was applied after all: %v", p.applied)
	}

	// An error in between starts the settling again.
	p = newReloadProbe(settle)
	p.cfg, p.version = &Config{}, "v"
	p.reload(0, false)
	p.err = errors.New("read config: permission denied")
	p.reload(settle/2, false)
	p.err = nil
	if wait := p.reload(settle/2, false); wait != settle || len(p.applied) != 0 {
		t.Fatalf("after an error: wait %v, applied %d; want %v, 0", wait, len(p.applied), settle)
	}

	// No Settle: the default.
	p = newReloadProbe(0)
	p.cfg = &Config{}
	if wait := p.reload(0, false); wait != emptyConfigSettle {
		t.Fatalf("default settle: wait %v; want %v", wait, emptyConfigSettle)
	}
}
