package main

import (
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
