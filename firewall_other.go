//go:build !windows

package main

import (
	"fmt"
	"io"
)

// runFirewall: relaytcp changes no firewall outside Windows.
func runFirewall(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "relaytcp firewall: only on Windows; on Linux relaytcp adds no firewall rule: open the routes' ports yourself (ufw allow 8080/tcp, or firewall-cmd --add-port=8080/tcp --permanent && firewall-cmd --reload; see docs/firewall.md)")
	return exitUsage
}

// firewallStatus says nothing: there is no rule to check.
func firewallStatus(string) string { return "" }
