package main

// The documentation's examples, run: every fenced ```sh and ```console
// block of README.md and docs/*.md runs in a shell, page by page, against
// local servers, with relaytcp on PATH; where the page shows what a block
// prints (a ```text block after it, or the lines of a console block that do
// not start with "$ "), those lines must be printed. A doc that drifts from
// the program fails here.

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The rules, for the people who write the docs:
//
//   - ```sh blocks are commands, one a line (a line ending in \ goes on, a
//     heredoc runs to its end); ```console blocks are "$ COMMAND" lines and
//     the lines they print. Every block of a page runs in one shell, in
//     order, in an empty directory of its own, with relaytcp on PATH.
//   - A ```text block right after a ```sh block (blank lines, or one short
//     paragraph ending in ":", between) is what the sh block prints: each of
//     its lines must be printed (by the block's commands or by what they
//     started in the background), in any order. Numbers may differ (times,
//     ports, counts, versions), "..." stands for any text; the words may not.
//   - A command ending in "&" runs in the background; the next command runs
//     once it listens on a socket (a relaytcp service: once its control
//     channel listens). A command must exit 0 unless it ends with a comment
//     "# exit N".
//   - Ports 8080-8089, 18080-18089, 9155 and 5353 in commands are replaced
//     by free ports, the same one for the same number throughout a page.
//   - A block that cannot run on Linux without internet or root is a
//     ```cmd or ```powershell block (Windows), or has the HTML comment
//     <!-- not run: REASON --> on the line before it. Every fence names its
//     language, so that no shell block goes unrun by mistake.

// docPortRe finds the ports the docs may use, to be replaced by free ones.
var docPortRe = regexp.MustCompile(`\b(808[0-9]|1808[0-9]|9155|5353)\b`)

// docRangeRe finds a range of those ports (8080-8082).
var docRangeRe = regexp.MustCompile(`\b(808[0-9]|1808[0-9])-(808[0-9]|1808[0-9])\b`)

// freePortRange returns the first of n TCP ports in a row that were all
// free a moment ago (listening on each, UDP too, then closing them).
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		base := 20000 + rand.IntN(10000)
		var open []io.Closer
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			open = append(open, ln)
			pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			open = append(open, pc)
		}
		for _, c := range open {
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d free ports in a row in 100 tries", n)
	return 0
}

// docBlock is one fenced block of a page.
type docBlock struct {
	file string
	line int      // the fence's line, from 1
	lang string   // the fence's language
	body []string // its lines
	skip string   // why it is not run ("" for a block that runs)
	// expect is what the block prints (console lines not starting with
	// "$ ", or the ```text block after it), with the line each is on.
	expect     []string
	expectLine []int
}

// docCommand is one command of a runnable block.
type docCommand struct {
	text       string
	line       int
	background bool
	exit       int
}

var (
	docExitRe     = regexp.MustCompile(`#\s*exit (?:code )?(\d+)\s*$`)
	docCommentRe  = regexp.MustCompile(`\s+#[^'"]*$`)
	docHeredocRe  = regexp.MustCompile(`<<-?\s*'?"?([A-Za-z_]+)'?"?`)
	docNotRunRe   = regexp.MustCompile(`^<!--\s*not run:\s*(.*?)\s*-->$`)
	docWindowsSet = map[string]bool{"cmd": true, "powershell": true, "bat": true, "ps1": true, "pwsh": true}
)

