package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Saving the config file (route add, route delete, the admin menu): only
// the lines that changed are rewritten, through a symbolic link, keeping the
// file's mode, owner and group, atomically.

// save writes cfg to the file (writeFileAtomic), rewriting only the lines of
// the settings and routes that cfg changed: comments, blank lines, the order
// and every other line stay byte for byte ("debug 0" and "maxconn  10" stay
// as written). A setting new to the file goes at the top; a new route goes
// before the route that follows it in cfg, or after the last route line (at
// the end of a file without routes).
func (f *configFile) save(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	lines := f.merge(cfg)
	var text string
	if len(lines) > 0 {
		text = strings.Join(lines, f.eol) + f.eol
	}
	if err := writeFileAtomic(f.path, []byte(text), 0o644); err != nil {
		return err
	}
	f.lines, f.was = lines, cfg.settings()
	return nil
}

// merge returns the file's lines changed to say cfg.
func (f *configFile) merge(cfg *Config) []string {
	values := cfg.settings()
	routes := newRouteMerge(f.lines, cfg.Routes)
	var out []string
	inFile := map[string]bool{}
	lastRoute := -1
	for _, line := range f.lines {
		key, rest := splitSetting(line)
		if v, isSetting := values[key]; isSetting {
			inFile[key] = true
			if v == f.was[key] {
				out = append(out, line)
			} else if text := settingLine(key, v); text != "" {
				out = append(out, text)
			}
			continue
		}
		if key != "route" {
			out = append(out, line)
			continue
		}
		r, _ := ParseRouteSpec(rest) // it parsed when the file was read
		if now := routes.replace(line, r); len(now) > 0 {
			out = append(out, now...)
			lastRoute = len(out) - 1
		}
	}
	if lastRoute < 0 {
		lastRoute = len(out) - 1 // no route lines: at the end
	}
	out = append(out[:lastRoute+1], append(routes.rest(), out[lastRoute+1:]...)...)
	var head []string
	if len(f.lines) == 0 {
		head = []string{"# relaytcp service configuration: logdir DIR, debug 0|1, maxconn N, clientmaxconn N, logretention DAYS, metrics IP:PORT,",
			"# route [ADDR:]LOCALPORT[-LAST] REMOTEHOST REMOTEPORT[-LAST] [OPTION=VALUE ...] (relaytcp route -h lists the options)"}
	}
	for _, key := range settingNames {
		if v := values[key]; v != "" && !inFile[key] {
			head = append(head, key+" "+v)
		}
	}
	return append(head, out...)
}

// routeMerge replaces the file's route lines, one after the other, by the
// routes of the configuration saved: a route it still has keeps its line as
// written; a route it lost loses its line, or, when the configuration has a
// route the file lacks in its place, becomes that one (changed in place);
// new routes go before the route that follows them. Routes are matched by
// value: no two routes of a valid configuration are equal.
type routeMerge struct {
	routes []RouteSpec       // the configuration's
	next   int               // the first of routes not written yet
	newPos map[RouteSpec]int // where each route is in routes
	oldPos map[RouteSpec]int // where each route is in the file
	seen   int               // the file's route lines replaced so far
}

func newRouteMerge(lines []string, routes []RouteSpec) *routeMerge {
	m := &routeMerge{routes: routes, newPos: make(map[RouteSpec]int, len(routes)), oldPos: map[RouteSpec]int{}}
	for n, r := range routes {
		m.newPos[r] = n
	}
	for _, line := range lines {
		if key, rest := splitSetting(line); key == "route" {
			r, _ := ParseRouteSpec(rest)
			m.oldPos[r] = len(m.oldPos)
		}
	}
	return m
}

// replace returns the lines that replace the file's next route line, line,
// whose route is r.
func (m *routeMerge) replace(line string, r RouteSpec) []string {
	m.seen++
	k, kept := m.newPos[r]
	switch {
	case kept && k < m.next:
		return nil // moved: written already, in the configuration's order
	case kept:
		out := m.write(k) // new routes before it
		m.next++
		return append(out, line)
	case m.next < len(m.routes) && !m.inFileLater(m.routes[m.next]):
		return m.write(m.next + 1) // changed in place
	}
	return nil // deleted
}

// inFileLater reports whether r is one of the file's route lines not seen
// yet.
func (m *routeMerge) inFileLater(r RouteSpec) bool {
	n, ok := m.oldPos[r]
	return ok && n >= m.seen
}

// write returns the lines of routes next up to end (excluded).
func (m *routeMerge) write(end int) []string {
	var out []string
	for ; m.next < end; m.next++ {
		out = append(out, "route "+m.routes[m.next].String())
	}
	return out
}

