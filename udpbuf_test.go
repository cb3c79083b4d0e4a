package main

import (
	"errors"
	"strings"
	"testing"
)

// TestRcvBufOption: rcvbuf= in the route's text form, on the command line,
// and its bounds.
func TestRcvBufOption(t *testing.T) {
	checkSpecForms(t, []specForm{
		{"53 h 53 proto=udp rcvbuf=4m", "53 h 53 proto=udp rcvbuf=4M", "Route 3 : From local port 53/udp to IP h port 53 (rcvbuf=4M)"},
		{"53 h 53 rcvbuf=256k proto=udp maxconn=9", "53 h 53 proto=udp maxconn=9 rcvbuf=256K",
			"Route 3 : From local port 53/udp to IP h port 53 (maxconn=9 rcvbuf=256K)"},
		{"53 h 53 proto=udp rcvbuf=4096", "53 h 53 proto=udp rcvbuf=4K", "Route 3 : From local port 53/udp to IP h port 53 (rcvbuf=4K)"},
		{"53 h 53 proto=udp rcvbuf=5000", "53 h 53 proto=udp rcvbuf=5000", "Route 3 : From local port 53/udp to IP h port 53 (rcvbuf=5000)"},
		{"53 h 53 proto=udp rcvbuf=2048K", "53 h 53 proto=udp rcvbuf=2M", "Route 3 : From local port 53/udp to IP h port 53 (rcvbuf=2M)"},
		{"53 h 53 proto=udp rcvbuf=1024M", "53 h 53 proto=udp rcvbuf=1024M", "Route 3 : From local port 53/udp to IP h port 53 (rcvbuf=1024M)"},
	}, []specError{
		{"53 h 53 rcvbuf=4M", "option rcvbuf= applies only to proto=udp routes"},
		{"53 h 53 proto=tcp rcvbuf=4M", "option rcvbuf= applies only to proto=udp routes"},
		{"53 h 53 proto=udp rcvbuf=3K", "invalid rcvbuf=3K: want a size from 4K to 1024M"},
		{"53 h 53 proto=udp rcvbuf=4095", "invalid rcvbuf=4095: want a size from 4K to 1024M"},
		{"53 h 53 proto=udp rcvbuf=1025M", "invalid rcvbuf=1025M"},
		{"53 h 53 proto=udp rcvbuf=2G", "invalid rcvbuf=2G"},
		{"53 h 53 proto=udp rcvbuf=0M", "invalid rcvbuf=0M"},
		{"53 h 53 proto=udp rcvbuf=-4K", "invalid rcvbuf=-4K"},
		{"53 h 53 proto=udp rcvbuf=M", "invalid rcvbuf=M"},
		{"53 h 53 proto=udp rcvbuf=4 M", "invalid rcvbuf=4:"},
		{"53 h 53 proto=udp rcvbuf=", "invalid rcvbuf="},
		{"53 h 53 proto=udp rcvbuf=99999999999999999999K", "invalid rcvbuf=99999999999999999999K"},
	})
	if !strings.Contains(routeOptionNames, "rcvbuf") {
		t.Errorf("routeOptionNames lacks rcvbuf: %s", routeOptionNames)
	}
	opts, err := parseArgs([]string{"53", "10.0.0.2", "53", "-udp", "-rcvbuf", "8M"})
	if err != nil || opts.routeSpec().RcvBuf != 8<<20 || opts.routeSpec().Route().RcvBuf != 8<<20 {
		t.Errorf("-udp -rcvbuf 8M: %+v, %v", opts.routeSpec(), err)
	}
	for args, want := range map[string]string{
		"53 h 53 -rcvbuf 8M":       "option rcvbuf= applies only to proto=udp routes",
		"53 h 53 -udp -rcvbuf=8X":  "invalid rcvbuf=8X",
		"53 h 53 -udp -rcvbuf":     "option -rcvbuf needs a value",
		"53 h 53 -udp -rcvbuf=64k": "",
	} {
		_, err := parseArgs(strings.Fields(args))
		if got := errString(err); (want == "") != (err == nil) || !strings.Contains(got, want) {
			t.Errorf("parseArgs(%q): %v; want %q", args, err, want)
		}
	}
}

// TestBufferSize: the sizes in messages.
func TestBufferSize(t *testing.T) {
	for n, want := range map[int]string{4 << 20: "4 MiB", 425984: "416 KiB", 5000: "5000 bytes", 1536 << 10: "1536 KiB", 1 << 30: "1024 MiB"} {
		if got := bufferSize(n); got != want {
			t.Errorf("bufferSize(%d) = %q; want %q", n, got, want)
		}
	}
}

// TestRcvBufShortfall: what a route says when its sockets got less than
// rcvbuf= asked, and that it says nothing when they got it.
func TestRcvBufShortfall(t *testing.T) {
	for _, tt := range []struct {
		buf  rcvBuf
		want string
	}{
		{rcvBuf{asked: 4 << 20, granted: 4 << 20}, ""},
		{rcvBuf{asked: 4 << 20, granted: 4 << 20, forced: true}, ""},
		{rcvBuf{asked: 16 << 20, granted: 4 << 20}, "receive buffer 16 MiB asked, 4 MiB granted " + rcvBufCapHint},
		{rcvBuf{asked: 4 << 20, granted: 212992, err: errors.New("setsockopt SO_RCVBUF: no buffer space available")},
			"receive buffer 4 MiB asked: setsockopt SO_RCVBUF: no buffer space available; it has 208 KiB"},
	} {
		if got := tt.buf.shortfall(); got != tt.want {
			t.Errorf("%+v: %q; want %q", tt.buf, got, tt.want)
		}
	}
}
