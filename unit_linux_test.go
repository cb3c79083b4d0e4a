package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitPath is the systemd unit shipped in the Linux archives.
const unitPath = "scripts/relaytcp.service"

// readUnit parses a systemd unit file into its sections' settings (the last
// assignment of a key wins, as systemd reads single-valued settings).
func readUnit(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open unit: %v", err)
	}
	defer f.Close()
	unit := map[string]map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			unit[section] = map[string]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a setting: %q", path, n, line)
			}
			unit[section][strings.TrimSpace(key)] = strings.TrimSpace(value)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read unit: %v", err)
	}
	return unit
}

// parseTimespan parses the systemd time spans the unit uses: "5s", "500ms",
// "1min", or a bare number of seconds.
func parseTimespan(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	s = strings.ReplaceAll(s, " ", "")
	s = strings.ReplaceAll(s, "min", "m")
	s = strings.ReplaceAll(s, "sec", "s")
	return time.ParseDuration(s)
}

// systemdRestarts reports whether systemd restarts a service whose main
// process ended as st, under the Restart= policy, by the table in
// systemd.service(5): exit code 0 and SIGHUP, SIGINT, SIGTERM and SIGPIPE
// are clean; any other exit code is an unclean exit code, any other signal
// an unclean signal (timeouts and the watchdog do not apply here).
func systemdRestarts(policy string, st *os.ProcessState) bool {
	ws := st.Sys().(syscall.WaitStatus)
	clean, uncleanSignal := false, false
	switch {
	case ws.Exited():
		clean = ws.ExitStatus() == 0
	case ws.Signaled():
		switch ws.Signal() {
		case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE:
			clean = true
		default:
			uncleanSignal = true
		}
	}
	switch policy {
	case "always":
		return true
	case "on-success":
		return clean
	case "on-failure":
		return !clean
	case "on-abnormal", "on-abort":
		return uncleanSignal
	}
	return false // "no", "on-watchdog"
}

// TestUnitRestartPolicy: the unit restarts the service after a failure, not
// after a clean stop, and soon enough, but not so fast that systemd's start
// limit ends the retries of a crash loop.
func TestUnitRestartPolicy(t *testing.T) {
	unit := readUnit(t, unitPath)
	service := unit["Service"]
	if service == nil {
		t.Fatalf("%s has no [Service] section", unitPath)
	}
	// on-failure, not on-abnormal: a Go panic or fatal error exits with
	// status 2, which on-abnormal does not restart (TestUnitProcessExitContract).
	if got := service["Restart"]; got != "on-failure" {
		t.Errorf("Restart=%q; want on-failure", got)
	}
	restartSec, err := parseTimespan(service["RestartSec"])
	if err != nil || restartSec <= 0 {
		t.Fatalf("RestartSec=%q (%v); want a time span", service["RestartSec"], err)
	}
	if restartSec > time.Minute {
		t.Errorf("RestartSec=%v; want at most a minute: the relay should come back soon", restartSec)
	}
	// StartLimitIntervalSec and StartLimitBurst, in [Unit], default to 10 s
	// and 5: more starts than that in the interval and systemd gives up.
	interval, burst := 10*time.Second, 5
	if v, ok := unit["Unit"]["StartLimitIntervalSec"]; ok {
		if interval, err = parseTimespan(v); err != nil {
			t.Fatalf("StartLimitIntervalSec=%q: %v", v, err)
		}
	}
	if v, ok := unit["Unit"]["StartLimitBurst"]; ok {
		if burst, err = strconv.Atoi(v); err != nil {
			t.Fatalf("StartLimitBurst=%q: %v", v, err)
		}
	}
	if interval > 0 && time.Duration(burst)*restartSec <= interval {
		t.Errorf("RestartSec=%v: %d restarts fit in StartLimitIntervalSec=%v, so systemd would stop restarting a crash loop", restartSec, burst, interval)
	}
}

