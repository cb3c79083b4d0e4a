//go:build linux

package main

// A headless Chromium for the status page's test, driven without a driver
// library: the DevTools protocol over --remote-debugging-pipe, where
// Chromium reads commands from its descriptor 3 and writes answers and
// events to its descriptor 4, each message a JSON text ending in a NUL.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// chromiumCallTimeout bounds one DevTools command.
const chromiumCallTimeout = 20 * time.Second

// chromium is a headless Chromium showing one page.
type chromium struct {
	cmd     *exec.Cmd
	in      *os.File // its descriptor 3: our commands
	out     *os.File // its descriptor 4: its answers and events
	r       *bufio.Reader
	stderr  *syncBuffer
	nextID  int
	session string // the page's, from Target.attachToTarget
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startChromium opens url in a headless Chromium of width × height and
// attaches to its page; the test is skipped, saying why, where Debian's
// chromium is not installed. Chromium is stopped when the test ends.
func startChromium(t *testing.T, url string, width, height int) *chromium {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium (Debian's chromium package) is not installed: the page was not loaded in a browser (scripts/test.sh installs it)")
	}
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &chromium{in: cmdW, out: outR, r: bufio.NewReader(outR), stderr: &syncBuffer{}}
	c.cmd = exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", fmt.Sprintf("--window-size=%d,%d", width, height), url)
	c.cmd.ExtraFiles = []*os.File{cmdR, outW} // descriptors 3 and 4
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	cmdR.Close()
	outW.Close()
	t.Cleanup(c.stop)

	var targets struct {
		TargetInfos []struct{ TargetID, Type, URL string } `json:"targetInfos"`
	}
	var page string
	deadline := time.Now().Add(chromiumCallTimeout)
	for page == "" && time.Now().Before(deadline) {
		if err := c.call("", "Target.getTargets", nil, &targets); err != nil {
			t.Fatalf("chromium: %v\n%s", err, c.stderr)
		}
		for _, ti := range targets.TargetInfos {
			if ti.Type == "page" && ti.URL == url {
				page = ti.TargetID
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if page == "" {
		t.Fatalf("chromium shows no page %s: %+v\n%s", url, targets, c.stderr)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call("", "Target.attachToTarget", map[string]any{"targetId": page, "flatten": true}, &attached); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	c.session = attached.SessionID
	return c
}

// call sends a command (to the page's session, or with session "" to the
// browser) and decodes its result into result; events on the way are
// skipped.
func (c *chromium) call(session, method string, params, result any) error {
	c.nextID++
	msg := map[string]any{"id": c.nextID, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	c.in.SetWriteDeadline(time.Now().Add(chromiumCallTimeout))
	if _, err := c.in.Write(append(data, 0)); err != nil {
		return fmt.Errorf("%s: send: %w", method, err)
	}
	c.out.SetReadDeadline(time.Now().Add(chromiumCallTimeout))
	for {
		raw, err := c.r.ReadBytes(0)
		if err != nil {
			return fmt.Errorf("%s: no answer: %w", method, err)
		}
		var ans struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw[:len(raw)-1], &ans); err != nil {
			return fmt.Errorf("%s: %w in %q", method, err, raw)
		}
		if ans.ID != c.nextID {
			continue // an event, or the answer to an earlier command
		}
		if ans.Error != nil {
			return fmt.Errorf("%s: %s", method, ans.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(ans.Result, result)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value
// (returned by value: JSON-able) into v.
func (c *chromium) eval(t *testing.T, expr string, v any) {
	t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := c.call(c.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		t.Fatalf("evaluate %q: %v", expr, err)
	}
	if e := res.ExceptionDetails; e != nil {
		t.Fatalf("evaluate %q: %s %s", expr, e.Text, e.Exception.Description)
	}
	if err := json.Unmarshal(res.Result.Value, v); err != nil {
		t.Fatalf("evaluate %q: %v in %s", expr, err, res.Result.Value)
	}
}

// waitFor evaluates a boolean expression every 100 ms until it is true or
// timeout passes.
func (c *chromium) waitFor(t *testing.T, expr string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		c.eval(t, "Boolean("+expr+")", &ok)
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// viewport sets the page's viewport: a desktop window, or a phone's
// (mobile: its viewport meta tag applies).
func (c *chromium) viewport(t *testing.T, width, height int, mobile bool) {
	t.Helper()
	if err := c.call(c.session, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, nil); err != nil {
		t.Fatal(err)
	}
}

// screenshot returns a PNG of the viewport.
func (c *chromium) screenshot(t *testing.T) []byte {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	if err := c.call(c.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// stop closes the browser, or kills it if it does not go within 10 s.
func (c *chromium) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	c.call("", "Browser.close", nil, nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	c.in.Close()
	c.out.Close()
}
