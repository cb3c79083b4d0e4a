package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRouteSpec: the route text form never panics, and what it
// accepts prints back to text that parses to the same route.
func FuzzParseRouteSpec(f *testing.F) {
	for _, s := range []string{"155 192.168.1.200 110", "8080 [::1] 9000", "1 a 65535", "0 x 1", "1 -a- 2", "1 a..b 2", "65536 h 1", " 1\th\t2 ",
		"80 web1 8080 also=web2:8080,[fd00::5]:8080 backup=web9:8080 balance=leastconn check=2s rise=3 fall=2",
		"80 w 1 also=W:1", "80 w 1 also=[::1]:1,x:2 balance=source"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRouteSpec(s)
		if err != nil {
			return
		}
		if r.LocalPort < 1 || r.LocalPort > 65535 || r.RemotePort < 1 || r.RemotePort > 65535 || r.RemoteHost == "" {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		again, err := ParseRouteSpec(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.String(), again, err)
		}
	})
}

// FuzzParseConfig: the config file parser never panics, and a config it
// accepts survives a save and a reload unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add("# c\nlogdir /var/log/relaytcp\ndebug 1\nroute 155 192.168.1.200 110\n")
	f.Add("route 1 a 1\nroute 1 b 2\n")
	f.Add("logdir  spaced  dir \r\ndebug\t0\r\n")
	f.Add("rout 1 2 3")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := parseConfig("fuzz.conf", text)
		if err != nil {
			return
		}
		path := filepath.Join(tempDir(t), "relaytcp.conf")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, file, err := loadConfigFile(path)
		if err != nil {
			t.Fatalf("parse accepted but load failed: %v", err)
		}
		if err := file.save(cfg); err != nil {
			t.Fatalf("save: %v", err)
		}
		again, _, err := loadConfigFile(path)
		if err != nil || !reflect.DeepEqual(again, cfg) {
			saved, _ := os.ReadFile(path)
			t.Fatalf("reload of\n%s\ngave %+v, %v; want %+v", saved, again, err, cfg)
		}
	})
}

// FuzzParseArgs: the command line parser never panics, and what it accepts
// is in range.
func FuzzParseArgs(f *testing.F) {
	f.Add("1001 10.3.100.14 25 -d")
	f.Add("-q -drain=2s 1 ::1 2 --connect 5s")
	f.Add("0 host 80")
	f.Add("1 host 2 -drain")
	f.Fuzz(func(t *testing.T, line string) {
		opts, err := parseArgs(strings.Fields(line))
		if err != nil {
			return
		}
		if opts.listenPort < 1 || opts.listenPort > 65535 || opts.remotePort < 1 || opts.remotePort > 65535 ||
			opts.remoteHost == "" || opts.drain < 0 || opts.connectTimeout <= 0 {
			t.Fatalf("accepted %q as %+v", line, opts)
		}
	})
}
