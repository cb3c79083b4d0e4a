//go:build !windows

package main

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// defaultLogDir is where the service logs when LogDir is not set.
func defaultLogDir() string { return "/var/log/relaytcp" }

// createLogDir creates the log directory when missing. The data logs hold
// traffic: the directory is for its owner only.
func createLogDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	return nil
}

// logDirAttrs is what the service keeps of its log directory to recreate
// it as it was: its permission bits and its owner.
type logDirAttrs struct {
	known    bool
	mode     fs.FileMode // permissions, with setuid, setgid and sticky
	uid, gid int
}

// readLogDirAttrs reads dir's mode and owner; none when it cannot.
func readLogDirAttrs(dir string) logDirAttrs {
	fi, err := os.Stat(dir)
	if err != nil {
		return logDirAttrs{}
	}
	a := logDirAttrs{known: true, mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), uid: -1, gid: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		a.uid, a.gid = int(st.Uid), int(st.Gid)
	}
	return a
}

// recreateLogDir creates the removed log directory again with the mode and
// owner it had (createLogDir's when unknown). The owner first: a change of
// owner may clear the setgid bit.
func recreateLogDir(dir string, a logDirAttrs) error {
	if err := createLogDir(dir); err != nil {
		return err
	}
	if !a.known {
		return nil
	}
	if err := os.Lchown(dir, a.uid, a.gid); err != nil {
		return fmt.Errorf("recreate log directory: %w", err)
	}
	if err := os.Chmod(dir, a.mode); err != nil {
		return fmt.Errorf("recreate log directory: %w", err)
	}
	return nil
}