// serviceConfig writes a config file with one route to an echo server and
// returns its path.
func serviceConfig(t *testing.T, dir string) string {
	t.Helper()
	echo := echoServer(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	text := fmt.Sprintf("logdir %s\nroute %d 127.0.0.1 %d\n", filepath.Join(dir, "logs"), freePort(t), portOf(echo.Addr()))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestUnitProcessExitContract: what "relaytcp service" does that makes the
// unit's policy right. Stopped by SIGTERM (systemctl stop, shutdown) it
// exits 0, which systemd does not restart; crashed, it ends with a status
// or a signal that systemd restarts: a Go runtime crash (a panic, a fatal
// error, or SIGABRT as here) exits 2 with a goroutine trace, a kill (the
// OOM killer, kill -9) is a signal.
func TestUnitProcessExitContract(t *testing.T) {
	policy := readUnit(t, unitPath)["Service"]["Restart"]
	for _, tc := range []struct {
		name        string
		sig         syscall.Signal
		wantRestart bool
		wantStderr  string // in the output of the process, when not ""
	}{
		{"SIGTERM stops cleanly", syscall.SIGTERM, false, "The Relay TCP Service was successfully stopped"},
		{"SIGABRT crashes", syscall.SIGABRT, true, "SIGABRT"},
		{"SIGKILL kills", syscall.SIGKILL, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tempDir(t)
			p := startProc(t, dir, "service", "-config", serviceConfig(t, dir))
			p.waitStderr(t, "The Relay TCP Service was successfully started")
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code := p.wait(t, 20*time.Second)
			st := p.cmd.ProcessState
			if tc.sig == syscall.SIGTERM && code != exitOK {
				t.Errorf("after SIGTERM: %v; want exit code 0\n%s", st, p.output())
			}
			if tc.sig == syscall.SIGABRT && code == exitOK {
				t.Errorf("after SIGABRT: %v; want a non-zero status or a signal\n%s", st, p.output())
			}
			if got := systemdRestarts(policy, st); got != tc.wantRestart {
				t.Errorf("ended with %v: Restart=%s restarts it: %v; want %v", st, policy, got, tc.wantRestart)
			}
			if tc.wantStderr != "" && !strings.Contains(p.output(), tc.wantStderr) {
				t.Errorf("no %q in the output:\n%s", tc.wantStderr, p.output())
			}
		})
	}
}

// TestUnitRestartUnderSystemd runs the service as a transient systemd unit
// with the unit file's Restart= policy (and a short RestartSec) and checks
// with systemd itself: a crash is restarted, a SIGTERM is not. It needs
// systemd as the init system and root.
func TestUnitRestartUnderSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		comm, _ := os.ReadFile("/proc/1/comm")
		t.Skipf("systemd is not the init system here (no /run/systemd/system; PID 1 is %q)", strings.TrimSpace(string(comm)))
	}
	if _, err := exec.LookPath("systemd-run"); err != nil {
		t.Skip("no systemd-run here")
	}
	if os.Geteuid() != 0 {
		t.Skip("running a system unit needs root")
	}
	policy := readUnit(t, unitPath)["Service"]["Restart"]
	dir := tempDir(t)
	conf := serviceConfig(t, dir)
	unit := fmt.Sprintf("relaytcp-test-%d.service", rand.Uint32())
	run := exec.Command("systemd-run", "--unit="+unit, "--property=Restart="+policy, "--property=RestartSec=200ms",
		"--setenv="+execEnv+"=1", "--setenv=GORACE=atexit_sleep_ms=0", "--", os.Args[0], "service", "-config", conf)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("systemctl", "stop", unit).Run()
		exec.Command("systemctl", "reset-failed", unit).Run()
	})
	show := func(property string) string {
		out, _ := exec.Command("systemctl", "show", "--property="+property, "--value", unit).Output()
		return strings.TrimSpace(string(out))
	}
	running := func() int {
		pid, _ := strconv.Atoi(show("MainPID"))
		if show("ActiveState") != "active" {
			return 0
		}
		return pid
	}
	var pid int
	if !eventually(10*time.Second, func() bool { pid = running(); return pid != 0 }) {
		t.Fatalf("%s did not start: %s", unit, show("ActiveState"))
	}
	syscall.Kill(pid, syscall.SIGABRT)
	crashed := pid
	if !eventually(10*time.Second, func() bool { pid = running(); return pid != 0 && pid != crashed }) {
		t.Fatalf("systemd did not restart the crashed service (Restart=%s): %s", policy, show("ActiveState"))
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if !eventually(10*time.Second, func() bool { return show("ActiveState") == "inactive" }) {
		t.Fatalf("after SIGTERM %s is %s; want inactive", unit, show("ActiveState"))
	}
	// Longer than RestartSec: a restart would have begun by now.
	time.Sleep(time.Second)
	if state := show("ActiveState"); state != "inactive" {
		t.Errorf("systemd restarted the cleanly stopped service (Restart=%s): %s", policy, state)
	}
}
