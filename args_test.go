package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParseArgsAccepts: options may stand anywhere, in both spellings.
func TestParseArgsAccepts(t *testing.T) {
	tests := []struct {
		args []string
		want cliOptions
	}{
		{[]string{"1001", "10.3.100.14", "25"},
			cliOptions{listenPort: 1001, remoteHost: "10.3.100.14", remotePort: 25, drain: DefaultDrainTimeout, connectTimeout: DefaultConnectTimeout}},
		{[]string{"-d", "1001", "mail.example.com", "25", "-q"},
			cliOptions{listenPort: 1001, remoteHost: "mail.example.com", remotePort: 25, dataLog: true, quiet: true, drain: DefaultDrainTimeout, connectTimeout: DefaultConnectTimeout}},
		{[]string{"1001", "-drain", "2s", "[::1]", "--connect=500ms", "25"},
			cliOptions{listenPort: 1001, remoteHost: "::1", remotePort: 25, drain: 2 * time.Second, connectTimeout: 500 * time.Millisecond, connectSet: true}},
		{[]string{"65535", "::1", "1", "-drain=0s"},
			cliOptions{listenPort: 65535, remoteHost: "::1", remotePort: 1, connectTimeout: DefaultConnectTimeout}},
		{[]string{"80", "under_score.example.", "8080"},
			cliOptions{listenPort: 80, remoteHost: "under_score.example.", remotePort: 8080, drain: DefaultDrainTimeout, connectTimeout: DefaultConnectTimeout}},
	}
	defaults := func(o cliOptions) cliOptions {
		o.drain, o.connectTimeout = DefaultDrainTimeout, DefaultConnectTimeout
		return o
	}
	// As socat and ssh write them: [ADDR:]PORT for the local side, and
	// HOST:PORT as one argument for the remote side.
	tests = append(tests, []struct {
		args []string
		want cliOptions
	}{
		{[]string{"8080", "127.0.0.1:18080"}, defaults(cliOptions{listenPort: 8080, remoteHost: "127.0.0.1", remotePort: 18080})},
		{[]string{"127.0.0.1:8080", "host", "80"},
			defaults(cliOptions{listenPort: 8080, remoteHost: "host", remotePort: 80, limits: RouteSpec{BindAddr: "127.0.0.1"}})},
		{[]string{"[::1]:8080", "[::1]:80"}, defaults(cliOptions{listenPort: 8080, remoteHost: "::1", remotePort: 80, limits: RouteSpec{BindAddr: "::1"}})},
		{[]string{":8080", "web1.example:80", "-q"}, defaults(cliOptions{listenPort: 8080, remoteHost: "web1.example", remotePort: 80, quiet: true})},
		{[]string{"8000-8099", "10.0.0.5:9000-9099"},
			defaults(cliOptions{listenPort: 8000, listenPortEnd: 8099, remoteHost: "10.0.0.5", remotePort: 9000, remotePortEnd: 9099})},
		{[]string{"8000-8099", "10.0.0.5", "9000-9099"},
			defaults(cliOptions{listenPort: 8000, listenPortEnd: 8099, remoteHost: "10.0.0.5", remotePort: 9000, remotePortEnd: 9099})},
		{[]string{"127.0.0.1:8080", "-bind", "127.0.0.1", "h:80"},
			defaults(cliOptions{listenPort: 8080, remoteHost: "h", remotePort: 80, limits: RouteSpec{BindAddr: "127.0.0.1"}})},
		{[]string{"[::1]:8080", "h:80", "-bind", "[::1]"},
			defaults(cliOptions{listenPort: 8080, remoteHost: "h", remotePort: 80, limits: RouteSpec{BindAddr: "::1"}})},
	}...)
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		if err != nil || got != tt.want {
			t.Errorf("parseArgs(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

// TestParseArgsRejects: forms the command-line test table does not cover.
func TestParseArgsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"1000", "host", "+80"},
		{"1000", "host", " 80"},
		{"1000", "-bad-.com", "80"},
		{"1000", "a..b", "80"},
		{"1000", "[10.0.0.1]", "80"},
		{"1000", "host", "80", "-d=1"},
		{"1000", "host", "80", "-connect", "0s"},
		{"1000", "host", "80", "-drain", "-1s"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q) succeeded; want an error", args)
		}
	}
}

// TestParseArgsErrors: the errors of the local side and of HOST:PORT name
// the bad argument.
func TestParseArgsErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"8080"}, "missing remoteHost, remotePort"},
		{[]string{"8080", "host"}, `missing remotePort: write "host PORT" or "host:PORT"`},
		{[]string{"8080", "::1"}, `missing remotePort: write "::1 PORT" or "[::1]:PORT"`},
		{[]string{"8080", "[::1]"}, `missing remotePort: write "[::1] PORT" or "[::1]:PORT"`},
		{[]string{"8080", "host:80", "extra"}, `unexpected argument "extra"`},
		{[]string{"8080", "host", "80", "extra"}, `unexpected argument "extra"`},
		{[]string{"8080", "host:"}, `"host:": invalid remote port "": empty`},
		{[]string{"8080", "host:8o"}, `"host:8o": invalid remote port "8o": not a number`},
		{[]string{"8080", ":80"}, `":80" is not HOST:PORT (an IPv6 address as [fd00::5]:8080)`},
		{[]string{"8080", "bad host:80"}, `"bad host:80": invalid remote host "bad host": character ' ' is not allowed in a host name`},
		{[]string{"8080", "[::1:80"}, `"[::1:80" is not HOST:PORT (an IPv6 address as [fd00::5]:8080)`},
		{[]string{"8080", "10.0.0.5:9000-9099", "-also", "web2:80-81"}, `invalid also=web2:80-81: "web2:80-81": a backend has one port, not a range`},
		{[]string{"8080", "10.0.0.5:9000-9099"}, "remote port range 9000-9099 needs a local range of 100 ports"},
		{[]string{"localhost:8080", "h:80"}, `invalid local address "localhost:8080": "localhost" is not an IP address`},
		{[]string{"127.0.0.1:0", "h:80"}, `invalid listen port "0": must be 1-65535`},
		{[]string{"127.0.0.1:8080", "h:80", "-bind", "::1"}, `listen address 127.0.0.1 of "127.0.0.1:8080" differs from -bind ::1: give one of them`},
	} {
		if _, err := parseArgs(tt.args); err == nil || err.Error() != tt.want {
			t.Errorf("parseArgs(%q) error %v; want %q", tt.args, err, tt.want)
		}
	}
}

// TestCommandLineRemoteForms: the relay runs from the forms socat and ssh
// users type, [ADDR:]PORT and HOST:PORT; "relaytcp 8080 127.0.0.1:18080"
// used to say "missing remotePort".
func TestCommandLineRemoteForms(t *testing.T) {
	echo := echoServer(t)
	echoAddr := echo.Addr().String()
	for _, form := range []func(port string) []string{
		func(port string) []string { return []string{port, echoAddr, "-q"} },
		func(port string) []string {
			return []string{"127.0.0.1:" + port, "127.0.0.1", strconv.Itoa(portOf(echo.Addr()))}
		},
		func(port string) []string { return []string{"127.0.0.1:" + port, echoAddr} },
	} {
		port := strconv.Itoa(freePort(t))
		args := form(port)
		p := startProc(t, tempDir(t), args...)
		if err := p.waitLine("Ready to relay data to "+echoAddr, 20*time.Second); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, p.output())
		}
		roundTrip(t, "127.0.0.1:"+port, "form "+strings.Join(args, " "))
	}
}
