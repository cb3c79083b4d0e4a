//go:build !windows

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// systemdUnit is the unit that runs "relaytcp service" (scripts/relaytcp.service).
const systemdUnit = "relaytcp.service"

// runService runs the service in the foreground until SIGTERM or SIGINT, as
// systemd wants it, or until relaytcp stop asks it on the control channel
// (a service started by hand, where there is no systemd). SIGHUP, or a
// change of the config file (checked every configCheckInterval), re-reads
// the file and applies it by configReloader's rules: a file that is gone or
// broken keeps the running routes, one without routes applies once it has
// settled. Events go to stderr (the journal under systemd).
func runService(configPath string, stderr io.Writer) int {
	log := &stderrLog{w: stderr}
	cfg, _, err := loadConfigFile(configPath)
	if err != nil {
		log.Error(eventService, fmt.Sprintf(msgStartError, err))
		return configExitCode(err)
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)

	s, err := startService(cfg, log, controlPath(configPath))
	if err != nil {
		return exitRuntime
	}
	reloader := &configReloader{Apply: s.apply, Log: log, Load: func() (*Config, string, error) {
		version := fileStamp(configPath)
		if fi, err := os.Stat(configPath); err == nil && fi.Size() == 0 {
			// A file emptied is a write that failed or has not happened
			// yet, not an intent: one meant to run no routes says so with
			// a comment line.
			return nil, version, fmt.Errorf("config file %s is empty (0 bytes); a file meant to have no routes has at least a comment line", configPath)
		}
		cfg, _, err := loadConfigFile(configPath)
		return cfg, version, err
	}}
	seen := fileStamp(configPath)
	tick := time.NewTicker(configCheckInterval)
	defer tick.Stop()
	var recheck <-chan time.Time // while a configuration without routes settles
	for {
		asked := false
		select {
		case <-s.stopRequests(): // relaytcp stop, through the control channel
			stopWithDrain(DefaultDrainTimeout, signals, s.shutdown)
			return exitOK
		case sig := <-signals:
			if sig != syscall.SIGHUP {
				stopWithDrain(DefaultDrainTimeout, signals, s.shutdown)
				return exitOK
			}
			asked = true
		case <-tick.C:
			now := fileStamp(configPath)
			if now == seen {
				continue
			}
			seen = now
		case <-recheck:
		}
		seen = fileStamp(configPath)
		recheck = recheckAfter(reloader.Reload(time.Now(), asked))
	}
}

// fileStamp identifies a version of a file: its modification time, size
// and inode (an atomic save renames a new file over it).
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	return fmt.Sprintf("%d/%d/%d", fi.ModTime().UnixNano(), fi.Size(), ino)
}

// startedAsService: systemd runs "relaytcp service" explicitly.
func startedAsService() bool { return false }

// runInstall: on Linux, systemd installs the service (scripts/relaytcp.service).
func runInstall(name string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "relaytcp %s: only on Windows; on Linux install scripts/relaytcp.service with systemd (see the README)\n", name)
	return exitUsage
}

// unixManager keeps the configuration in a file and reaches the service
// through systemctl, or, for a service started by hand (no systemd: a
// container, WSL, a small host), through its control channel.
type unixManager struct {
	path string
	file *configFile // as last loaded, so that saving keeps its comments
}

func newServiceManager(configPath string) (serviceManager, error) {
	return &unixManager{path: configPath}, nil
}

func (m *unixManager) ConfigLocation() string { return m.path }

// configNeedsService: the config file stands on its own; it may be written
// before systemd knows the unit, or without systemd.
const configNeedsService = false

// LoadConfig reads the config file. One that does not exist comes back
// empty with a *configMissingError, ready for SaveConfig to create it.
func (m *unixManager) LoadConfig() (*Config, error) {
	cfg, f, err := loadConfigFile(m.path)
	if f != nil {
		m.file = f
	}
	return cfg, err
}

// SaveConfig writes the file as last loaded, with cfg's settings and
// routes, and, when systemd runs the service, asks it to reload the file
// (SIGHUP), so the change applies without a restart. A service started by
// hand sees the file change by itself (configCheckInterval).
func (m *unixManager) SaveConfig(cfg *Config) error {
	if m.file == nil {
		return fmt.Errorf("save config %s: not loaded first", m.path)
	}
	if err := m.file.save(cfg); err != nil {
		return err
	}
	if m.unitStatus() == "Running" {
		if err := systemctl("reload", systemdUnit); err != nil {
			return fmt.Errorf("saved %s, but the service did not reload it: %w", m.path, err)
		}
	}
	return nil
}

// Start starts the systemd unit. Without systemd there is nothing to start:
// the error says how to run the service by hand. A service that answers on
// the control channel already runs, and is left alone.
func (m *unixManager) Start() error {
	if serviceAnswers(m.ControlPath()) {
		return nil
	}
	if !systemdRuns() {
		return fmt.Errorf("systemd is not running here, so there is no relaytcp unit to start; run the service yourself:\n"+
			"  relaytcp service -config %[1]s\n"+
			"      in the foreground (Ctrl-C stops it), or in the background:\n"+
			"  nohup relaytcp service -config %[1]s >>/var/log/relaytcp.log 2>&1 &\n"+
			"      (setsid works too), or from your init system or container entrypoint;\n"+
			"relaytcp status -config %[1]s shows it, relaytcp stop -config %[1]s stops it", m.path)
	}
	return systemctl("start", systemdUnit)
}

// Stop stops the systemd unit when systemd runs it, else asks the service
// on the control channel to stop (stopThroughControl).
func (m *unixManager) Stop() error {
	switch m.unitStatus() {
	case "Running", "Start pending", "Stop pending":
		return systemctl("stop", systemdUnit)
	}
	return stopThroughControl(m.ControlPath())
}

// Status is the systemd unit's state in the manual's words (unitStatus);
// a service that answers on the control channel while the unit does not
// run (or there is none) was started by hand, and is Running.
func (m *unixManager) Status() string {
	st := m.unitStatus()
	if st != "Running" && !strings.HasSuffix(st, "pending") && serviceAnswers(m.ControlPath()) {
		return "Running"
	}
	return st
}

// unitStatus maps systemd's states of the unit to the manual's words.
func (m *unixManager) unitStatus() string {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return statusNotInstalled + " (no systemctl here)"
	}
	if !systemdRuns() {
		// A container, WSL, a host with another init: no unit either.
		return statusNotInstalled + " (systemd is not running)"
	}
	out, err := exec.Command("systemctl", "show", "-p", "LoadState,ActiveState", systemdUnit).Output()
	if err != nil {
		return statusNotInstalled + " (systemd is not running)"
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = strings.TrimSpace(v)
		}
	}
	if props["LoadState"] != "loaded" {
		return statusNotInstalled
	}
	switch props["ActiveState"] {
	case "active", "reloading":
		return "Running"
	case "activating":
		return "Start pending"
	case "deactivating":
		return "Stop pending"
	case "failed":
		return "Stopped (failed)"
	}
	return "Stopped"
}

// systemdRuns reports whether systemd is the init system, as sd_booted(3)
// tells it: /run/systemd/system exists.
func systemdRuns() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// systemctl runs systemctl and turns its complaint into the error.
func systemctl(args ...string) error {
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		var ee *exec.Error
		if errors.As(err, &ee) {
			msg = "systemctl not found: manage the service with your init system"
		}
		return fmt.Errorf("systemctl %s: %s", strings.Join(args, " "), msg)
	}
	return nil
}

// ControlPath is the control socket of the service that uses this config
// file (controlPath).
func (m *unixManager) ControlPath() string { return controlPath(m.path) }
