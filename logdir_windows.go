package main

import (
	"fmt"
	"os"
	"path/filepath"
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

// createLogDir creates the log directory when missing.
func createLogDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	return nil
}
