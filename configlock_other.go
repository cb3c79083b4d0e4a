//go:build !windows

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockConfig takes the configuration's edit lock: an advisory lock (flock)
// on FILE.lock next to the config file (next to the file it points to when
// path is a symbolic link, so that edits through the link and through the
// file take the same lock), so that edits by several processes (route
// commands started at once by a script, an admin menu) follow one another
// instead of losing each other's changes. The lock is on a file of its own
// because a save renames a new config file over the old one. It waits up to
// wait, then fails saying who to blame. unlock releases it.
func lockConfig(path string, wait time.Duration) (unlock func(), err error) {
	target, err := writeTarget(path)
	if err != nil {
		return nil, fmt.Errorf("lock config %s: %w", path, err)
	}
	lockPath := target + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		// The directory does not exist yet: the first save creates it.
		if mkErr := os.MkdirAll(filepath.Dir(target), 0o755); mkErr != nil {
			return nil, fmt.Errorf("lock config %s: %w", lockPath, mkErr)
		}
		f, err = os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		// A read-only ConfigMap, say: name the file that cannot change.
		if werr := checkConfigWritable(path); werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("lock config: %w", err)
	}
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock config %s: %w", lockPath, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock config %s: %w", lockPath, errConfigBusy(wait))
		}
		time.Sleep(delay)
	}
}

// LockConfig takes the lock that serializes changes of the config file.
func (m *unixManager) LockConfig() (func(), error) { return lockConfig(m.path, configLockWait) }