// parseDocBlocks reads a page's fenced blocks and ties each ```text block
// that follows a shell block to it as its output.
func parseDocBlocks(file string, data []byte) ([]*docBlock, error) {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var blocks []*docBlock
	var cur *docBlock
	var between []string // prose lines since the last block ended
	lastNonBlank := ""
	for i, l := range lines {
		fence := strings.HasPrefix(strings.TrimLeft(l, " "), "```")
		if cur != nil {
			if fence && strings.TrimSpace(l) == "```" {
				blocks = append(blocks, cur)
				cur, between, lastNonBlank = nil, nil, ""
				continue
			}
			cur.body = append(cur.body, l)
			continue
		}
		if !fence {
			if strings.TrimSpace(l) != "" {
				between = append(between, l)
				lastNonBlank = strings.TrimSpace(l)
			}
			continue
		}
		lang := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), "`"))
		if lang == "" {
			return nil, fmt.Errorf("%s:%d: a fenced block without a language: write ```sh for commands the test runs, ```console for $-prompted ones, ```text for anything else (the rules: docexamples_linux_test.go)", file, i+1)
		}
		b := &docBlock{file: file, line: i + 1, lang: lang}
		if m := docNotRunRe.FindStringSubmatch(lastNonBlank); m != nil {
			if m[1] == "" {
				return nil, fmt.Errorf("%s:%d: <!-- not run: --> without a reason", file, i+1)
			}
			b.skip = m[1]
		}
		// A text block right after a shell block is its output.
		if lang == "text" && len(blocks) > 0 {
			prev := blocks[len(blocks)-1]
			if prev.lang == "sh" && prev.skip == "" && docOutputBridge(between) {
				b.skip = "the output of the block at line " + strconv.Itoa(prev.line)
				cur = b
				continue
			}
		}
		cur = b
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a fenced block that does not end", file, cur.line)
	}
	// Tie outputs: a text block whose skip names a previous block.
	for i, b := range blocks {
		if b.lang != "text" || !strings.HasPrefix(b.skip, "the output of") || i == 0 {
			continue
		}
		prev := blocks[i-1]
		for j, l := range b.body {
			if strings.TrimSpace(l) != "" {
				prev.expect = append(prev.expect, l)
				prev.expectLine = append(prev.expectLine, b.line+1+j)
			}
		}
	}
	for _, b := range blocks {
		if b.lang != "console" {
			continue
		}
		for j, l := range b.body {
			if !strings.HasPrefix(l, "$ ") && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "> ") {
				b.expect = append(b.expect, l)
				b.expectLine = append(b.expectLine, b.line+1+j)
			}
		}
	}
	return blocks, nil
}

// docOutputBridge reports whether the prose between a shell block and a
// text block makes the text block its output: nothing, or one paragraph
// (at most 3 lines) ending in ":".
func docOutputBridge(between []string) bool {
	if len(between) == 0 {
		return true
	}
	return len(between) <= 3 && strings.HasSuffix(strings.TrimSpace(between[len(between)-1]), ":")
}

