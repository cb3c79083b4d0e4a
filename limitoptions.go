package main

// The fair-share options of a route (issue 26, docs/limits.md): how many
// connections and how many new connections a second one client may have,
// and how fast the route and each of its connections may move bytes.
//
//	route 8080 10.0.0.5 80 clientmaxconn=3 clientrate=20/1s rate=10M connrate=512K
//
// They are plain values held by RouteSpec and Route (embedded), so that
// specs still compare with ==; their text forms are parsed and written
// here, and the CLI flags of the same names set them too (args.go).

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults of the client grouping: an IPv4 client is its address, an IPv6
// client its /64 (one host usually holds a whole /64).
const (
	defaultClientPrefix4 = 32
	defaultClientPrefix6 = 64
)

// Limits are a route's fair-share options. The zero value is no limit.
type Limits struct {
	// ClientMaxConn is clientmaxconn=: the open connections (UDP:
	// sessions) one client may have on the route; 0 is no cap.
	ClientMaxConn int
	// ClientPrefix4 and ClientPrefix6 are clientprefix4= and
	// clientprefix6=: the prefix length that makes one client of an IPv4
	// and of an IPv6 address, for clientmaxconn=, clientrate= and the
	// global cap; 0 is the default (/32 and /64). An explicit /0 is
	// written as -1 here: every client of the family is one.
	ClientPrefix4, ClientPrefix6 int
	// ClientRate and ClientPer are clientrate=N/DURATION: at most
	// ClientRate new connections per ClientPer per client, in bursts of
	// up to ClientRate; 0 is no limit.
	ClientRate int
	ClientPer  time.Duration
	// Rate is rate=: bytes a second of the whole route in each direction,
	// shared by its connections; ConnRate is connrate=: bytes a second of
	// each connection in each direction. 0 is no cap.
	Rate, ConnRate int64
}

// limitOptionNames are the options of Limits, in the order options writes them.
const limitOptionNames = "clientmaxconn, clientprefix4, clientprefix6, clientrate, rate, connrate"

// isLimitOption reports whether key is one of Limits' options.
func isLimitOption(key string) bool {
	switch key {
	case "clientmaxconn", "clientprefix4", "clientprefix6", "clientrate", "rate", "connrate":
		return true
	}
	return false
}

// set sets one of Limits' options from its text form; the error
// names the bad value.
func (lim *Limits) set(key, value string) error {
	switch key {
	case "clientmaxconn":
		n, err := parseCount("clientmaxconn", value)
		if err != nil {
			return fmt.Errorf("invalid clientmaxconn=%s: want a number of connections per client, 1 or more", value)
		}
		lim.ClientMaxConn = n
	case "clientprefix4", "clientprefix6":
		bits := 32
		if key == "clientprefix6" {
			bits = 128
		}
		n, err := strconv.Atoi(value)
		if err != nil || strings.TrimLeft(value, "0123456789") != "" || n > bits {
			return fmt.Errorf("invalid %s=%s: want a prefix length from 0 to %d", key, value, bits)
		}
		if n == 0 {
			n = -1 // an explicit /0, not the default
		}
		if key == "clientprefix4" {
			lim.ClientPrefix4 = n
		} else {
			lim.ClientPrefix6 = n
		}
	case "clientrate":
		n, per, err := parseClientRate(value)
		if err != nil {
			return err
		}
		lim.ClientRate, lim.ClientPer = n, per
	case "rate", "connrate":
		n, err := parseByteRate(value)
		if err != nil {
			return fmt.Errorf("invalid %s=%s: %v", key, value, err)
		}
		if key == "rate" {
			lim.Rate = n
		} else {
			lim.ConnRate = n
		}
	default:
		return fmt.Errorf("unknown option %q", key+"=")
	}
	return nil
}

