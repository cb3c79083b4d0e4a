package main

// Administrator rights on Windows. The executable's manifest asks for none
// (asInvoker: the command-line relay and status must never prompt); a
// command that needs them (needsElevation), started from a process that is
// not elevated, starts itself again elevated through the standard UAC
// prompt (ShellExecuteEx, verb runas) and waits for it. Its output comes
// back through two named pipes, so the command reads as if it had run
// where it was typed; the admin menu, which reads the keyboard, opens in
// the elevated process's own console window instead.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// elevatedOutputFlag starts the arguments of a process relaunched
// elevated whose output goes back to the process that relaunched it:
// relaytcp -elevated-output PIPE COMMAND ARGS... (PIPE-out, PIPE-err).
const elevatedOutputFlag = "-elevated-output"

// withElevation runs the command line, elevated when it needs to be.
func withElevation(args []string, stdin *os.File, stdout, stderr io.Writer, run runFunc) int {
	if len(args) >= 2 && args[0] == elevatedOutputFlag {
		return runWithOutputTo(args[1], args[2:], stdin, run)
	}
	e := elevator{isElevated: func() bool { return windows.GetCurrentProcessToken().IsElevated() }, relaunch: relaunchElevated}
	return e.run(args, stdin, stdout, stderr, run)
}

// elevator decides whether a command runs here or elevated. Its fields
// are what the tests swap: under wine every process is elevated.
type elevator struct {
	isElevated func() bool
	// relaunch runs args elevated, with their output sent to stdout and
	// stderr, and returns their exit code.
	relaunch func(args []string, stdout, stderr io.Writer) (code int, err error)
}

// run runs args here when they need no elevation or this process has it,
// else elevated. When Windows will not elevate (the UAC prompt refused), it
// says on its first line that the command needs Run as administrator.
func (e elevator) run(args []string, stdin *os.File, stdout, stderr io.Writer, run runFunc) int {
	if !needsElevation(args) || e.isElevated() {
		return run(args, stdin, stdout, stderr)
	}
	code, err := e.relaunch(args, stdout, stderr)
	switch {
	case errors.Is(err, windows.ERROR_CANCELLED):
		fmt.Fprintf(stderr, "relaytcp %s: needs Run as administrator (the UAC prompt was refused)\n", args[0])
		return exitRuntime
	case err != nil:
		fmt.Fprintf(stderr, "relaytcp %s: needs Run as administrator (asking Windows for it failed: %v)\n", args[0], err)
		return exitRuntime
	}
	return code
}

// relaunchWait bounds the wait, after the elevated process has ended, for
// the last of its output.
const relaunchWait = 5 * time.Second

// relaunchElevated runs this executable with args elevated and waits for
// it. The admin menu gets its own console window; any other command runs
// hidden, its output copied here from the pipes it connects to.
func relaunchElevated(args []string, stdout, stderr io.Writer) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find relaytcp.exe: %w", err)
	}
	show := int32(windows.SW_SHOWNORMAL)
	params := args
	var copies sync.WaitGroup
	var listeners []*pipeListener
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}()
	if args[0] != "admin" {
		show = windows.SW_HIDE
		// The pipes admit SYSTEM and elevated administrators only
		// (controlPipeSDDL): the elevated process, and no other user.
		pipe := fmt.Sprintf(`\\.\pipe\relaytcp-elevated-%d`, os.Getpid())
		for _, to := range []struct {
			suffix string
			w      io.Writer
		}{{"-out", stdout}, {"-err", stderr}} {
			ln, err := listenControlChannel(pipe + to.suffix)
			if err != nil {
				return 0, err
			}
			listeners = append(listeners, ln.(*pipeListener))
			copies.Add(1)
			go copyElevatedOutput(ln.(*pipeListener), to.w, &copies)
		}
		params = append([]string{elevatedOutputFlag, pipe}, args...)
	}
	process, err := shellExecuteRunas(exe, params, show)
	if err != nil {
		return 0, err
	}
	defer windows.CloseHandle(process)
	if _, err := windows.WaitForSingleObject(process, windows.INFINITE); err != nil {
		return 0, fmt.Errorf("wait for the elevated relaytcp: %w", err)
	}
	var code uint32
	if err := windows.GetExitCodeProcess(process, &code); err != nil {
		return 0, fmt.Errorf("exit code of the elevated relaytcp: %w", err)
	}
	// A process that never connected is waited for no more; the output of
	// one that did ends with its pipe.
	for _, ln := range listeners {
		ln.Close()
	}
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(relaunchWait):
	}
	return int(code), nil
}