// commands splits a runnable block into its commands.
func (b *docBlock) commands() []docCommand {
	var cmds []docCommand
	body := b.body
	for i := 0; i < len(body); i++ {
		l := body[i]
		if b.lang == "console" {
			if !strings.HasPrefix(l, "$ ") {
				continue
			}
			l = strings.TrimPrefix(l, "$ ")
		}
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		c := docCommand{line: b.line + 1 + i}
		text := []string{l}
		for strings.HasSuffix(text[len(text)-1], `\`) && i+1 < len(body) {
			i++
			text = append(text, strings.TrimPrefix(body[i], "> "))
		}
		if m := docHeredocRe.FindStringSubmatch(l); m != nil {
			for i+1 < len(body) {
				i++
				text = append(text, body[i])
				if strings.TrimSpace(body[i]) == m[1] {
					break
				}
			}
		}
		last := text[len(text)-1]
		if m := docExitRe.FindStringSubmatch(last); m != nil {
			c.exit, _ = strconv.Atoi(m[1])
		}
		bare := strings.TrimSpace(docCommentRe.ReplaceAllString(last, ""))
		c.background = strings.HasSuffix(bare, "&") && !strings.HasSuffix(bare, "&&")
		c.text = strings.Join(text, "\n")
		cmds = append(cmds, c)
	}
	return cmds
}

// docVolatileRe finds what may differ between the docs and a run: "...",
// versions, durations and numbers.
var docVolatileRe = regexp.MustCompile(`\.\.\.|v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.+-]*[0-9A-Za-z])?|(?:\d+(?:\.\d+)?(?:ms|µs|ns|h|m|s))+\b|[0-9a-f]{40}|\d+`)

// docLinePattern turns a line the docs show into a pattern for a printed
// line: numbers, versions and durations may differ, "..." is any text.
func docLinePattern(line string) *regexp.Regexp {
	var sb strings.Builder
	sb.WriteString("^")
	last := 0
	for _, m := range docVolatileRe.FindAllStringIndex(line, -1) {
		sb.WriteString(regexp.QuoteMeta(line[last:m[0]]))
		tok := line[m[0]:m[1]]
		switch {
		case tok == "...":
			sb.WriteString(".*")
		case strings.Count(tok, ".") >= 2 && strings.Contains(tok, "-") || strings.HasPrefix(tok, "v") && strings.Count(tok, ".") >= 2:
			sb.WriteString(`v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.+-]*[0-9A-Za-z])?`)
		case len(tok) == 40 && strings.ContainsAny(tok, "abcdef"):
			sb.WriteString(`[0-9a-f]{40}`)
		case strings.ContainsAny(tok, "hms") || strings.Contains(tok, "µ"):
			sb.WriteString(`(?:\d+(?:\.\d+)?(?:ms|µs|ns|h|m|s))+`)
		default:
			// A plain version without a suffix (0.0.0) falls here too.
			if strings.Count(tok, ".") >= 2 {
				sb.WriteString(`v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.+-]*[0-9A-Za-z])?`)
			} else {
				sb.WriteString(`\d+`)
			}
		}
		last = m[1]
	}
	sb.WriteString(regexp.QuoteMeta(line[last:]))
	sb.WriteString("$")
	return regexp.MustCompile(sb.String())
}

// docShell is the shell a page's blocks run in: one bash, reading commands
// from a pipe, printing a marker with the exit code after each.
type docShell struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     *os.File
	token  string
	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
}

func startDocShell(t *testing.T, dir string, env []string) *docShell {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &docShell{t: t, in: w, token: fmt.Sprintf("@@doc-%d", time.Now().UnixNano())}
	loop := `while IFS= read -r -d '' __doc_cmd <&3; do eval "$__doc_cmd"; printf '\n` + s.token + ` %d %s\n' "$?" "$!"; done`
	s.cmd = exec.Command("bash", "--noprofile", "--norc", "-c", loop)
	s.cmd.Dir = dir
	s.cmd.Env = env
	s.cmd.Stdout = s
	s.cmd.Stderr = s
	s.cmd.ExtraFiles = []*os.File{r}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("bash: %v", err)
	}
	r.Close()
	t.Cleanup(s.stop)
	return s
}

// Write collects the shell's output and its background commands'.
func (s *docShell) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *docShell) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// printed is what the page printed from offset start on, without the
// shell's markers.
func (s *docShell) printed(start int) string {
	var keep []string
	for _, l := range strings.Split(s.output()[start:], "\n") {
		if !strings.HasPrefix(l, s.token) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// stop ends the shell and everything it started (its process group).
func (s *docShell) stop() {
	if s.closed {
		return
	}
	s.closed = true
	s.in.Close()
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-done:
			syscall.Kill(-pgid, syscall.SIGKILL) // what ignored SIGTERM
			return
		case <-deadline:
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
			return
		case <-time.After(100 * time.Millisecond):
			// The shell ends at once on SIGTERM; its children may take the
			// drain time: wait for the group to be empty.
			if syscall.Kill(-pgid, 0) != nil {
				<-done
				return
			}
		}
	}
}

// run runs one command and returns its exit code, the PID of the last
// background command, and what was printed meanwhile (so far).
func (s *docShell) run(c docCommand, timeout time.Duration) (int, int, string, error) {
	start := len(s.output())
	if _, err := s.in.WriteString(c.text + "\n\x00"); err != nil {
		return 0, 0, "", fmt.Errorf("the shell is gone: %v", err)
	}
	marker := regexp.MustCompile(regexp.QuoteMeta(s.token) + ` (\d+) (\d*)\n`)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out := s.output()[start:]
		if m := marker.FindStringSubmatchIndex(out); m != nil {
			rc, _ := strconv.Atoi(out[m[2]:m[3]])
			pid, _ := strconv.Atoi(out[m[4]:m[5]])
			return rc, pid, out[:m[0]], nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, 0, s.output()[start:], fmt.Errorf("did not end within %v", timeout)
}

// listeningInodes returns the inodes of the listening sockets (TCP in
// LISTEN, bound UDP, Unix sockets that accept) of this network namespace,
// and which of them are Unix sockets.
func listeningInodes() (all, unix map[string]bool) {
	all, unix = map[string]bool{}, map[string]bool{}
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		data, _ := os.ReadFile("/proc/net/" + f)
		for _, l := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) < 10 || (strings.HasPrefix(f, "tcp") && fs[3] != "0A") {
				continue
			}
			all[fs[9]] = true
		}
	}
	data, _ := os.ReadFile("/proc/net/unix")
	for _, l := range strings.Split(string(data), "\n")[1:] {
		fs := strings.Fields(l)
		if len(fs) >= 7 && fs[3] == "00010000" {
			all[fs[6]] = true
			unix[fs[6]] = true
		}
	}
	return all, unix
}

// listens reports whether process pid listens on a socket (a Unix socket
// when wantUnix).
func listens(pid int, wantUnix bool) bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	all, unix := listeningInodes()
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		inode := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
		if wantUnix && unix[inode] || !wantUnix && all[inode] {
			return true
		}
	}
	return false
}

// matchDocOutput checks that every expected line is among the printed
// lines, each printed line used once; it returns the lines not found.
func matchDocOutput(expect []string, printed string) []int {
	var lines []string
	for _, l := range strings.Split(printed, "\n") {
		lines = append(lines, strings.TrimRight(l, " \r"))
	}
	used := make([]bool, len(lines))
	var missing []int
	for i, e := range expect {
		re := docLinePattern(strings.TrimRight(e, " "))
		found := false
		for j, l := range lines {
			if !used[j] && re.MatchString(l) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, i)
		}
	}
	return missing
}

// docPages are the pages whose examples run.
func docPages(t *testing.T) []string {
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, pages...)
}

func TestDocExamples(t *testing.T) {
	for _, tool := range []string{"bash", "python3", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the documentation's examples need %s (scripts/test.sh installs curl)", tool)
		}
	}
	bin := tempDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// relaytcp on PATH is this test binary, which runs the program when
	// execEnv is set, as the other integration tests run it.
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 GORACE=atexit_sleep_ms=0 exec %s \"$@\"\n", execEnv, strconv.Quote(self))
	if err := os.WriteFile(filepath.Join(bin, "relaytcp"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // guards skipped and ran: the pages run in parallel
	var skipped []string
	ran := 0
	t.Run("pages", func(t *testing.T) {
		for _, page := range docPages(t) {
			t.Run(page, func(t *testing.T) {
				// Each page has its own shell, directory and ports.
				t.Parallel()
				data, err := os.ReadFile(page)
				if err != nil {
					t.Fatal(err)
				}
				blocks, err := parseDocBlocks(page, data)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range blocks {
					mu.Lock()
					switch {
					case docWindowsSet[b.lang]:
						skipped = append(skipped, fmt.Sprintf("%s:%d (```%s: Windows)", b.file, b.line, b.lang))
					case (b.lang == "sh" || b.lang == "console") && b.skip != "":
						skipped = append(skipped, fmt.Sprintf("%s:%d (%s)", b.file, b.line, b.skip))
					}
					mu.Unlock()
				}
				n := runDocPage(t, bin, blocks)
				mu.Lock()
				ran += n
				mu.Unlock()
			})
		}
	})
	t.Logf("%d blocks run; %d not run:\n  %s", ran, len(skipped), strings.Join(skipped, "\n  "))
}

