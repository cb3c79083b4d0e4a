package main

import (
	"strings"
	"testing"
)

// TestNeedsElevation: which command lines need an elevated process on
// Windows. The relay, status and every help never do.
func TestNeedsElevation(t *testing.T) {
	for _, tc := range []struct {
		args string
		want bool
	}{
		{"admin", true},
		{"route add 155 host 110", true},
		{"route delete 0", true},
		{"route disable :8082", true},
		{"route enable 2", true},
		{"route list", false},
		{"route", false}, // a usage error, said without a prompt
		{"route -h", false},
		{"route add -h", false},
		{"start", true},
		{"start -if-configured", true},
		{"stop", true},
		{"backend disable 0 web2:80", true},
		{"install", true},
		{"uninstall", true},
		{"firewall add", true}, // typed by an administrator; the MSI runs it elevated, so never relaunched there
		{"firewall remove", true},
		{"close-running", false}, // run by the MSI, elevated: never relaunched
		{"restore-config", false},
		{"status", false},
		{"status -json", false},
		{"version", false},
		{"service", false},
		{"help", false},
		{"admin -h", false},
		{"155 host 110", false},
		{"-h", false},
		{"", false},
	} {
		if got := needsElevation(strings.Fields(tc.args)); got != tc.want {
			t.Errorf("needsElevation(%q) = %v; want %v", tc.args, got, tc.want)
		}
	}
}
