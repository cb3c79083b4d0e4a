package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestVersionOf: the version and commit come from -ldflags first, else
// from the build information Go records (go build in a git checkout); a
// build from a modified tree says so (-dirty).
func TestVersionOf(t *testing.T) {
	stamped := func(version string, settings ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/relaytcp/relaytcp", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return info
	}
	const rev = "0661069f26c42db4e9851780fb463338d2ab9465"
	for _, tt := range []struct {
		name         string
		info         *debug.BuildInfo
		ldV, ldC     string
		wantV, wantC string
	}{
		{"go run", stamped("(devel)"), "", "", "0.0.0-dev", "unknown"},
		{"no build info", nil, "", "", "0.0.0-dev", "unknown"},
		{"go build, clean", stamped("v0.0.0-20261202043231-0661069f26c4", "vcs", "git", "vcs.revision", rev, "vcs.modified", "false"),
			"", "", "0.0.0-20261202043231-0661069f26c4", rev},
		{"go build, modified", stamped("v0.0.0-20261202043231-0661069f26c4+dirty", "vcs.revision", rev, "vcs.modified", "true"),
			"", "", "0.0.0-20261202043231-0661069f26c4+dirty", rev + "-dirty"},
		{"go install @v1.2.0", stamped("v1.2.0"), "", "", "1.2.0", "unknown"},
		{"release build", stamped("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "v1.2.0", "abcdef", "1.2.0", "abcdef"},
	} {
		v, c := versionOf(tt.info, tt.ldV, tt.ldC)
		if v != tt.wantV || c != tt.wantC {
			t.Errorf("%s: versionOf = %q, %q; want %q, %q", tt.name, v, c, tt.wantV, tt.wantC)
		}
	}
}

// TestVersionFromCheckout builds relaytcp with go build in a git checkout
// (a copy of this one, committed) and checks that "relaytcp version" names
// the commit, and a build with an uncommitted change says -dirty.
func TestVersionFromCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relaytcp twice (-short)")
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("needs git")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command")
	}
	src, _ := os.Getwd()
	dir := tempDir(t)
	files, _ := filepath.Glob(filepath.Join(src, "*"))
	for _, f := range files {
		name := filepath.Base(f)
		// What a build reads: the sources, the Windows resources, the
		// status page it embeds, the module files.
		if !(strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".syso") || name == "statuspage.html" || name == "go.mod" || name == "go.sum") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(gitBin, "init", "-q")
	run(gitBin, "add", ".")
	run(gitBin, "commit", "-q", "-m", "test")
	head := run(gitBin, "rev-parse", "HEAD")
	bin := filepath.Join(tempDir(t), "relaytcp")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	version := func() string {
		t.Helper()
		// -buildvcs=true: what go build does in a checkout by default,
		// whatever GOFLAGS this machine sets.
		run(goBin, "build", "-buildvcs=true", "-o", bin, ".")
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("relaytcp version: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	start := time.Now()
	if got := version(); !strings.HasSuffix(got, "(commit "+head+")") {
		t.Errorf("a build of a clean checkout: %q; want it to end with (commit %s)", got, head)
	}
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("changed\n"), 0o644)
	if got := version(); !strings.HasSuffix(got, "(commit "+head+"-dirty)") {
		t.Errorf("a build of a modified checkout: %q; want it to end with (commit %s-dirty)", got, head)
	}
	t.Logf("two builds in %v", time.Since(start))
}