// copyElevatedOutput copies what the elevated process writes to the pipe
// of ln to w.
func copyElevatedOutput(ln *pipeListener, w io.Writer, copies *sync.WaitGroup) {
	defer copies.Done()
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	io.Copy(w, c)
}

// runWithOutputTo runs args, in the process relaunched elevated, with its
// output sent to the pipes of the process that relaunched it. Without
// them (that process is gone) the command still runs: the user agreed to
// it.
func runWithOutputTo(pipe string, args []string, stdin *os.File, run runFunc) int {
	var stdout, stderr io.Writer = os.Stdout, os.Stderr
	if c, err := dialControl(pipe + "-out"); err == nil {
		defer c.Close()
		stdout = c
	}
	if c, err := dialControl(pipe + "-err"); err == nil {
		defer c.Close()
		stderr = c
	}
	return run(args, stdin, stdout, stderr)
}

// shellExecuteInfo is SHELLEXECUTEINFOW (shellapi.h), which
// golang.org/x/sys/windows does not define. Its fields are 4 bytes or
// pointers, so Go lays it out as the C compiler does on amd64 and 386.
type shellExecuteInfo struct {
	size       uint32
	mask       uint32
	hwnd       windows.Handle
	verb       *uint16
	file       *uint16
	parameters *uint16
	directory  *uint16
	show       int32
	instApp    windows.Handle
	idList     uintptr
	class      *uint16
	keyClass   windows.Handle
	hotKey     uint32
	icon       windows.Handle
	process    windows.Handle
}

// The SEE_MASK flags used: keep the process handle, return only once the
// process has started, and report errors to the caller, not in a dialog.
const (
	seeMaskNoCloseProcess = 0x00000040
	seeMaskNoAsync        = 0x00000100
	seeMaskFlagNoUI       = 0x00000400
)

var procShellExecuteEx = windows.NewLazySystemDLL("shell32.dll").NewProc("ShellExecuteExW")

// shellExecuteRunas starts exe with args elevated (the runas verb: the UAC
// prompt) in the current directory, and returns its process handle. A
// refused prompt is windows.ERROR_CANCELLED.
func shellExecuteRunas(exe string, args []string, show int32) (windows.Handle, error) {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = windows.EscapeArg(a)
	}
	dir, _ := os.Getwd()
	info := shellExecuteInfo{mask: seeMaskNoCloseProcess | seeMaskNoAsync | seeMaskFlagNoUI, show: show}
	info.size = uint32(unsafe.Sizeof(info))
	var err error
	if info.verb, err = windows.UTF16PtrFromString("runas"); err == nil {
		if info.file, err = windows.UTF16PtrFromString(exe); err == nil {
			if info.parameters, err = windows.UTF16PtrFromString(strings.Join(quoted, " ")); err == nil {
				info.directory, err = windows.UTF16PtrFromString(dir)
			}
		}
	}
	if err != nil {
		return 0, fmt.Errorf("run %s as administrator: %w", exe, err)
	}
	if r, _, err := procShellExecuteEx.Call(uintptr(unsafe.Pointer(&info))); r == 0 {
		return 0, fmt.Errorf("run %s as administrator: %w", exe, err)
	}
	if info.process == 0 {
		return 0, fmt.Errorf("run %s as administrator: Windows gave no process", exe)
	}
	return info.process, nil
}
