//go:build linux

package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statusBenchConnsEnv overrides the open connections of BenchmarkStatusPage.
const statusBenchConnsEnv = "RELAYTCP_BENCH_CONNS"

// BenchmarkStatusPage: GET /, /status.json and /metrics, each on a new
// connection as the page and Prometheus ask, from a service (a process of
// its own) with 1,000 routes and 10,000 open connections. The target is
// under 100 ms a request. Each connection is two descriptors in the
// service and two in the benchmark (client and echo server): where the
// descriptor limit leaves no room for 10,000, it runs as many as fit and
// says so.
func BenchmarkStatusPage(b *testing.B) {
	conns := statusBenchConns(b)
	// The backend holds its connections and reads them with a buffer of
	// its own: an echo's io.Copy would splice, holding a pipe (two more
	// descriptors) for each.
	echo := newLocalListener(b)
	serveEach(echo, func(c *net.TCPConn) {
		defer c.Close()
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	dir := tempDir(b)
	metrics := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
	// Free ports below the ephemeral range (32768 and up), as
	// TestServiceThousandRoutes takes them.
	var ports []int
	text := fmt.Sprintf("logdir %s\nmetrics %s\n", filepath.Join(dir, "logs"), metrics)
	for port := 20000; port < 32000 && len(ports) < 1000; port++ {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, port)
		text += fmt.Sprintf("route 127.0.0.1:%d 127.0.0.1 %d\n", port, portOf(echo.Addr()))
	}
	if len(ports) < 1000 {
		b.Fatalf("only %d free ports in 20000-32000", len(ports))
	}
	conf := filepath.Join(dir, "relaytcp.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	p := startProc(b, dir, "service", "-config", conf)
	defer func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(b, 60*time.Second)
	}()
	if !eventually(60*time.Second, func() bool { return strings.Contains(strings.Join(p.stderrLines(), "\n"), "successfully started") }) {
		b.Fatalf("the service did not start:\n%s", p.output())
	}
	for i := range conns {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ports[i%len(ports)]), 10*time.Second)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
	}
	var open int64
	if !eventually(60*time.Second, func() bool {
		_, _, doc := httpGet(b, metrics, "GET", "/status.json")
		var st ServiceStatus
		if json.Unmarshal(doc, &st) != nil || len(st.Routes) != 1000 {
			return false
		}
		open = 0
		for _, r := range st.Routes {
			open += r.Open
		}
		return open == int64(conns)
	}) {
		b.Fatalf("the service has %d connections open; want %d", open, conns)
	}
	b.Logf("1,000 routes, %d open connections", conns)

	for _, path := range []string{"/", "/status.json", "/metrics"} {
		b.Run(cmp.Or(strings.Trim(path, "/"), "page"), func(b *testing.B) {
			var size int
			cpu := processCPU(b, p.cmd.Process.Pid)
			for b.Loop() {
				status, _, body := httpGet(b, metrics, "GET", path)
				if status != "HTTP/1.1 200 OK" {
					b.Fatalf("GET %s: %s", path, status)
				}
				size = len(body)
			}
			cpu = processCPU(b, p.cmd.Process.Pid) - cpu
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/req")
			// The service's own CPU time per request, which other load on
			// the machine does not inflate (its samples every 2 s included).
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "service-cpu-ms/req")
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

// processCPU is the CPU time process pid has used (user and system), to
// the clock tick (10 ms).
func processCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's ")": state is field 3, utime 14, stime 15.
	_, rest, _ := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// statusBenchConns is how many connections BenchmarkStatusPage opens:
// 10,000 (or RELAYTCP_BENCH_CONNS), fewer where the descriptor limit
// leaves no room: the service holds two per connection, 1,000 listeners
// and some 100 more of its own.
func statusBenchConns(b *testing.B) int {
	want := 10000
	if s := os.Getenv(statusBenchConnsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("%s=%q: want a number of connections", statusBenchConnsEnv, s)
		}
		want = n
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if room := (int(lim.Cur) - 1100) / 2; room < want {
		b.Logf("%d connections rather than %d: the limit of %d descriptors per process leaves no room for more (raise ulimit -n)", room, want, lim.Cur)
		return room
	}
	return want
}
