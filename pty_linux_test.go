package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the master the test types into, and
// the terminal the relay gets as its stdin.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// canonical reports whether the terminal is in line (canonical) mode with echo.
func canonical(t *testing.T, tty *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("read terminal mode: %v", err)
	}
	return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}

// TestEscapeStopsRelay: on a terminal the relay offers ESC, stops on it with
// the manual's lines, and gives the terminal back as it found it.
func TestEscapeStopsRelay(t *testing.T) {
	master, tty := openPTY(t)
	if !canonical(t, tty) {
		t.Fatal("a new pty should start in canonical mode")
	}
	echo := echoServer(t)
	port := freePort(t)
	p := startProcWith(t, tempDir(t), func(cmd *exec.Cmd) {
		cmd.Stdin = tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}, strconv.Itoa(port), "127.0.0.1", strconv.Itoa(portOf(echo.Addr())))
	if err := p.waitLine("[ESC to cancel]", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.output())
	}
	if canonical(t, tty) {
		t.Error("terminal still in line mode while relaying: ESC would wait for Enter")
	}
	// An arrow key is not ESC: the relay keeps running.
	master.Write([]byte("\x1b[A"))
	time.Sleep(200 * time.Millisecond)
	roundTrip(t, "127.0.0.1:"+strconv.Itoa(port), "still running")
	if !eventually(5*time.Second, func() bool { return strings.Contains(p.output(), " Closed ") }) {
		t.Fatalf("no Closed line for the round trip:\n%s", p.output())
	}

	master.Write([]byte{escKey})
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d; want 0\n%s", code, p.output())
	}
	out := p.stdoutLines()
	tail := fmt.Sprint(out[len(out)-2:])
	if tail != fmt.Sprint([]string{"Closing connections...", "It's all !"}) {
		t.Errorf("last lines %s; want Closing connections..., It's all !", tail)
	}
	if !canonical(t, tty) {
		t.Error("terminal not restored to line mode after exit")
	}
}
