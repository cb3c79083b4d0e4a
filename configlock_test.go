package main

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// registryTestEnv must be set for the tests that change the real
// Parameters key on Windows (scripts/wine-test.sh sets it in its throwaway
// wine prefix).
const registryTestEnv = "RELAYTCP_TEST_REGISTRY"

// testManager returns the service manager the route commands use with
// "-config conf": the config file, or on Windows the registry (then only
// where registryTestEnv allows it, starting from no routes).
func testManager(t *testing.T, conf string) serviceManager {
	t.Helper()
	if runtime.GOOS == "windows" && os.Getenv(registryTestEnv) != "1" {
		t.Skipf("changes HKLM\\...\\RelayTCPsvc\\Parameters: set %s=1 to run it (scripts/wine-test.sh does, in a throwaway prefix)", registryTestEnv)
	}
	installTestService(t)
	m, err := newServiceManager(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := editConfig(m, func(cfg *Config) error { cfg.Routes = nil; return nil }); err != nil {
		t.Fatalf("clear the routes: %v", err)
	}
	return m
}

// TestConcurrentRouteEdits starts 50 "route add" and 20 "route delete
// :PORT" commands at once, as a deployment script would: every one must
// succeed and the configuration must hold exactly the routes expected.
func TestConcurrentRouteEdits(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	m := testManager(t, conf)
	const adds, deletes = 50, 20
	const firstOld, firstNew = 21000, 22000
	err := editConfig(m, func(cfg *Config) error {
		for i := range deletes {
			if err := cfg.AddRoute(RouteSpec{LocalPort: firstOld + i, RemoteHost: "old.example", RemotePort: 80}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var procs []*relayProc
	for i := range max(adds, deletes) {
		if i < adds {
			procs = append(procs, startProc(t, dir, "route", "-config", conf, "add", strconv.Itoa(firstNew+i), "new.example", "8080", "maxconn=5"))
		}
		if i < deletes {
			procs = append(procs, startProc(t, dir, "route", "-config", conf, "delete", ":"+strconv.Itoa(firstOld+i)))
		}
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := p.wait(t, 120*time.Second); code != 0 {
				t.Errorf("%v: exit %d\n%s", p.cmd.Args[1:], code, p.output())
			}
		}()
	}
	wg.Wait()
	cfg, err := m.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range cfg.Routes {
		if r.RemoteHost != "new.example" || r.RemotePort != 8080 || r.MaxConn != 5 {
			t.Errorf("unexpected route %s", r)
		}
		got = append(got, r.LocalPort)
	}
	slices.Sort(got)
	var want []int
	for i := range adds {
		want = append(want, firstNew+i)
	}
	if !slices.Equal(got, want) {
		t.Errorf("after %d adds and %d deletes at once the routes are on ports\n%v\nwant\n%v", adds, deletes, got, want)
	}
}

// TestConfigLockWaitsThenGivesUp: a change waits while another holds the
// lock, goes ahead once it is free, and gives up with a clear error when it
// stays taken.
func TestConfigLockWaitsThenGivesUp(t *testing.T) {
	conf := filepath.Join(tempDir(t), "relaytcp.conf")
	// The holder takes and releases the lock in one goroutine: a Windows
	// mutex belongs to the thread that took it.
	taken, release, released := make(chan error), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(released)
		unlock, err := lockConfig(conf, time.Second)
		taken <- err
		if err == nil {
			<-release
			unlock()
		}
	}()
	if err := <-taken; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := lockConfig(conf, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "another relaytcp command kept the configuration locked for 300ms") {
		t.Errorf("lock while held: %v", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("gave up after %v; want about 300ms", waited)
	}
	got := make(chan error, 1)
	go func() {
		unlock, err := lockConfig(conf, 10*time.Second)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	<-released
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("lock after release: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the waiting change did not go ahead after the release")
	}
}

// TestConcurrentDisableAndAdd: "route disable" and "route enable" racing
// with "route add" from other processes: every command succeeds, and the
// configuration holds every route added and the switch of every route
// disabled or enabled; nothing is lost.
func TestConcurrentDisableAndAdd(t *testing.T) {
	dir := tempDir(t)
	conf := filepath.Join(dir, "relaytcp.conf")
	m := testManager(t, conf)
	const adds, switches = 20, 20
	const firstOld, firstNew = 23000, 24000
	err := editConfig(m, func(cfg *Config) error {
		for i := range switches {
			// The odd ones start disabled, and are enabled.
			r := RouteSpec{LocalPort: firstOld + i, RemoteHost: "old.example", RemotePort: 80, Disabled: i%2 == 1}
			if err := cfg.AddRoute(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var procs []*relayProc
	for i := range max(adds, switches) {
		if i < adds {
			procs = append(procs, startProc(t, dir, "route", "-config", conf, "add", strconv.Itoa(firstNew+i), "new.example", "8080"))
		}
		if i < switches {
			verb := "disable"
			if i%2 == 1 {
				verb = "enable"
			}
			procs = append(procs, startProc(t, dir, "route", "-config", conf, verb, ":"+strconv.Itoa(firstOld+i)))
		}
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := p.wait(t, 120*time.Second); code != 0 {
				t.Errorf("%v: exit %d\n%s", p.cmd.Args[1:], code, p.output())
			}
		}()
	}
	wg.Wait()
	cfg, err := m.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, r := range cfg.Routes {
		switch {
		case r.RemoteHost == "new.example" && !r.Disabled:
			added++
		case r.RemoteHost == "old.example" && r.Disabled != (r.LocalPort%2 == firstOld%2):
			t.Errorf("route %s was not switched", r)
		case r.RemoteHost != "old.example":
			t.Errorf("unexpected route %s", r)
		}
	}
	if added != adds || len(cfg.Routes) != adds+switches {
		t.Errorf("after %d adds and %d switches at once: %d routes, %d of them added; want %d and %d", adds, switches, len(cfg.Routes), added, adds+switches, adds)
	}
}
