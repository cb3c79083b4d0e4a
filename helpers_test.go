package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// execEnv, set in a child's environment, makes the test binary run the
// relaytcp command instead of the tests, so the integration tests drive the
// real program as a subprocess, under wine too, without a separate build.
const execEnv = "RELAYTCP_TEST_EXEC"

// controlProbeEnv, set to a control socket's path, makes the test binary
// send it one status request and print the raw answer: a client that is
// not relaytcp's own, for the access tests.
const controlProbeEnv = "RELAYTCP_TEST_CONTROL_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		os.Exit(withElevation(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, run))
	}
	if path := os.Getenv(controlProbeEnv); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		io.WriteString(c, `{"cmd":"status"}`+"\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newLocalListener listens on a free loopback port.
func newLocalListener(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// portOf returns the port of a listener's address.
func portOf(a net.Addr) int { return a.(*net.TCPAddr).Port }

// handedOut holds the ports freePort has returned in this test process.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePort returns a TCP port that was free a moment ago and that it has
// not returned before in this test process. It closes its listener before
// it returns, and the system may give that port to the next listener on
// port 0, so two calls could return one port (TestMetrics, which takes
// seven in a row, failed so); a port returned once is passed over. The
// listeners passed over stay open until it returns, so each try gets
// another port.
func freePort(t testing.TB) int {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for range 100 {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		held = append(held, ln)
		port := portOf(ln.Addr())
		handedOut.Lock()
		seen := handedOut.ports[port]
		if !seen {
			if handedOut.ports == nil {
				handedOut.ports = map[int]bool{}
			}
			handedOut.ports[port] = true
		}
		handedOut.Unlock()
		if !seen {
			return port
		}
	}
	t.Fatalf("no port that freePort had not returned before in 100 tries")
	return 0
}

// serveEach accepts connections on ln until it is closed and handles each
// in its own goroutine.
func serveEach(ln net.Listener, handle func(*net.TCPConn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c.(*net.TCPConn))
		}
	}()
}

// echoServer starts a loopback server that echoes each connection's bytes
// and half-closes after the client does.
func echoServer(t testing.TB) *net.TCPListener {
	ln := newLocalListener(t)
	serveEach(ln, echo)
	return ln
}

// echoServer6 is echoServer on the IPv6 loopback, ::1; the test is skipped
// where there is none.
func echoServer6(t testing.TB) *net.TCPListener {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	serveEach(ln, echo)
	return ln.(*net.TCPListener)
}

// echo echoes c's bytes and half-closes after its peer does.
func echo(c *net.TCPConn) {
	defer c.Close()
	io.Copy(c, c)
	c.CloseWrite()
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// relayProc is a relaytcp command running as a subprocess.
type relayProc struct {
	cmd    *exec.Cmd
	port   int
	mu     sync.Mutex
	stdout []string
	stderr []string
	lines  chan string // stdout lines as they come
	done   chan struct{}
	err    error // Wait's result, after done
}

// startProc starts relaytcp with args and collects its output.
func startProc(t testing.TB, dir string, args ...string) *relayProc {
	t.Helper()
	return startProcWith(t, dir, nil, args...)
}

// startProcWith is startProc with a setup function that may change the
// command (its stdin, say) before it starts.
func startProcWith(t testing.TB, dir string, setup func(*exec.Cmd), args ...string) *relayProc {
	t.Helper()
	var cmd *exec.Cmd
	var stdout, stderr io.Reader
	for attempt := 1; ; attempt++ {
		cmd = exec.Command(os.Args[0], args...)
		// Without atexit_sleep_ms=0 a -race child waits a second when it exits.
		cmd.Env = append(os.Environ(), execEnv+"=1", "GORACE=atexit_sleep_ms=0")
		cmd.Dir = dir
		stdout, _ = cmd.StdoutPipe()
		stderr, _ = cmd.StderrPipe()
		if setup != nil {
			setup(cmd)
		}
		err := cmd.Start()
		if err == nil {
			break
		}
		// Wine 8 now and then fails a CreateProcess with "Internal error"
		// while many processes start at once; a second try works.
		if attempt == 3 || runtime.GOOS != "windows" {
			t.Fatalf("start relaytcp: %v", err)
		}
		t.Logf("start relaytcp (attempt %d): %v", attempt, err)
		time.Sleep(100 * time.Millisecond)
	}
	p := &relayProc{cmd: cmd, lines: make(chan string, 100000), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	collect := func(r io.Reader, dst *[]string, ch chan string) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			p.mu.Lock()
			*dst = append(*dst, line)
			p.mu.Unlock()
			if ch != nil {
				ch <- line
			}
		}
	}
	go collect(stdout, &p.stdout, p.lines)
	go collect(stderr, &p.stderr, nil)
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// startRelay starts the relay on a free port in front of remote and waits
// until it says it is ready.
func startRelay(t testing.TB, dir, remoteHost string, remotePort int, opts ...string) *relayProc {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		args := append([]string{strconv.Itoa(port), remoteHost, strconv.Itoa(remotePort)}, opts...)
		p := startProc(t, dir, args...)
		p.port = port
		if err := p.waitLine("Ready to relay data to ", 20*time.Second); err == nil {
			return p
		}
		p.wait(t, 10*time.Second)
		if strings.Contains(p.output(), "Not bound") {
			continue // someone took the port meanwhile
		}
		t.Fatalf("relay did not start: %s", p.output())
	}
	t.Fatalf("relay did not find a free port")
	return nil
}

