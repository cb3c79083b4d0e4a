package main

import (
	"fmt"
	"time"
)

// emptyConfigSettle is how long a configuration without routes must stay
// unchanged before the running service applies it: an editor or a deploy
// that truncates the file and then writes it, or a registry key emptied and
// filled again, must not stop every route in between.
const emptyConfigSettle = 2 * time.Second

// configCheckInterval is how often the service looks at its configuration
// unasked: for a changed config file on Linux; for a deleted Parameters key
// on Windows, and for its return.
const configCheckInterval = 2 * time.Second

// configReloader applies the configuration that the running service reads
// again (on SIGHUP, a changed file, a changed registry key), by the rules
// that keep a configuration caught in the middle of a change from stopping
// the routes; Linux (service_other.go) and Windows (service_windows.go)
// share them:
//   - a configuration that cannot be read (missing, unreadable, invalid)
//     keeps the running one; the error is reported once, as a warning,
//     until a configuration applies or the error changes;
//   - a configuration without routes applies only once it has stayed so,
//     unchanged, for Settle;
//   - any other applies at once.
type configReloader struct {
	// Load reads the configuration, and a version that changes with it
	// (the file's stamp, the key's last write time; "" when unknown).
	Load func() (cfg *Config, version string, err error)
	// Apply applies a configuration (service.apply).
	Apply func(*Config)
	// Log receives the warnings.
	Log serviceLog
	// Settle is how long a configuration without routes must stay
	// unchanged before it applies; zero means emptyConfigSettle.
	Settle time.Duration

	reported   string    // the error reported last; "" since a configuration applied
	empty      string    // the version of the configuration without routes that is settling
	emptySince time.Time // when it was first read; zero when none is settling
}

// Reload reads the configuration and applies it, keeps the running one, or
// lets a configuration without routes settle. It returns how long to wait
// before calling it again when one is settling, else 0. asked marks a
// reload the administrator asked for (SIGHUP): its error is reported even
// when it was already.
func (r *configReloader) Reload(now time.Time, asked bool) time.Duration {
	cfg, version, err := r.Load()
	if err != nil {
		r.emptySince = time.Time{}
		if msg := err.Error(); asked || msg != r.reported {
			r.reported = msg
			r.Log.Warning(eventService, fmt.Sprintf(msgBadReload, err))
		}
		return 0
	}
	if len(cfg.Routes) == 0 {
		if r.emptySince.IsZero() || version != r.empty {
			r.empty, r.emptySince = version, now
		}
		if wait := r.settle() - now.Sub(r.emptySince); wait > 0 {
			return wait
		}
	}
	r.emptySince, r.reported = time.Time{}, ""
	r.Apply(cfg)
	return 0
}

func (r *configReloader) settle() time.Duration {
	if r.Settle > 0 {
		return r.Settle
	}
	return emptyConfigSettle
}

// recheckAfter is a channel that fires after d, or never when d is 0: the
// wait Reload returns, for a select.
func recheckAfter(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return time.After(d)
}