// rest returns the lines of the routes not written yet.
func (m *routeMerge) rest() []string { return m.write(len(m.routes)) }

// settingLine is the line that changes setting key to v (as settings
// writes it); "" drops the line: the default of the settings other than
// debug is their absence.
func settingLine(key, v string) string {
	switch {
	case v != "":
		return key + " " + v
	case key == "debug":
		return "debug 0"
	}
	return ""
}

// writeFileAtomic replaces the file at path with data: readers see the old
// file or the new one, never a part (a temporary file next to it, renamed
// over it). A symbolic link is written through: the file it points to is
// replaced and the link stays. An existing file keeps its mode, owner and
// group; a new one gets perm. Temporary files that earlier saves left when
// they were killed are removed first (removeStaleTemps). A file that cannot
// be written, or whose owner cannot be kept, is refused, naming it, and
// nothing changes.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	target, err := writeTarget(path)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	name := describeConfigFile(path, target)
	dir, base := filepath.Dir(target), filepath.Base(target)
	uid, gid := -1, -1
	switch fi, err := os.Stat(target); {
	case err == nil:
		perm = fi.Mode().Perm()
		uid, gid = fileOwner(fi)
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: create its directory: %w", name, err)
		}
	default:
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := checkConfigWritable(path); err != nil {
		return err
	}
	removeStaleTemps(dir, base, time.Now())
	tmp, err := os.CreateTemp(dir, "."+base+"."+strconv.Itoa(os.Getpid())+".*.tmp")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	if err := fillTemp(tmp, data, perm, uid, gid); err != nil {
		tmp.Close()
		if errors.Is(err, errOwnerNotKept) {
			return fmt.Errorf("%s cannot keep its owner %d and group %d (%w): run the command as root or as the file's owner; nothing was changed", name, uid, gid, err)
		}
		return fmt.Errorf("%s: write %s: %w", name, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: write %s: %w", name, tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	syncDir(dir) // the rename is on disk before a reload is asked for
	return nil
}

// errOwnerNotKept marks the failure to give a new file the old one's owner.
var errOwnerNotKept = errors.New("owner not kept")

// fillTemp writes data to the temporary file and gives it the mode, and
// owner and group (uid -1: leave them), of the file it replaces.
func fillTemp(tmp *os.File, data []byte, perm os.FileMode, uid, gid int) error {
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if fi, err := tmp.Stat(); err == nil && uid >= 0 {
		// Only when they differ: a user other than root may not chown.
		if tu, tg := fileOwner(fi); tu != uid || tg != gid {
			if err := tmp.Chown(uid, gid); err != nil {
				return fmt.Errorf("%w: %w", errOwnerNotKept, err)
			}
		}
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	return tmp.Sync()
}

// writeTarget returns the file that writing path replaces: path itself, or
// the file a symbolic link at path points to, through any number of links
// (at most 40, as Linux), which may not exist yet.
func writeTarget(path string) (string, error) {
	target, err := filepath.EvalSymlinks(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return target, err
	}
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return path, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// describeConfigFile names the config file at path for messages, with the
// file it points to when it is a symbolic link.
func describeConfigFile(path, target string) string {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return "config file " + path + " (a symbolic link to " + target + ")"
	}
	return "config file " + path
}

// checkConfigWritable says, naming it, why the config file at path cannot
// be saved: the file it writes (writeTarget), or the directory that holds
// it, cannot be written (a read-only file system such as a Kubernetes
// ConfigMap, an immutable file, permissions).
func checkConfigWritable(path string) error {
	target, err := writeTarget(path)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if err := writable(target); err != nil {
		return fmt.Errorf("%s cannot be written (%w); nothing was changed", describeConfigFile(path, target), err)
	}
	return nil
}

// staleTempAge is the age past which a save's temporary file is a leftover
// whoever wrote it: a save takes milliseconds, and a process ID may have
// been reused.
const staleTempAge = time.Minute

// removeStaleTemps removes from dir the temporary files that saves of the
// file base left when they were killed: ".BASE.PID.*.tmp" files whose
// writer PID has ended, and any older than staleTempAge. Saves run under
// the configuration's lock (lockConfig), so none of these is being written;
// a young one of a live writer (a save without the lock) is kept all the
// same. A file it cannot remove stays for the next save.
func removeStaleTemps(dir, base string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ours := strings.CutPrefix(e.Name(), "."+base+".")
		if !ours || !strings.HasSuffix(rest, ".tmp") || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		pidText, _, _ := strings.Cut(rest, ".")
		pid, err := strconv.Atoi(pidText)
		ended := err == nil && pid > 0 && pid <= math.MaxInt32 && pid != os.Getpid() && !processAlive(pid)
		if ended || now.Sub(info.ModTime()) > staleTempAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