// parseClientRate parses clientrate='s N/DURATION: 20/1s, 100/1m. A
// bare unit stands for one of it (20/s, 100/m, 1000/h).
func parseClientRate(s string) (int, time.Duration, error) {
	bad := fmt.Errorf("invalid clientrate=%s: want new connections per client per duration, such as 20/1s or 100/1m", s)
	count, dur, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, bad
	}
	n, err := parseCount("clientrate", count)
	if err != nil {
		return 0, 0, bad
	}
	switch dur {
	case "s", "m", "h":
		dur = "1" + dur
	}
	per, err := time.ParseDuration(dur)
	if err != nil || per <= 0 || per > 24*time.Hour {
		return 0, 0, bad
	}
	return n, per, nil
}

// maxByteRate bounds rate= and connrate=: 1024G a second.
const maxByteRate = 1 << 40

// parseByteRate parses a rate in bytes a second: digits, then K, M or G
// (powers of 1024), then optionally "/s": 10M, 512K, 1500, 10M/s.
func parseByteRate(s string) (int64, error) {
	digits := strings.TrimSuffix(s, "/s")
	unit := int64(1)
	if n := len(digits); n > 0 {
		switch digits[n-1] {
		case 'K', 'k':
			unit = 1 << 10
		case 'M', 'm':
			unit = 1 << 20
		case 'G', 'g':
			unit = 1 << 30
		}
		if unit > 1 {
			digits = digits[:n-1]
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 || strings.TrimLeft(digits, "0123456789") != "" || n > maxByteRate/unit {
		return 0, fmt.Errorf("want bytes a second, 1 or more, with K, M or G (powers of 1024), such as 512K or 10M")
	}
	return n * unit, nil
}

// formatByteRate writes a rate as rate= takes it: 10M, 512K, 1500.
func formatByteRate(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// formatClientRate writes clientrate='s value: 20/1s, 100/1m.
func formatClientRate(n int, per time.Duration) string {
	return strconv.Itoa(n) + "/" + shortDuration(per)
}

// text returns the options that are set in text form, in
// limitOptionNames' order.
func (lim Limits) text() []string {
	var opts []string
	if lim.ClientMaxConn > 0 {
		opts = append(opts, "clientmaxconn="+strconv.Itoa(lim.ClientMaxConn))
	}
	if lim.ClientPrefix4 != 0 {
		opts = append(opts, "clientprefix4="+strconv.Itoa(max(lim.ClientPrefix4, 0)))
	}
	if lim.ClientPrefix6 != 0 {
		opts = append(opts, "clientprefix6="+strconv.Itoa(max(lim.ClientPrefix6, 0)))
	}
	if lim.ClientRate > 0 {
		opts = append(opts, "clientrate="+formatClientRate(lim.ClientRate, lim.ClientPer))
	}
	if lim.Rate > 0 {
		opts = append(opts, "rate="+formatByteRate(lim.Rate))
	}
	if lim.ConnRate > 0 {
		opts = append(opts, "connrate="+formatByteRate(lim.ConnRate))
	}
	return opts
}

// paced reports whether the route's bytes are paced (rate= or connrate=).
func (lim Limits) paced() bool { return lim.Rate > 0 || lim.ConnRate > 0 }

// admitsAll reports whether the route has no per-client limit of its own.
func (lim Limits) admitsAll() bool { return lim.ClientMaxConn == 0 && lim.ClientRate == 0 }

// prefixBits returns the prefix lengths that make one client, IPv4 and
// IPv6, with the defaults filled in.
func (lim Limits) prefixBits() (v4, v6 int) {
	v4, v6 = lim.ClientPrefix4, lim.ClientPrefix6
	if v4 == 0 {
		v4 = defaultClientPrefix4
	}
	if v6 == 0 {
		v6 = defaultClientPrefix6
	}
	return max(v4, 0), max(v6, 0)
}

// clientInterval is the time clientrate= allows between two new
// connections of a client on average (the token bucket's refill).
func (lim Limits) clientInterval() time.Duration {
	if lim.ClientRate <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(float64(lim.ClientPer) / float64(lim.ClientRate)))
}
