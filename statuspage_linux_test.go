//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// updateScreenshotEnv, set to 1, makes TestStatusPageInBrowser write its
// screenshot to docs/images/status-page.png, the one the docs show.
const updateScreenshotEnv = "RELAYTCP_UPDATE_SCREENSHOT"

// pageRoute is what the page shows of a route, read from its DOM.
type pageRoute struct {
	ID, Listen, Proto, State, Why                     string
	Open, Total, Refused, Failed, Sent, Received, Cps string
	Backends                                          []struct{ Addr, State string }
}

// readPageRoutes reads every route card of the page.
const readPageRoutes = `[...document.querySelectorAll("#routes .route")].map(e => {
	const f = (name) => e.querySelector("[data-field=" + name + "]").textContent;
	return {ID: e.id, Listen: f("listen"), Proto: f("proto"), State: f("state"), Why: f("why"),
		Open: f("open"), Total: f("total"), Refused: f("refused"), Failed: f("failed"),
		Sent: f("sent"), Received: f("received"), Cps: f("cps"),
		Backends: [...e.querySelectorAll("[data-backend]")].map(b => ({Addr: b.dataset.backend,
			State: b.querySelector("[data-field=backend-state]").textContent}))};
})`

// TestStatusPageInBrowser: headless Chromium loads the page from a running
// service with traffic going through it. The route cards show what status
// -json says at the same time (state words, the reason a route does not
// listen, counts, bytes, a draining backend); a number changes after more
// traffic without a reload; the chart draws the minute's connections; on a
// phone's width the cards stand in one column without sideways scrolling;
// and once the service stops, the page says so instead of going blank.
func TestStatusPageInBrowser(t *testing.T) {
	f := startStatusFixture(t)
	plain := "127.0.0.1:" + strconv.Itoa(f.plain)
	for range 20 {
		exchange(t, plain, 10000)
	}
	for range 2 {
		relays("127.0.0.1:" + strconv.Itoa(f.denied))
	}
	held := dialTCP(t, "127.0.0.1:"+strconv.Itoa(f.capped))
	defer held.Close()
	if !echoes(held) {
		t.Fatal("the capped route does not relay its first connection")
	}
	relays("127.0.0.1:" + strconv.Itoa(f.capped))
	relays("127.0.0.1:" + strconv.Itoa(f.dead))
	open := dialTCP(t, plain)
	defer open.Close()
	if !echoes(open) {
		t.Fatal("route 0 does not relay")
	}
	if code, out := f.run(t, "backend", "disable", "5", f.live2.addr()); code != 0 {
		t.Fatalf("backend disable: %d\n%s", code, out)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/", f.metricsPort)
	c := startChromium(t, url, 1280, 900)
	if !c.waitFor(t, `document.querySelectorAll("#routes .route").length === 6 && document.getElementById("conn").dataset.asked`, 15*time.Second) {
		var body string
		c.eval(t, "document.body.innerText", &body)
		t.Fatalf("the page shows no 6 routes within 15 s:\n%s\nchromium:\n%s", body, c.stderr)
	}

	// The numbers of status -json, taken when nothing moves, against those
	// of a page refresh asked for after it; the same again after, so that
	// nothing moved between.
	st := f.status(t)
	taken := time.Now().UnixMilli()
	if !c.waitFor(t, fmt.Sprintf(`+document.getElementById("conn").dataset.asked > %d`, taken), 10*time.Second) {
		t.Fatal("the page did not refresh within 10 s")
	}
	var shown []pageRoute
	c.eval(t, readPageRoutes, &shown)
	if again := f.status(t); fmt.Sprint(again.Routes) != fmt.Sprint(st.Routes) {
		t.Fatalf("the numbers moved while the page was read:\n%+v\n%+v", st.Routes, again.Routes)
	}
	if len(shown) != len(st.Routes) {
		t.Fatalf("the page shows %d routes; status -json has %d", len(shown), len(st.Routes))
	}
	for i, r := range st.Routes {
		p := shown[i]
		want := pageRoute{ID: "route-" + strconv.Itoa(r.Route), Listen: r.Listen, Proto: r.Proto, State: r.State, Why: r.Error,
			Open: strconv.FormatInt(r.Open, 10), Total: strconv.FormatInt(r.Total, 10), Refused: strconv.FormatInt(r.Refused, 10),
			Failed: strconv.FormatInt(r.Failed, 10), Sent: byteSize(r.BytesSent), Received: byteSize(r.BytesReceived), Cps: p.Cps}
		for _, b := range r.Backends {
			state := b.State
			if b.Disabled {
				state = "draining, " + state
			}
			want.Backends = append(want.Backends, struct{ Addr, State string }{b.Backend, state})
		}
		if fmt.Sprint(p) != fmt.Sprint(want) {
			t.Errorf("route %d on the page:\n got %+v\nwant %+v", i, p, want)
		}
	}
	// The fixture's variety, so that the comparison above covers it.
	if shown[0].Total != "21" || shown[1].State != "not listening" || shown[1].Why != "address already in use" ||
		shown[2].Refused != "2" || shown[3].Open != "1" || shown[4].Failed != "1" || shown[5].Backends[1].State != "draining, up" {
		t.Errorf("the fixture's routes are not as the test expects: %+v", shown)
	}

	// More traffic: the same page instance (the marker survives: no
	// reload) shows the new total.
	c.eval(t, `window.relaytcpTestMarker = 25, true`, new(bool))
	for range 5 {
		exchange(t, plain, 1000)
	}
	if !c.waitFor(t, `document.querySelector("#route-0 [data-field=total]").textContent === "26"`, 10*time.Second) {
		var now []pageRoute
		c.eval(t, readPageRoutes, &now)
		t.Fatalf("route 0's total on the page is %q 10 s after 5 more connections; want 26", now[0].Total)
	}
	var marker int
	c.eval(t, `window.relaytcpTestMarker`, &marker)
	if marker != 25 {
		t.Fatal("the page was reloaded to show the new numbers")
	}
	// The chart: route 0's connections per second are above the zero line
	// somewhere (the sampler saw its traffic), route 1 (not listening) is
	// flat.
	if !c.waitFor(t, chartPoints("#route-0")+`.some(y => y < 28)`, 2*historyInterval+5*time.Second) {
		var d string
		c.eval(t, `document.querySelector("#route-0 path.cps").getAttribute("d")`, &d)
		t.Errorf("route 0's chart draws no connections: %s", d)
	}
	var flat bool
	if c.eval(t, chartPoints("#route-1")+`.every(y => y === 28)`, &flat); !flat {
		t.Error("the chart of route 1, which does not listen, is not flat")
	}

	// The screenshot the docs show: the whole page at 1280 wide; for the
	// docs' copy, after 40 s of traffic that rises and falls, so that the
	// charts have a shape.
	if os.Getenv(updateScreenshotEnv) == "1" {
		for i := range 80 {
			n := 1 + int(3*(1+math.Sin(float64(i)/5)))
			for range n {
				exchange(t, plain, 20000*n)
				whichBackend("127.0.0.1:"+strconv.Itoa(f.both), "")
			}
			if i%4 == 0 {
				relays("127.0.0.1:" + strconv.Itoa(f.capped))
				relays("127.0.0.1:" + strconv.Itoa(f.denied))
			}
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(historyInterval + time.Second) // the last sample, drawn
	}
	var height int
	c.eval(t, `document.documentElement.scrollHeight`, &height)
	c.viewport(t, 1280, height, false)
	time.Sleep(300 * time.Millisecond) // a frame at the new size
	shot := c.screenshot(t)
	checkPNG(t, shot, 1280)
	os.WriteFile(filepath.Join(t.ArtifactDir(), "status-page.png"), shot, 0o644)
	if os.Getenv(updateScreenshotEnv) == "1" {
		if err := os.WriteFile(filepath.Join("docs", "images", "status-page.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A phone: one column, nothing wider than the screen.
	c.viewport(t, 390, 844, true)
	if !c.waitFor(t, `(() => {
		const cards = [...document.querySelectorAll("#routes .route")];
		return document.documentElement.scrollWidth <= innerWidth &&
			cards.every(e => e.getBoundingClientRect().right <= innerWidth && e.getBoundingClientRect().left === cards[0].getBoundingClientRect().left);
	})()`, 5*time.Second) {
		var widths string
		c.eval(t, `JSON.stringify({inner: innerWidth, scroll: document.documentElement.scrollWidth, cards: [...document.querySelectorAll("#routes .route")].map(e => [e.getBoundingClientRect().left, e.getBoundingClientRect().right])})`, &widths)
		t.Errorf("at a phone's width the page scrolls sideways or has several columns: %s", widths)
	}
	os.WriteFile(filepath.Join(t.ArtifactDir(), "status-page-phone.png"), c.screenshot(t), 0o644)

	// The service stops: the page says so, and keeps the last numbers,
	// greyed out.
	f.p.cmd.Process.Signal(syscall.SIGTERM)
	if code := f.p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("the service exited with %d", code)
	}
	if !c.waitFor(t, `!document.getElementById("banner").hidden && document.body.classList.contains("stale")`, 10*time.Second) {
		var body string
		c.eval(t, "document.body.innerText", &body)
		t.Fatalf("10 s after the service stopped, the page does not say so:\n%s", body)
	}
	var banner string
	var cards int
	c.eval(t, `document.getElementById("banner").innerText`, &banner)
	c.eval(t, `document.querySelectorAll("#routes .route").length`, &cards)
	if !strings.Contains(banner, "Service stopped or unreachable") || cards != 6 {
		t.Errorf("the page of a stopped service: banner %q, %d route cards", banner, cards)
	}
	os.WriteFile(filepath.Join(t.ArtifactDir(), "status-page-stopped.png"), c.screenshot(t), 0o644)
}

// TestStatusCommandJSONSchema: the real commands' documents match the
// schema in docs/status-page.md: status -json of a running service and of
// a stopped one (no history), and the running service's /status.json.
func TestStatusCommandJSONSchema(t *testing.T) {
	schema := statusSchema(t)
	f := startStatusFixture(t)
	exchange(t, "127.0.0.1:"+strconv.Itoa(f.plain), 1000)
	statusJSONOf := func(what string) []byte {
		p := startProc(t, f.dir, "status", "-config", f.conf, "-json")
		if code := p.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("status -json (%s): exit %d\n%s", what, code, p.output())
		}
		return []byte(strings.Join(p.stdoutLines(), "\n"))
	}
	checkSchema(t, "status -json", statusJSONOf("running"), schema, false)
	_, _, doc := httpGet(t, "127.0.0.1:"+strconv.Itoa(f.metricsPort), "GET", "/status.json")
	checkSchema(t, "/status.json", doc, schema, true)

	f.p.cmd.Process.Signal(syscall.SIGTERM)
	if code := f.p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("the service exited with %d", code)
	}
	stopped := statusJSONOf("stopped")
	checkSchema(t, "status -json of a stopped service", stopped, schema, false)
	var st ServiceStatus
	if err := json.Unmarshal(stopped, &st); err != nil || st.State == "Running" || len(st.Routes) != 6 || st.Routes[0].State != "not listening" {
		t.Errorf("status -json of a stopped service: %v\n%s", err, stopped)
	}
}

// chartPoints is a JavaScript expression: the y of each point of the
// connections chart of the route card sel; its zero line is at 28.
func chartPoints(sel string) string {
	return `document.querySelector("` + sel + ` path.cps").getAttribute("d").split(/[MLHZ]/).filter(p => p.includes(",")).map(p => +p.split(",")[1])`
}

// checkPNG checks that data is a PNG image width pixels wide.
func checkPNG(t *testing.T, data []byte, width int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if w := img.Bounds().Dx(); w != width {
		t.Errorf("screenshot %d pixels wide; want %d", w, width)
	}
}
