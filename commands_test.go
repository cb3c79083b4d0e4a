//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runCmd runs relaytcp with args in dir, checks its exit code and returns
// its output.
func runCmd(t *testing.T, dir string, wantCode int, args ...string) string {
	t.Helper()
	p := startProc(t, dir, args...)
	if code := p.wait(t, 30*time.Second); code != wantCode {
		t.Fatalf("relaytcp %s: exit %d; want %d\n%s", strings.Join(args, " "), code, wantCode, p.output())
	}
	return p.output()
}

// TestConfigOptionAnywhere: -config may stand anywhere in a command's
// arguments, in each spelling; it had to come right after the command
// (route add -config F ... said invalid local port "-config").
func TestConfigOptionAnywhere(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	runCmd(t, dir, 0, "route", "add", "-config", conf, "8082", "127.0.0.1", "80")
	runCmd(t, dir, 0, "route", "add", "8083", "127.0.0.1", "80", "-config", conf)
	runCmd(t, dir, 0, "route", "add", "8084", "127.0.0.1", "80", "idle=1h", "--config", conf)
	runCmd(t, dir, 0, "route", "add", "8085", "127.0.0.1", "80", "-config="+conf)
	runCmd(t, dir, 0, "route", "--config="+conf, "add", "8086", "127.0.0.1", "80")
	out := runCmd(t, dir, 0, "route", "list", "-config", conf)
	for _, port := range []string{"8082", "8083", "8084", "8085", "8086"} {
		if !strings.Contains(out, "From local port "+port+" ") {
			t.Errorf("route list lacks port %s:\n%s", port, out)
		}
	}
	if out := runCmd(t, dir, 0, "status", "-json", "-config", conf); !strings.Contains(out, `"config": "8086 127.0.0.1 80"`) {
		t.Errorf("status -json -config F:\n%s", out)
	}
	runCmd(t, dir, 0, "route", "delete", ":8086", "-config", conf)
	// Nothing went to the default file.
	if data, _ := os.ReadFile(conf); strings.Count(string(data), "\nroute ") != 4 {
		t.Errorf("config file:\n%s", data)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"route", "list", "-config"}, "relaytcp route: -config needs a file name"},
		{[]string{"route", "list", "-config="}, "relaytcp route: -config needs a file name"},
		{[]string{"status", "-config", "-json"}, `relaytcp status: -config needs a file name, not "-json"`},
		{[]string{"route", "-config", conf, "list", "--config", conf}, "relaytcp route: -config given twice"},
	} {
		if out := runCmd(t, dir, exitUsage, tt.args...); !strings.Contains(out, tt.want) {
			t.Errorf("%q: want %q\n%s", tt.args, tt.want, out)
		}
	}
}

// TestConfigOptionForms: configOption takes the option out of any place
// of the arguments, leaving the others in order.
func TestConfigOptionForms(t *testing.T) {
	t.Setenv("RELAYTCP_CONFIG", "")
	for _, tt := range []struct {
		args    []string
		path    string
		rest    []string
		wantErr bool
	}{
		{nil, DefaultConfigPath, nil, false},
		{[]string{"list"}, DefaultConfigPath, []string{"list"}, false},
		{[]string{"-config", "F", "list"}, "F", []string{"list"}, false},
		{[]string{"add", "-config", "F", "8082", "h", "80"}, "F", []string{"add", "8082", "h", "80"}, false},
		{[]string{"add", "8082", "h", "80", "-config=F"}, "F", []string{"add", "8082", "h", "80"}, false},
		{[]string{"-json", "--config", "F"}, "F", []string{"-json"}, false},
		{[]string{"-json", "--config=F"}, "F", []string{"-json"}, false},
		{[]string{"-config"}, "", nil, true},
		{[]string{"-config", "F", "-config", "G"}, "", nil, true},
	} {
		path, rest, err := configOption(tt.args)
		if (err != nil) != tt.wantErr || err == nil && (path != tt.path || !slices.Equal(rest, tt.rest)) {
			t.Errorf("configOption(%q) = %q, %q, %v; want %q, %q (error %v)", tt.args, path, rest, err, tt.path, tt.rest, tt.wantErr)
		}
	}
}