// runDocPage runs a page's runnable blocks in one shell and returns how
// many ran.
func runDocPage(t *testing.T, bin string, blocks []*docBlock) int {
	var runnable []*docBlock
	for _, b := range blocks {
		if (b.lang == "sh" || b.lang == "console") && b.skip == "" {
			runnable = append(runnable, b)
		}
	}
	if len(runnable) == 0 {
		return 0
	}
	// The page's ports, free ones in their place: a range first (free
	// ports in a row), then single ports.
	ports := map[string]string{}
	for _, b := range runnable {
		for _, c := range b.commands() {
			for _, r := range docRangeRe.FindAllStringSubmatch(c.text, -1) {
				first, _ := strconv.Atoi(r[1])
				last, _ := strconv.Atoi(r[2])
				if ports[r[1]] != "" || last < first {
					continue
				}
				base := freePortRange(t, last-first+1)
				for p := first; p <= last; p++ {
					ports[strconv.Itoa(p)] = strconv.Itoa(base + p - first)
				}
			}
		}
	}
	for _, b := range runnable {
		for _, c := range b.commands() {
			for _, p := range docPortRe.FindAllString(c.text, -1) {
				if ports[p] == "" {
					ports[p] = strconv.Itoa(freePort(t))
				}
			}
		}
	}
	subst := func(s string) string {
		return docPortRe.ReplaceAllStringFunc(s, func(p string) string {
			if q := ports[p]; q != "" {
				return q
			}
			return p
		})
	}
	dir := tempDir(t)
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "PYTHONUNBUFFERED=1", "LC_ALL=C.UTF-8")
	sh := startDocShell(t, dir, env)
	for _, b := range runnable {
		start := len(sh.output())
		for _, c := range b.commands() {
			c.text = subst(c.text)
			rc, pid, out, err := sh.run(c, 60*time.Second)
			if err != nil {
				t.Fatalf("%s:%d: %s: %v; it printed:\n%s", b.file, c.line, c.text, err, out)
			}
			if rc != c.exit {
				t.Fatalf("%s:%d: %s: exit code %d, want %d; it printed:\n%s", b.file, c.line, c.text, rc, c.exit, out)
			}
			if c.background {
				service := strings.Contains(c.text, "relaytcp service")
				gone := false
				eventually(30*time.Second, func() bool {
					if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
						gone = true
					}
					return gone || listens(pid, service)
				})
				switch {
				case gone:
					t.Fatalf("%s:%d: %s: the background command (pid %d) ended; the page printed:\n%s", b.file, c.line, c.text, pid, sh.printed(0))
				case !listens(pid, service):
					t.Fatalf("%s:%d: %s: the background command (pid %d) did not listen within 30 s; the page printed:\n%s", b.file, c.line, c.text, pid, sh.printed(0))
				}
			}
		}
		if len(b.expect) == 0 {
			continue
		}
		expect := make([]string, len(b.expect))
		for i, e := range b.expect {
			expect[i] = subst(e)
		}
		// Background commands print late: wait for the lines a while.
		var missing []int
		eventually(15*time.Second, func() bool {
			missing = matchDocOutput(expect, sh.output()[start:])
			return len(missing) == 0
		})
		for _, i := range missing {
			t.Errorf("%s:%d: not printed: %s", b.file, b.expectLine[i], b.expect[i])
		}
		if len(missing) > 0 {
			t.Fatalf("the block at %s:%d printed:\n%s", b.file, b.line, sh.printed(start))
		}
	}
	return len(runnable)
}

