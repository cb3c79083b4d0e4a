package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseRouteSpec(t *testing.T) {
	good := []struct {
		in   string
		want RouteSpec
	}{
		{"155 192.168.1.200 110", RouteSpec{LocalPort: 155, RemoteHost: "192.168.1.200", RemotePort: 110}},
		{"  1088\twww.mydomaindot.com   80 ", RouteSpec{LocalPort: 1088, RemoteHost: "www.mydomaindot.com", RemotePort: 80}},
		{"8080 [::1] 9000", RouteSpec{LocalPort: 8080, RemoteHost: "::1", RemotePort: 9000}},
		{"8080 ::1 9000", RouteSpec{LocalPort: 8080, RemoteHost: "::1", RemotePort: 9000}},
	}
	for _, tt := range good {
		got, err := ParseRouteSpec(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRouteSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		again, err := ParseRouteSpec(got.String())
		if err != nil || again != got {
			t.Errorf("String %q does not parse back: %+v, %v", got.String(), again, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "missing local port"},
		{"155", "missing remote host"},
		{"155 host", "missing remote port"},
		{"155 host 110 extra", `unexpected "extra"`},
		{"0 host 110", `invalid local port "0"`},
		{"155 ho$t 110", `invalid remote host "ho$t"`},
		{"155 host 70000", `invalid remote port "70000"`},
	}
	for _, tt := range bad {
		if _, err := ParseRouteSpec(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRouteSpec(%q) error %v; want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestParseConfigErrorsNameLineAndRoute(t *testing.T) {
	tests := []struct{ text, want string }{
		{"route 155 a 1\nroute 156 b x\n", `relaytcp.conf:2: route 1: invalid remote port "x"`},
		{"rout 155 a 1\n", `relaytcp.conf:1: unknown setting "rout"`},
		{"debug 2\n", `relaytcp.conf:1: invalid debug value "2"`},
		{"logdir\n", "relaytcp.conf:1: logdir needs a directory"},
		{"route 155 a 1\nroute 155 b 2\n", "route 1: local port 155 is already used by route 0"},
	}
	for _, tt := range tests {
		_, err := parseConfig("relaytcp.conf", tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseConfig(%q) error %v; want %q", tt.text, err, tt.want)
		}
	}
}

// TestConfigFileSaveKeepsComments edits a config file and checks that the
// comments stay and the routes are in order.
func TestConfigFileSaveKeepsComments(t *testing.T) {
	path := filepath.Join(tempDir(t), "relaytcp.conf")
	orig := "# my relays\nlogdir /var/log/relay tcp\n\n# mail\nroute 155 192.168.1.200 110\nroute 25 mail 25\n# end\n"
	os.WriteFile(path, []byte(orig), 0o644)
	cfg, f, err := loadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogDir != "/var/log/relay tcp" || len(cfg.Routes) != 2 || cfg.Debug {
		t.Fatalf("loaded %+v", cfg)
	}
	cfg.DeleteRoute(0)
	cfg.AddRoute(RouteSpec{LocalPort: 8080, RemoteHost: "web", RemotePort: 80})
	cfg.Debug = true
	if err := f.save(cfg); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := "debug 1\n# my relays\nlogdir /var/log/relay tcp\n\n# mail\nroute 25 mail 25\nroute 8080 web 80\n# end\n"
	if string(data) != want {
		t.Fatalf("saved:\n%s\nwant:\n%s", data, want)
	}
	again, _, err := loadConfigFile(path)
	if err != nil || !reflect.DeepEqual(again, cfg) {
		t.Fatalf("reloaded %+v, %v; want %+v", again, err, cfg)
	}
}

// TestConfigThousandRoutes: no 40-route limit.
func TestConfigThousandRoutes(t *testing.T) {
	path := filepath.Join(tempDir(t), "sub", "relaytcp.conf")
	cfg, f, err := loadConfigFile(path) // missing: empty, and says so
	if !isConfigMissing(err) || len(cfg.Routes) != 0 {
		t.Fatalf("missing file: %+v, %v", cfg, err)
	}
	for i := range 1000 {
		if err := cfg.AddRoute(RouteSpec{LocalPort: 10000 + i, RemoteHost: fmt.Sprintf("host%d.example", i), RemotePort: 80}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.AddRoute(RouteSpec{LocalPort: 10005, RemoteHost: "dup", RemotePort: 1}); err == nil || !strings.Contains(err.Error(), "already used by route 5") {
		t.Fatalf("duplicate port: %v", err)
	}
	if err := f.save(cfg); err != nil {
		t.Fatal(err)
	}
	again, _, err := loadConfigFile(path)
	if err != nil || len(again.Routes) != 1000 || again.Routes[999] != cfg.Routes[999] {
		t.Fatalf("reloaded %d routes, %v", len(again.Routes), err)
	}
	if err := again.DeleteRoute(1000); err == nil || !strings.Contains(err.Error(), "routes are 0 to 999") {
		t.Fatalf("delete 1000: %v", err)
	}
}

// TestRoutesSharingAPort: routes may share a port on different addresses,
// not on the same one, and not beside a route on every interface.
func TestRoutesSharingAPort(t *testing.T) {
	tests := []struct {
		a, b string
		want string // "" when both may coexist
	}{
		{"127.0.0.1:80 h 1", "127.0.0.2:80 h 1", ""},
		{"127.0.0.1:80 h 1", "127.0.0.1:81 h 1", ""},
		{"127.0.0.1:80 h 1", "127.0.0.1:80 h 2", "local port 127.0.0.1:80 is already used by route 0"},
		{"80 h 1", "127.0.0.1:80 h 1", "local port 127.0.0.1:80 overlaps route 0 on 80"},
		{"[::1]:80 h 1", "80 h 1", "local port 80 overlaps route 0 on [::1]:80"},
	}
	for _, tt := range tests {
		a, _ := ParseRouteSpec(tt.a)
		b, _ := ParseRouteSpec(tt.b)
		cfg := &Config{Routes: []RouteSpec{a}}
		err := cfg.AddRoute(b)
		if (err == nil) != (tt.want == "") || err != nil && err.Error() != tt.want {
			t.Errorf("%q then %q: %v; want %q", tt.a, tt.b, err, tt.want)
		}
	}
}

// TestFindRoutePortAlone: a port alone (:8082, or 8082/udp) names the route
// bound to one address when it is the only route with that port; it used
// to say "no route listens on :8082". Several such routes are named in the
// error, so the user can pick one.
func TestFindRoutePortAlone(t *testing.T) {
	var cfg Config
	for _, s := range []string{
		"127.0.0.1:8082 h 1",           // 0
		"127.0.0.1:8090 h 1",           // 1
		"[::1]:8090 h 1",               // 2
		"127.0.0.1:9000-9009 h 1",      // 3
		"127.0.0.1:53 h 53 proto=udp",  // 4
		"127.0.0.1:53 h 53",            // 5
		"8100 h 1",                     // 6
		"127.0.0.1:8100 h 1 proto=udp", // 7
	} {
		r, err := ParseRouteSpec(s)
		if err == nil {
			err = cfg.AddRoute(r)
		}
		if err != nil {
			t.Fatalf("add %q: %v", s, err)
		}
	}
	for in, want := range map[string]int{
		":8082": 0, "127.0.0.1:8082": 0, ":9003": 3, ":9000-9009": 3, ":53/udp": 4, ":53/tcp": 5, ":8100/tcp": 6, ":8100/udp": 7,
		"[::1]:8090": 2,
	} {
		if n, err := cfg.findRoute(in); err != nil || n != want {
			t.Errorf("findRoute(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	for in, want := range map[string]string{
		":8090":          ":8090 names several routes: route 1 on 127.0.0.1:8090, route 2 on [::1]:8090; give the address too",
		":53":            "routes 5 and 4 listen on :53, TCP and UDP: say :53/tcp or :53/udp",
		":8100":          "routes 6 and 7 listen on :8100, TCP and UDP: say :8100/tcp or :8100/udp",
		":8083":          "no route listens on :8083",
		"127.0.0.2:8082": "no route listens on 127.0.0.2:8082",
	} {
		if _, err := cfg.findRoute(in); err == nil || err.Error() != want {
			t.Errorf("findRoute(%q) error %v; want %q", in, err, want)
		}
	}
}
