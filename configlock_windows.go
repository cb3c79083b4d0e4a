package main

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/windows"
)

// configMutexName names the mutex that serializes edits of the Parameters
// key. "Global\" makes it one mutex for every session (an RDP admin and a
// console admin, a deployment tool running as SYSTEM).
const configMutexName = `Global\RelayTCPsvc-config`

// lockConfig takes the configuration's edit lock, a named mutex, so that
// edits by several processes (route commands started at once by a script,
// an admin menu) follow one another instead of losing each other's
// changes. It waits up to wait, then fails. A mutex whose holder died
// (abandoned) is taken over: the registry write it was making is atomic per
// value. The path is not used: the registry is the configuration.
//
// A mutex belongs to the thread that took it, so the calling goroutine is
// locked to its thread until unlock.
func lockConfig(path string, wait time.Duration) (unlock func(), err error) {
	name, err := windows.UTF16PtrFromString(configMutexName)
	if err != nil {
		return nil, fmt.Errorf("lock config: %w", err)
	}
	runtime.LockOSThread()
	h, err := windows.CreateMutex(nil, false, name)
	if err != nil && h == 0 {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("lock config: create mutex %s: %w", configMutexName, err)
	}
	ev, err := windows.WaitForSingleObject(h, uint32(wait/time.Millisecond))
	switch {
	case err != nil:
		windows.CloseHandle(h)
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("lock config: wait for mutex %s: %w", configMutexName, err)
	case ev == uint32(windows.WAIT_TIMEOUT):
		windows.CloseHandle(h)
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("lock config: %w", errConfigBusy(wait))
	}
	return func() {
		windows.ReleaseMutex(h)
		windows.CloseHandle(h)
		runtime.UnlockOSThread()
	}, nil
}

// LockConfig takes the lock that serializes changes of the Parameters key.
func (windowsManager) LockConfig() (func(), error) { return lockConfig("", configLockWait) }
