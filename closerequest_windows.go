package main

// Closing the running relaytcp processes when the MSI removes relaytcp.exe.
// Windows cannot delete a running executable: an open admin menu or
// command-line relay would leave it behind in Program Files (Windows
// Installer then asks for a reboot; wine's leaves the file). So the MSI's
// uninstall runs "relaytcp close-running" before it removes the files: it
// sets an event named after the executable's path, which every admin menu
// and command-line relay of that executable watches (watchCloseRequest):
// the menu closes, the relay stops as on ESC. Processes still running
// after closeWait are ended.

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// closeEventSDDL lets SYSTEM and Administrators set the close event, and
// every signed-in user wait for it (SYNCHRONIZE): a command-line relay of
// a user who is not an administrator closes too.
const closeEventSDDL = "D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x100000;;;AU)"

// closeWait is how long close-running waits for the processes it asked to
// close: a relay lets its connections finish for up to 5 s by default.
const closeWait = 15 * time.Second

// executablePath is this process's executable, in its long form and lower
// case: the form two processes of one file agree on.
func executablePath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find relaytcp.exe: %w", err)
	}
	return canonicalPath(exe), nil
}

// canonicalPath is path in its long form (no 8.3 names), in lower case.
func canonicalPath(path string) string {
	if p, err := windows.UTF16PtrFromString(path); err == nil {
		buf := make([]uint16, windows.MAX_LONG_PATH)
		if n, err := windows.GetLongPathName(p, &buf[0], uint32(len(buf))); err == nil && n > 0 && int(n) < len(buf) {
			path = windows.UTF16ToString(buf[:n])
		}
	}
	return strings.ToLower(filepath.Clean(path))
}

// openCloseEvent opens (creating it when missing) the close event of the
// executable exe with the access asked for.
func openCloseEvent(exe string, access uint32) (windows.Handle, error) {
	h := fnv.New64a()
	io.WriteString(h, exe)
	name := fmt.Sprintf(`Global\RelayTCP-close-%016x`, h.Sum64())
	sd, err := windows.SecurityDescriptorFromString(closeEventSDDL)
	if err != nil {
		return 0, fmt.Errorf("close event: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return 0, fmt.Errorf("close event %s: %w", name, err)
	}
	ev, err := windows.CreateEventEx(sa, p, windows.CREATE_EVENT_MANUAL_RESET, access)
	if ev == 0 {
		return 0, fmt.Errorf("close event %s: %w", name, err)
	}
	return ev, nil
}

// watchCloseRequest calls onClose, once, when the uninstall of this
// relaytcp.exe asks its processes to close, until stop. onClose must not
// wait for stop. Without the event (it cannot be opened), nothing is
// watched: the process is then left running, as before.
func watchCloseRequest(onClose func()) (stop func()) {
	exe, err := executablePath()
	if err != nil {
		return func() {}
	}
	ev, err := openCloseEvent(exe, windows.SYNCHRONIZE)
	if err != nil {
		return func() {}
	}
	quit, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(ev)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, err := windows.WaitForMultipleObjects([]windows.Handle{ev, quit}, false, windows.INFINITE)
		if err == nil && w == windows.WAIT_OBJECT_0 {
			onClose()
		}
	}()
	return func() {
		windows.SetEvent(quit)
		<-done
		windows.CloseHandle(ev)
		windows.CloseHandle(quit)
	}
}

// closeRunning is "relaytcp close-running", run by the MSI before it
// removes relaytcp.exe: it asks the other processes of this executable to
// close, waits for them up to wait (closeWait), and ends those still
// running.
func closeRunning(stdout io.Writer, wait time.Duration) error {
	exe, err := executablePath()
	if err != nil {
		return err
	}
	ev, err := openCloseEvent(exe, windows.EVENT_MODIFY_STATE|windows.SYNCHRONIZE)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(ev)
	if err := windows.SetEvent(ev); err != nil {
		return fmt.Errorf("set the close event: %w", err)
	}
	// A later install's processes must not find it set.
	defer windows.ResetEvent(ev)
	deadline := time.Now().Add(wait)
	for {
		pids, err := processesOf(exe)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return endProcesses(pids, wait, stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// processesOf lists the processes other than this one that run the
// executable exe (canonicalPath).
func processesOf(exe string) ([]uint32, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer windows.CloseHandle(snap)
	self := windows.GetCurrentProcessId()
	base := filepath.Base(exe)
	var pids []uint32
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == self || !strings.EqualFold(windows.UTF16ToString(e.ExeFile[:]), base) {
			continue
		}
		if image, err := processImage(e.ProcessID); err == nil && canonicalPath(image) == exe {
			pids = append(pids, e.ProcessID)
		}
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return pids, nil
}

// processImage is the path of the executable process pid runs.
func processImage(pid uint32) (string, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return "", err
	}
	defer windows.CloseHandle(h)
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err != nil {
		return "", err
	}
	return windows.UTF16ToString(buf[:n]), nil
}

// endProcesses ends the processes that did not close when asked.
func endProcesses(pids []uint32, wait time.Duration, stdout io.Writer) error {
	var failed []string
	for _, pid := range pids {
		h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, pid)
		if err == nil {
			err = windows.TerminateProcess(h, uint32(exitRuntime))
			windows.CloseHandle(h)
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%d (%v)", pid, err))
			continue
		}
		fmt.Fprintf(stdout, "relaytcp close-running: ended process %d, which did not close within %v\n", pid, wait)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not end the relaytcp processes %s", strings.Join(failed, ", "))
	}
	return nil
}
