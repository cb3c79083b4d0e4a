package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCloseRunning: close-running, as the MSI's uninstall runs it, closes
// the admin menu and the command-line relay of the same executable (here
// the test binary), which say why, and ends a process of it that does not
// listen (under wine, "service" started from a console waits 10 s for the
// SCM). Failed before: nothing asked them, and the files stayed in use.
func TestCloseRunning(t *testing.T) {
	dir := tempDir(t)
	echo := echoServer(t)
	relay := startRelay(t, dir, "127.0.0.1", portOf(echo.Addr()))
	// An *os.File as stdin: exec then copies nothing, and Wait does not
	// wait for a copy that would never end.
	menuIn, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	menu := startProcWith(t, dir, func(c *exec.Cmd) { c.Stdin = menuIn }, "admin")
	menuIn.Close()
	if err := menu.waitLine("1-Start Service", 20*time.Second); err != nil {
		t.Fatalf("admin menu: %v\n%s", err, menu.output())
	}
	deaf := startProc(t, dir, "service")
	time.Sleep(500 * time.Millisecond)
	select {
	case <-deaf.done:
		t.Skip(`"relaytcp service" from a console ended at once (Windows, not wine): no process that ignores the request`)
	default:
	}

	var out bytes.Buffer
	start := time.Now()
	if err := closeRunning(&out, 5*time.Second); err != nil {
		t.Fatalf("closeRunning: %v\n%s", err, out.String())
	}
	if code := relay.wait(t, 5*time.Second); code != exitOK || !strings.Contains(relay.output(), "relaytcp is being uninstalled: the relay stops") || !strings.Contains(relay.output(), "It's all !") {
		t.Errorf("relay: exit %d\n%s", code, relay.output())
	}
	if code := menu.wait(t, 5*time.Second); code != exitOK || !strings.Contains(menu.output(), "relaytcp is being uninstalled: the administration menu closes.") {
		t.Errorf("admin menu: exit %d\n%s", code, menu.output())
	}
	if code := deaf.wait(t, 5*time.Second); code != exitRuntime || !strings.Contains(out.String(), "which did not close within 5s") {
		t.Errorf("deaf process: exit %d; close-running said %q", code, out.String())
	}
	if took := time.Since(start); took < 5*time.Second {
		t.Errorf("close-running ended the deaf process after %v, before its 5 s", took)
	}
	// The event is reset: a process started now stays.
	again := startRelay(t, dir, "127.0.0.1", portOf(echo.Addr()))
	time.Sleep(500 * time.Millisecond)
	select {
	case <-again.done:
		t.Errorf("a relay started after close-running closed at once:\n%s", again.output())
	default:
	}
}