// waitLine waits for a stdout line starting with prefix.
func (p *relayProc) waitLine(prefix string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case line := <-p.lines:
			if strings.HasPrefix(line, prefix) {
				return nil
			}
		case <-p.done:
			// Lines may still be buffered in the channel.
			for {
				select {
				case line := <-p.lines:
					if strings.HasPrefix(line, prefix) {
						return nil
					}
				default:
					return fmt.Errorf("exited before %q", prefix)
				}
			}
		case <-deadline:
			return fmt.Errorf("no line %q within %v", prefix, timeout)
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *relayProc) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("relaytcp did not exit within %v; output:\n%s", timeout, p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// output returns everything printed so far, stdout then stderr.
func (p *relayProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "stdout:\n" + strings.Join(p.stdout, "\n") + "\nstderr:\n" + strings.Join(p.stderr, "\n")
}

// stderrLines returns a copy of the stderr lines so far.
func (p *relayProc) stderrLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stderr...)
}

// stdoutLines returns a copy of the stdout lines so far.
func (p *relayProc) stdoutLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stdout...)
}

// addr is the relay's loopback address.
func (p *relayProc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// dialTCP dials addr with a timeout and fails the test on error.
func dialTCP(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return c.(*net.TCPConn)
}

// hashReader reads r to the end and returns the SHA-256 and the length.
func hashReader(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// removeTree removes dir and what it holds, deepest first, one os.Remove
// each: under wine 8, Go 1.26's os.RemoveAll fails with "Invalid function",
// while os.Remove of a single file or empty directory works.
func removeTree(dir string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		return err
	}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil {
			return err
		}
	}
	return nil
}

// tempDir is t.TempDir, except that a directory that cannot be removed is
// left behind instead of failing the test: under wine 8, Go 1.26's
// os.RemoveAll fails with "Invalid function" (the prefix is deleted anyway).
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "relaytcp-test-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// controlTestPath is a control channel for an in-process service: a socket
// in a temporary directory, or on Windows the service's pipe.
func controlTestPath(t testing.TB) string {
	return controlPath(filepath.Join(tempDir(t), "relaytcp.conf"))
}

// specForm is a route's text form as written, as it prints back, and its
// route line as route 3.
type specForm struct{ in, out, line string }

// specError is a route's text form and (part of) the error it gets.
type specError struct{ in, want string }

// checkSpecForms checks that each form parses, prints back as out, parses
// again to the same route, and shows as line; and that each bad form is
// refused with its error.
func checkSpecForms(t *testing.T, good []specForm, bad []specError) {
	t.Helper()
	for _, tt := range good {
		r, err := ParseRouteSpec(tt.in)
		if err != nil || r.String() != tt.out {
			t.Errorf("ParseRouteSpec(%q) = %q, %v; want %q", tt.in, r.String(), err, tt.out)
			continue
		}
		if again, err := ParseRouteSpec(r.String()); err != nil || again != r {
			t.Errorf("%q does not parse back: %+v, %v", r.String(), again, err)
		}
		if got := routeLine(3, r); got != tt.line {
			t.Errorf("routeLine(%q)\n got %q\nwant %q", tt.in, got, tt.line)
		}
	}
	for _, tt := range bad {
		if _, err := ParseRouteSpec(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRouteSpec(%q) error %v; want %q", tt.in, err, tt.want)
		}
	}
}
