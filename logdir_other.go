//go:build !windows

package main

import (
	"fmt"
	"os"
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