// TestDocLinePattern: what a doc line matches: numbers, versions and
// durations may differ, "..." is any text, words and punctuation may not.
func TestDocLinePattern(t *testing.T) {
	cases := []struct {
		doc, printed string
		match        bool
	}{
		{"RelayTCP v0.0.0-20261202070319-c6820720ea58 - Relay of TCP/IP sessions", "RelayTCP v0.0.0-dev - Relay of TCP/IP sessions", true},
		{"RelayTCP v0.0.0-20261202070319-c6820720ea58 - Relay of TCP/IP sessions", "RelayTCP v1.2.3 - Relay of TCP/IP sessions", true},
		{"RelayTCP v0.0.0-dev - Relay of TCP/IP sessions", "RelayTCP v0.0.0-dev - Relay of UDP sessions", false},
		{"2026/12/02 13:15:01 Closed 127.0.0.1:50312 to 127.0.0.1:18080 sent 78 received 209 bytes in 3ms (server closed)",
			"2026/12/03 01:02:03 Closed 127.0.0.1:41000 to 127.0.0.1:33333 sent 80 received 2100 bytes in 1.5s (server closed)", true},
		{"2026/12/02 13:15:01 Closed 127.0.0.1:50312 to 127.0.0.1:18080 sent 78 received 209 bytes in 3ms (server closed)",
			"2026/12/03 01:02:03 Closed 127.0.0.1:41000 to 127.0.0.1:33333 sent 80 received 2100 bytes in 1.5s (client closed)", false},
		{"... in 2ms (...)", "Closed x in 1m0.001s (idle)", true},
		{"Uptime  : 26h3m12s since 2026/11/30 08:12:40, 3 reloads", "Uptime  : 1s since 2026/12/02 13:15:02, 3 reloads", true},
		{"Status  : Running", "Status : Running", false},
		{"Status  : Running", "Status  : Running (systemd)", false},
		{"hello through the relay", "hello through the relay", true},
	}
	for _, c := range cases {
		if got := docLinePattern(c.doc).MatchString(c.printed); got != c.match {
			t.Errorf("doc %q, printed %q: match %v; want %v", c.doc, c.printed, got, c.match)
		}
	}
}

