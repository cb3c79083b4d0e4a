package main

// Real peers from Debian: nginx reading the PROXY header relaytcp sends,
// HAProxy sending one to relaytcp, dnsmasq answering dig through UDP and
// TCP routes, Prometheus scraping the metrics listener. scripts/test.sh installs them; without them these tests skip.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startPeer starts a server program for a test and stops it at the end.
func startPeer(t *testing.T, name string, args ...string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (scripts/test.sh installs it from Debian's packages)", name)
	}
	cmd := exec.Command(path, args...)
	out, _ := os.Create(filepath.Join(t.TempDir(), name+".out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(out.Name())
			t.Logf("%s said:\n%s", name, data)
		}
	})
}

// waitListening waits until something accepts on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	if !eventually(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("nothing listens on %s", addr)
	}
}

// TestNginxBehindProxy: nginx with "listen ... proxy_protocol" behind a
// route with proxy=v1 and proxy=v2 sees the client's address and port in
// $proxy_protocol_addr and logs it, in both relays.
func TestNginxBehindProxy(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	log_format pp '$proxy_protocol_addr $proxy_protocol_port "$request"';
	access_log %[1]s/access.log pp;
	client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
	server {
		listen 127.0.0.1:%[2]d proxy_protocol;
		location / { return 200 "$proxy_protocol_addr $proxy_protocol_port\n"; }
	}
}
`, dir, port)), 0o644)
	startPeer(t, "nginx", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	waitListening(t, "127.0.0.1:"+strconv.Itoa(port))
	for _, version := range []string{proxyV1, proxyV2} {
		t.Run(version, func(t *testing.T) {
			forRelays(t, func(t *testing.T, kind relayKind) {
				_, addr, _ := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d proxy=%s", port, version))
				c := dialTCP(t, addr)
				defer c.Close()
				client := c.LocalAddr().(*net.TCPAddr)
				path := "/" + version + "-" + string(kind)
				fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: test\r\n\r\n", path)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				resp, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("%s %d\n", client.IP, client.Port)
				if !strings.HasSuffix(string(resp), "\r\n\r\n"+want) {
					t.Errorf("nginx answered\n%s\nwant a body %q", resp, want)
				}
				logLine := fmt.Sprintf("%s %d \"GET %s HTTP/1.0\"", client.IP, client.Port, path)
				if !eventually(5*time.Second, func() bool {
					data, _ := os.ReadFile(filepath.Join(dir, "access.log"))
					return strings.Contains(string(data), logLine)
				}) {
					data, _ := os.ReadFile(filepath.Join(dir, "access.log"))
					t.Errorf("nginx's access log lacks %q:\n%s", logLine, data)
				}
			})
		})
	}
}

// TestHAProxyInFrontOfAcceptProxy: HAProxy with send-proxy-v2 in front of
// a route with acceptproxy=1: relaytcp relays and logs HAProxy's client,
// not HAProxy, in both relays.
func TestHAProxyInFrontOfAcceptProxy(t *testing.T) {
	needLoopbackAliases(t)
	forRelays(t, func(t *testing.T, kind relayKind) {
		backend := newTestBackend(t, "B")
		_, relayAddr, rec := startBackendRoute(t, kind, fmt.Sprintf("127.0.0.1 %d acceptproxy=1 allow=127.0.0.1", backend.port))
		front := freePort(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "haproxy.cfg")
		os.WriteFile(conf, []byte(fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f
  bind 127.0.0.1:%d
  default_backend b
backend b
  server relaytcp %s send-proxy-v2
`, front, relayAddr)), 0o644)
		startPeer(t, "haproxy", "-db", "-f", conf)
		frontAddr := "127.0.0.1:" + strconv.Itoa(front)
		waitListening(t, frontAddr)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", frontAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		client := c.LocalAddr().String()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		fmt.Fprintf(c, "through haproxy\n")
		name, err1 := r.ReadString('\n')
		echo, err2 := r.ReadString('\n')
		if err1 != nil || err2 != nil || name != "B\n" || echo != "through haproxy\n" {
			t.Fatalf("through HAProxy and relaytcp: %q %q, %v %v", name, echo, err1, err2)
		}
		if !eventually(5*time.Second, func() bool { return rec.countClient(ConnOpened, client) == 1 }) {
			t.Errorf("relaytcp did not log HAProxy's client %s: %v", client, rec.events)
		}
	})
}

// TestDNSThroughUDPRoute: dnsmasq on 127.0.0.2:5353 behind a UDP route,
// queried with dig through the relay, over UDP and, through a TCP route on
// the same port, over TCP.
func TestDNSThroughUDPRoute(t *testing.T) {
	port := 5353
	if c, err := net.ListenPacket("udp", "127.0.0.2:5353"); err != nil {
		port = freePort(t) // 5353 is taken here (mDNS?): another port
	} else {
		c.Close()
	}
	startPeer(t, "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--listen-address=127.0.0.2",
		"--bind-interfaces", "--port="+strconv.Itoa(port), "--address=/relay.test/10.1.2.3", "--log-facility=-", "--pid-file=", "--user=root")
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed (Debian's dnsutils; scripts/test.sh installs it)")
	}
	waitListening(t, "127.0.0.2:"+strconv.Itoa(port)) // dnsmasq answers TCP too
	local := freePort(t)
	r := &Relay{}
	defer r.Shutdown(context.Background())
	for id, proto := range []string{"udp", "tcp"} {
		spec, _ := ParseRouteSpec(fmt.Sprintf("127.0.0.1:%d 127.0.0.2 %d proto=%s", local, port, proto))
		if err := r.Start(id, spec.Route()); err != nil {
			t.Fatalf("start the %s route: %v", proto, err)
		}
	}
	for _, args := range [][]string{{}, {"+tcp"}} {
		cmd := exec.Command("dig", append([]string{"@127.0.0.1", "-p", strconv.Itoa(local), "relay.test", "+short", "+time=3", "+tries=2"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "10.1.2.3" {
			t.Errorf("dig %v through the relay: %v\n%s", args, err, out)
		}
	}
	if st := r.Status(); st[0].Total != 1 || st[1].Total != 1 {
		t.Errorf("status: UDP %+v, TCP %+v; want a session and a connection", st[0], st[1])
	}
}

// TestPrometheusScrapes: a real Prometheus server scrapes the metrics
// listener (its HTTP client, gzip asked for, keep-alive offered) and
// stores what it read: the target is up and relaytcp's series are there.
func TestPrometheusScrapes(t *testing.T) {
	m, err := serveMetrics("127.0.0.1:0", func() *ServiceStatus { return &ServiceStatus{Version: "7.7.7", Started: time.Now()} })
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	text := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: relaytcp\n    static_configs:\n      - targets: ['%s']\n", m.ln.Addr())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startPeer(t, "prometheus", "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	waitListening(t, web)
	query := func(q string) string {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	var up string
	if !eventually(30*time.Second, func() bool {
		up = query(`up{job="relaytcp"}`)
		return strings.Contains(up, `"value":[`) && strings.Contains(up, `,"1"]`)
	}) {
		t.Fatalf("Prometheus does not see the target up: %s\ntargets: %s", up, query(`scrape_samples_scraped`))
	}
	if info := query(`relaytcp_build_info`); !strings.Contains(info, `"version":"7.7.7"`) {
		t.Errorf("relaytcp_build_info not stored: %s", info)
	}
}
