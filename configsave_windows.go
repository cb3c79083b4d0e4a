package main

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// fileOwner: Windows files have an ACL rather than an owner and group to
// keep; the rename keeps the directory's inherited ACL.
func fileOwner(os.FileInfo) (uid, gid int) { return -1, -1 }

// writable says why path cannot be written: its read-only attribute.
func writable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o200 == 0 {
		return errors.New("it has the read-only attribute")
	}
	return nil
}

// processAlive reports whether process pid runs.
func processAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return errors.Is(err, windows.ERROR_ACCESS_DENIED)
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return true
	}
	const stillActive = 259 // STILL_ACTIVE
	return code == stillActive
}

// syncDir: Windows makes a rename durable by itself (MoveFileEx).
func syncDir(string) {}
