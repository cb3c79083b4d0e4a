package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// defaultLogDir is where the service logs when LogDir is not set:
// %ProgramData%\RelayTCP\Logs. (RelayTCP 1.0 used %SystemRoot%\rTCPLogs;
// programs should not write under the Windows directory.)
func defaultLogDir() string {
	base := os.Getenv("ProgramData")
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, "RelayTCP", "Logs")
}

// logDirSDDL is the log directory's access: SYSTEM and Administrators only,
// inherited by the files in it, and nothing inherited from above. The data
// logs hold traffic.
const logDirSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// createLogDir creates the log directory when missing, with logDirSDDL. An
// existing directory keeps the access its administrator gave it.
func createLogDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	sd, err := windows.SecurityDescriptorFromString(logDirSDDL)
	if err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	name, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return fmt.Errorf("create log directory %q: %w", dir, err)
	}
	if err := windows.CreateDirectory(name, sa); err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		return fmt.Errorf("create log directory %s: %w", dir, err)
	}
	return nil
}

// logDirAttrs is what the service keeps of its log directory to recreate
// it: nothing on Windows, where createLogDir gives it its access list.
type logDirAttrs struct{}

func readLogDirAttrs(string) logDirAttrs { return logDirAttrs{} }

// recreateLogDir creates the removed log directory again, with logDirSDDL.
func recreateLogDir(dir string, _ logDirAttrs) error { return createLogDir(dir) }
