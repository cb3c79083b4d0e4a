package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// TestElevatorSeam: the decision to relaunch, through the elevator's
// seams (under wine every process is elevated). Not elevated, a command
// that needs it is relaunched with the same arguments and its exit code is
// the command's; a refused UAC prompt says so on the first line; the relay
// and status run here without asking.
func TestElevatorSeam(t *testing.T) {
	type outcome struct {
		ranHere  bool
		relaunch []string
		code     int
		stderr   string
	}
	try := func(elevated bool, relaunchErr error, args ...string) outcome {
		var o outcome
		e := elevator{
			isElevated: func() bool { return elevated },
			relaunch: func(a []string, stdout, stderr io.Writer) (int, error) {
				o.relaunch = a
				fmt.Fprintln(stdout, "elevated output")
				return 7, relaunchErr
			},
		}
		var stdout, stderr bytes.Buffer
		o.code = e.run(args, nil, &stdout, &stderr, func([]string, *os.File, io.Writer, io.Writer) int {
			o.ranHere = true
			return 0
		})
		o.stderr = stderr.String()
		return o
	}

	if o := try(false, nil, "route", "add", "155", "host", "110"); o.ranHere || strings.Join(o.relaunch, " ") != "route add 155 host 110" || o.code != 7 {
		t.Errorf("not elevated, route add: %+v; want relaunched with the same arguments, its exit code 7", o)
	}
	if o := try(false, nil, "admin"); o.ranHere || len(o.relaunch) != 1 || o.code != 7 {
		t.Errorf("not elevated, admin: %+v; want relaunched", o)
	}
	o := try(false, fmt.Errorf("run relaytcp.exe as administrator: %w", windows.ERROR_CANCELLED), "start")
	if first, _, _ := strings.Cut(o.stderr, "\n"); first != "relaytcp start: needs Run as administrator (the UAC prompt was refused)" || o.code != exitRuntime || o.ranHere {
		t.Errorf("refused prompt: %+v; want the first line to say it needs Run as administrator, exit %d", o, exitRuntime)
	}
	o = try(false, errors.New("no shell here"), "uninstall")
	if !strings.HasPrefix(o.stderr, "relaytcp uninstall: needs Run as administrator (asking Windows for it failed: no shell here)") || o.code != exitRuntime {
		t.Errorf("failed prompt: %+v", o)
	}
	for _, args := range [][]string{{"155", "127.0.0.1", "110"}, {"status"}, {"route", "list"}, {"version"}, {"admin", "-h"}} {
		if o := try(false, nil, args...); !o.ranHere || o.relaunch != nil {
			t.Errorf("not elevated, %q: %+v; want it run here, without a prompt", args, o)
		}
	}
	if o := try(true, nil, "route", "delete", "0"); !o.ranHere || o.relaunch != nil {
		t.Errorf("elevated, route delete: %+v; want it run here", o)
	}
}

// TestRelaunchElevated: the relaunch itself, through ShellExecuteEx's
// runas verb, with this test binary as relaytcp: the elevated process's
// standard output and error come back through the pipes, and its exit
// code. Where the prompt would be shown (not elevated on Windows) it
// skips: a test must not wait for a click.
func TestRelaunchElevated(t *testing.T) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("not elevated: the relaunch would show the UAC prompt")
	}
	t.Setenv(execEnv, "1") // the child runs relaytcp (TestMain)
	var stdout, stderr bytes.Buffer
	code, err := relaunchElevated([]string{"version"}, &stdout, &stderr)
	if err != nil || code != 0 || !strings.HasPrefix(stdout.String(), "relaytcp ") {
		t.Errorf("version: exit %d, %v, stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
	}
	stdout.Reset()
	code, err = relaunchElevated([]string{"route", "frobnicate"}, &stdout, &stderr)
	if err != nil || code != exitUsage || !strings.Contains(stderr.String(), `relaytcp route: unknown route command "frobnicate"`) || stdout.Len() != 0 {
		t.Errorf("route frobnicate: exit %d, %v, stdout %q, stderr %q; want exit %d and the error on stderr", code, err, stdout.String(), stderr.String(), exitUsage)
	}
}
