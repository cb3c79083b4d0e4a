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
// systemd wants it. SIGHUP, or a change of the config file (checked every
// configCheckInterval), re-reads the file and applies it. Events go to
// stderr (the journal under systemd).
func runService(configPath string, stderr io.Writer) int {
	log := &stderrLog{w: stderr}
	cfg, _, err := loadConfigFile(configPath)
	if err != nil {
		log.Error(eventService, fmt.Sprintf(msgStartError, err))
		return exitConfig
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)

	s, err := startService(cfg, log, controlPath(configPath))
	if err != nil {
		return exitRuntime
	}
	seen := fileStamp(configPath)
	tick := time.NewTicker(configCheckInterval)
	defer tick.Stop()
	for {
		select {
		case sig := <-signals:
			if sig != syscall.SIGHUP {
				stopWithDrain(DefaultDrainTimeout, signals, s.shutdown)
				return exitOK
			}
		case <-tick.C:
			now := fileStamp(configPath)
			if now == seen {
				continue
			}
			seen = now
		}
		seen = fileStamp(configPath)
		cfg, _, err := loadConfigFile(configPath)
		if err != nil {
			log.Error(eventService, fmt.Sprintf(msgBadReload, err))
			continue
		}
		s.apply(cfg)
	}
}

// configCheckInterval is how often the service looks for a changed config
// file.
const configCheckInterval = 2 * time.Second

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
// through systemctl.
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

func (m *unixManager) LoadConfig() (*Config, error) {
	cfg, f, err := loadConfigFile(m.path)
	if err != nil {
		return nil, err
	}
	m.file = f
	return cfg, nil
}

// SaveConfig writes the file as last loaded, with cfg's settings and
// routes, and, when the service runs, asks systemd to reload it (SIGHUP),
// so the change applies without a restart.
func (m *unixManager) SaveConfig(cfg *Config) error {
	if m.file == nil {
		return fmt.Errorf("save config %s: not loaded first", m.path)
	}
	if err := m.file.save(cfg); err != nil {
		return err
	}
	if m.Status() == "Running" {
		if err := systemctl("reload", systemdUnit); err != nil {
			return fmt.Errorf("saved %s, but the service did not reload it: %w", m.path, err)
		}
	}
	return nil
}

func (m *unixManager) Start() error { return systemctl("start", systemdUnit) }
func (m *unixManager) Stop() error  { return systemctl("stop", systemdUnit) }

// Status maps systemd's states to the manual's words.
func (m *unixManager) Status() string {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return statusNotInstalled + " (no systemctl here)"
	}
	out, err := exec.Command("systemctl", "show", "-p", "LoadState,ActiveState", systemdUnit).Output()
	if err != nil {
		// No running systemd (a container, say): no service either.
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