// TestParseDocBlocks: fences, their languages, "not run" marks, and which
// text block is a shell block's output.
func TestParseDocBlocks(t *testing.T) {
	page := "# Page\n\n```sh\necho a\nsleep 1 &   # a server\nfalse     # exit 1\n```\n\nprints:\n\n```text\na\n```\n\n" +
		"<!-- not run: needs root -->\n```sh\nrm -rf /\n```\n\nA long paragraph that ends in a full stop.\n\n```text\nnot an output\n```\n\n" +
		"```console\n$ echo b\nb\n```\n\n```cmd\nnet start RelayTCPsvc\n```\n"
	blocks, err := parseDocBlocks("page.md", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 6 {
		t.Fatalf("%d blocks; want 6", len(blocks))
	}
	sh := blocks[0]
	if got := strings.Join(sh.expect, "|"); got != "a" {
		t.Errorf("the sh block's output: %q; want a", got)
	}
	cmds := sh.commands()
	if len(cmds) != 3 || cmds[0].background || !cmds[1].background || cmds[2].exit != 1 {
		t.Errorf("commands: %+v", cmds)
	}
	if blocks[2].skip != "needs root" {
		t.Errorf("not run: %q", blocks[2].skip)
	}
	if len(blocks[2].expect) != 0 || blocks[3].lang != "text" {
		t.Errorf("the text block after prose ending in a full stop is nobody's output")
	}
	if got := strings.Join(blocks[4].expect, "|"); got != "b" {
		t.Errorf("console output: %q", got)
	}
	if _, err := parseDocBlocks("bad.md", []byte("```\nls\n```\n")); err == nil || !strings.Contains(err.Error(), "without a language") {
		t.Errorf("a fence without a language: %v", err)
	}
}

// docLinkRe finds a Markdown link to a local page, with its anchor.
var docLinkRe = regexp.MustCompile(`\]\(([^)#:\s]*\.md|[^)#:\s]*\.png)?(#[^)\s]*)?\)`)

// docAnchor is GitHub's anchor of a heading: lower case, punctuation
// dropped, spaces as hyphens.
func docAnchor(heading string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			sb.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// TestDocLinks: every link from README.md and docs/*.md to a page, an
// image or a heading of the docs leads somewhere.
func TestDocLinks(t *testing.T) {
	anchors := map[string]map[string]bool{}
	pages := docPages(t)
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		anchors[p] = map[string]bool{}
		fenced := false
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "```") {
				fenced = !fenced
			}
			if !fenced && strings.HasPrefix(l, "#") {
				anchors[p][docAnchor(strings.TrimLeft(l, "#"))] = true
			}
		}
	}
	for _, p := range pages {
		data, _ := os.ReadFile(p)
		for _, m := range docLinkRe.FindAllStringSubmatch(string(data), -1) {
			target, anchor := p, strings.TrimPrefix(m[2], "#")
			if m[1] != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(p), m[1]))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: a link to %s, which does not exist", p, m[1])
					continue
				}
			}
			if anchor != "" && anchors[target] != nil && !anchors[target][anchor] {
				t.Errorf("%s: a link to %s#%s, a heading that does not exist", p, target, anchor)
			}
		}
	}
}
