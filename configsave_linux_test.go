package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fsImmutableFlag is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const fsImmutableFlag = 0x10

// makeReadOnly makes path a file that cannot be written even by root: it
// sets the immutable attribute (chattr +i), or, for a user other than
// root, takes the write permissions of the file and its directory. It
// reports how, or skips the test.
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		os.Chmod(path, 0o444)
		os.Chmod(filepath.Dir(path), 0o555)
		t.Cleanup(func() { os.Chmod(filepath.Dir(path), 0o755) })
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsImmutableFlag))
	}
	if err != nil {
		t.Skipf("root writes any file whose file system has no immutable attribute (chattr +i: %v); a read-only mount would do, which a test should not make", err)
	}
	t.Cleanup(func() {
		if g, err := os.Open(path); err == nil {
			unix.IoctlSetPointerInt(int(g.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
			g.Close()
		}
	})
}

// TestSaveRefusesReadOnlyTarget: a symbolic link to a file that cannot be
// written (a read-only ConfigMap, say) is refused with a message naming
// both; nothing changes and no temporary file is left. Before, the link
// was replaced by a regular file.
func TestSaveRefusesReadOnlyTarget(t *testing.T) {
	dir := tempDir(t)
	os.Mkdir(filepath.Join(dir, "ro"), 0o755)
	target := filepath.Join(dir, "ro", "relaytcp.conf")
	link := filepath.Join(dir, "relaytcp.conf")
	os.WriteFile(target, []byte(keptConfig), 0o644)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	makeReadOnly(t, target)
	out := routeCmd(t, dir, link, exitRuntime, "add", "8080", "new.example", "80")
	want := "relaytcp route: config file " + link + " (a symbolic link to " + target + ") cannot be written"
	if !strings.Contains(out, want) || !strings.Contains(out, "nothing was changed") {
		t.Errorf("want %q ... nothing was changed\n%s", want, out)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link is gone: %v, %v", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(target); string(got) != keptConfig {
		t.Errorf("the read-only file changed:\n%s", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".relaytcp.conf.*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
