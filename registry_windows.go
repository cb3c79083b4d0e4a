package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// parametersKey is where the service's configuration lives, as in
// RelayTCP 1.0 (under HKEY_LOCAL_MACHINE).
const parametersKey = `SYSTEM\CurrentControlSet\Services\` + serviceName + `\Parameters`

// The configuration's registry values.
const (
	valueLogDir = "LogDir" // REG_SZ or REG_EXPAND_SZ; %VARIABLES% are expanded in both
	valueDebug  = "Debug"  // REG_SZ "1"/"0", or REG_DWORD 1/0
	valueRoutes = "Routes" // REG_MULTI_SZ, one "LOCALPORT REMOTEHOST REMOTEPORT" per route

	valueMaxConn   = "MaxConn"          // REG_DWORD or REG_SZ: open connections of all routes; 0 no cap
	valueClientMax = "ClientMaxConn"    // REG_DWORD or REG_SZ: open connections of one client, all routes; 0 no cap
	valueRetention = "LogRetentionDays" // REG_DWORD or REG_SZ: delete logs older than that; 0 keeps all
	valueMetrics   = "MetricsAddr"      // REG_SZ IP:PORT: serve /metrics there; missing or empty: off
)

// readCount reads a whole-number value written as REG_DWORD or REG_SZ; a
// missing value is 0.
func readCount(k registry.Key, name, where string) (int, error) {
	n, _, err := k.GetIntegerValue(name)
	switch {
	case err == nil:
		return int(n), nil
	case errors.Is(err, registry.ErrNotExist):
		return 0, nil
	case errors.Is(err, registry.ErrUnexpectedType):
		s, _, serr := k.GetStringValue(name)
		if serr == nil {
			if s = strings.TrimSpace(s); s == "" || s == "0" {
				return 0, nil
			}
			if v, perr := parseCount(name, s); perr == nil {
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("%s: want a whole number as REG_DWORD or REG_SZ", where)
}

// loadRegistryConfig reads the configuration from the Parameters key. A
// missing value is an empty setting; a value of the wrong type or form is
// an error naming it. A missing key is a *configMissingError, which comes
// with an empty configuration (saveRegistryConfig creates the key).
func loadRegistryConfig() (*Config, error) {
	cfg, _, err := readRegistryConfig(registry.LOCAL_MACHINE, `HKLM\`, parametersKey)
	return cfg, err
}

// readRegistryConfig reads the configuration from the key at path under
// root (named rootName in messages), with the key's last write time as the
// version that the service's reloads compare (configReloader).
func readRegistryConfig(root registry.Key, rootName, path string) (cfg *Config, version string, err error) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return &Config{}, "", &configMissingError{what: "registry key " + rootName + path}
	}
	if err != nil {
		return nil, "", fmt.Errorf(`open %s%s: %w`, rootName, path, err)
	}
	defer k.Close()
	if info, err := k.Stat(); err == nil {
		version = strconv.FormatInt(info.ModTime().UnixNano(), 10)
	}
	cfg, err = readConfigValues(k)
	return cfg, version, err
}

// readConfigValues reads LogDir, Debug and Routes from an open key.
func readConfigValues(k registry.Key) (*Config, error) {
	cfg := &Config{}
	where := func(name string) string { return `HKLM\` + parametersKey + `\` + name }

	logDir, _, err := k.GetStringValue(valueLogDir)
	switch {
	case errors.Is(err, registry.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%s: %w (want REG_SZ or REG_EXPAND_SZ)", where(valueLogDir), err)
	default:
		// The MSI can only write REG_SZ, so %VARIABLES% are expanded in
		// both types, as the service has them.
		if cfg.LogDir, err = expandServiceEnv(strings.TrimSpace(logDir)); err != nil {
			return nil, fmt.Errorf("%s: expand %q: %w", where(valueLogDir), logDir, err)
		}
	}

	switch s, _, err := k.GetStringValue(valueDebug); {
	case err == nil:
		if cfg.Debug, err = parseDebug(s); err != nil {
			return nil, fmt.Errorf("%s: %w", where(valueDebug), err)
		}
	case errors.Is(err, registry.ErrNotExist):
	case errors.Is(err, registry.ErrUnexpectedType):
		d, _, derr := k.GetIntegerValue(valueDebug)
		if derr != nil || d > 1 {
			return nil, fmt.Errorf("%s: want REG_SZ \"0\" or \"1\", or REG_DWORD 0 or 1", where(valueDebug))
		}
		cfg.Debug = d == 1
	default:
		return nil, fmt.Errorf("%s: %w", where(valueDebug), err)
	}

	if cfg.MaxConn, err = readCount(k, valueMaxConn, where(valueMaxConn)); err != nil {
		return nil, err
	}
	if cfg.ClientMaxConn, err = readCount(k, valueClientMax, where(valueClientMax)); err != nil {
		return nil, err
	}
	if cfg.LogRetentionDays, err = readCount(k, valueRetention, where(valueRetention)); err != nil {
		return nil, err
	}

	switch addr, _, err := k.GetStringValue(valueMetrics); {
	case err == nil:
		if addr = strings.TrimSpace(addr); addr != "" {
			if cfg.MetricsAddr, err = parseMetricsAddr(addr); err != nil {
				return nil, fmt.Errorf("%s: %w", where(valueMetrics), err)
			}
		}
	case errors.Is(err, registry.ErrNotExist):
	default:
		return nil, fmt.Errorf("%s: %w (want REG_SZ IP:PORT)", where(valueMetrics), err)
	}

	routes, _, err := k.GetStringsValue(valueRoutes)
	switch {
	case errors.Is(err, registry.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%s: %w (want REG_MULTI_SZ, one route per string)", where(valueRoutes), err)
	}
	for _, text := range routes {
		if strings.TrimSpace(text) == "" {
			continue // an empty string ends a REG_MULTI_SZ typed by hand
		}
		r, err := ParseRouteSpec(text)
		if err != nil {
			return nil, fmt.Errorf("%s: route %d: %w", where(valueRoutes), len(cfg.Routes), err)
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", where(valueRoutes), err)
	}
	return cfg, nil
}

// saveRegistryConfig writes the configuration to the Parameters key,
// creating it when missing. LogDir keeps the type it had (REG_EXPAND_SZ when
// it holds a %VARIABLE%); an empty LogDir removes the value.
func saveRegistryConfig(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, parametersKey, registry.QUERY_VALUE|registry.SET_VALUE)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf(`write HKLM\%s: %w (run as Administrator)`, parametersKey, err)
		}
		return fmt.Errorf(`write HKLM\%s: %w`, parametersKey, err)
	}
	defer k.Close()
	return writeConfigValues(k, cfg)
}

// writeConfigValues writes LogDir, Debug and Routes to an open key.
func writeConfigValues(k registry.Key, cfg *Config) error {
	routes := make([]string, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = r.String()
	}
	if err := k.SetStringsValue(valueRoutes, routes); err != nil {
		return fmt.Errorf("write %s: %w", valueRoutes, err)
	}
	if err := k.SetStringValue(valueDebug, strconv.Itoa(boolInt(cfg.Debug))); err != nil {
		return fmt.Errorf("write %s: %w", valueDebug, err)
	}
	for name, n := range map[string]int{valueMaxConn: cfg.MaxConn, valueClientMax: cfg.ClientMaxConn, valueRetention: cfg.LogRetentionDays} {
		if err := k.SetDWordValue(name, uint32(n)); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if cfg.MetricsAddr == "" {
		if err := k.DeleteValue(valueMetrics); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", valueMetrics, err)
		}
	} else if err := k.SetStringValue(valueMetrics, cfg.MetricsAddr); err != nil {
		return fmt.Errorf("write %s: %w", valueMetrics, err)
	}
	// LogDir is kept as the administrator wrote it (unexpanded) unless the
	// configuration changed it.
	old, valType, err := k.GetStringValue(valueLogDir)
	if err == nil {
		if expanded, _ := expandServiceEnv(strings.TrimSpace(old)); expanded == cfg.LogDir {
			return nil
		}
	}
	if cfg.LogDir == "" {
		if err := k.DeleteValue(valueLogDir); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", valueLogDir, err)
		}
		return nil
	}
	if valType == registry.EXPAND_SZ || strings.Contains(cfg.LogDir, "%") {
		err = k.SetExpandStringValue(valueLogDir, cfg.LogDir)
	} else {
		err = k.SetStringValue(valueLogDir, cfg.LogDir)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", valueLogDir, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// backupKey holds a copy of the Parameters values while the MSI upgrades
// the product: removing the old product deletes the service, and with it
// its Parameters key. The old product's uninstall runs
// "relaytcp backup-config", the new product's install "relaytcp
// restore-config". After a plain uninstall the copy stays, so a later
// install finds its routes again.
const backupKey = `SOFTWARE\RelayTCP\ConfigBackup`

// copyConfigValues copies LogDir, Debug, the counts, MetricsAddr and Routes
// from one key to another,
// keeping their types. Missing values are skipped.
func copyConfigValues(src, dst registry.Key) error {
	if s, typ, err := src.GetStringValue(valueLogDir); err == nil {
		if typ == registry.EXPAND_SZ {
			err = dst.SetExpandStringValue(valueLogDir, s)
		} else {
			err = dst.SetStringValue(valueLogDir, s)
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", valueLogDir, err)
		}
	}
	if s, _, err := src.GetStringValue(valueDebug); err == nil {
		if err := dst.SetStringValue(valueDebug, s); err != nil {
			return fmt.Errorf("copy %s: %w", valueDebug, err)
		}
	} else if d, _, err := src.GetIntegerValue(valueDebug); err == nil {
		if err := dst.SetDWordValue(valueDebug, uint32(d)); err != nil {
			return fmt.Errorf("copy %s: %w", valueDebug, err)
		}
	}
	for _, name := range []string{valueMaxConn, valueClientMax, valueRetention} {
		if n, _, err := src.GetIntegerValue(name); err == nil {
			if err := dst.SetDWordValue(name, uint32(n)); err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
		} else if s, _, err := src.GetStringValue(name); err == nil {
			if err := dst.SetStringValue(name, s); err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
		}
	}
	if s, _, err := src.GetStringValue(valueMetrics); err == nil {
		if err := dst.SetStringValue(valueMetrics, s); err != nil {
			return fmt.Errorf("copy %s: %w", valueMetrics, err)
		}
	}
	if routes, _, err := src.GetStringsValue(valueRoutes); err == nil {
		if err := dst.SetStringsValue(valueRoutes, routes); err != nil {
			return fmt.Errorf("copy %s: %w", valueRoutes, err)
		}
	}
	return nil
}

// backupRegistryConfig copies the Parameters values to backupKey.
func backupRegistryConfig() error {
	src, err := registry.OpenKey(registry.LOCAL_MACHINE, parametersKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil // nothing configured
	}
	if err != nil {
		return fmt.Errorf(`open HKLM\%s: %w`, parametersKey, err)
	}
	defer src.Close()
	registry.DeleteKey(registry.LOCAL_MACHINE, backupKey) // an older copy
	dst, _, err := registry.CreateKey(registry.LOCAL_MACHINE, backupKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf(`create HKLM\%s: %w`, backupKey, err)
	}
	defer dst.Close()
	return copyConfigValues(src, dst)
}

// valueInstalledBy marks a Parameters key that an install made: the MSI
// (restore-config) or relaytcp install writes it. A key without it was
// written while the service was not installed (by an older relaytcp, a
// script, regedit): an orphan, which a ConfigBackup replaces.
const valueInstalledBy = "InstalledBy"

// Who installed: the values of valueInstalledBy.
const (
	installedByMSI     = "MSI"
	installedByCommand = "relaytcp install"
)

// restoreRegistryConfig prepares the Parameters key of a service being
// installed (by is installedByMSI or installedByCommand), creating it when
// missing. When there is a copy in backupKey, it is restored and deleted,
// unless the key was made by an install and has routes (a repair, a second
// relaytcp install): a restore never overwrites an installed
// configuration. A key no install made (an orphan) is replaced by the copy;
// without a copy, it is kept. Either way the key is marked as installed.
func restoreRegistryConfig(by string) error {
	dst, _, err := registry.CreateKey(registry.LOCAL_MACHINE, parametersKey, registry.QUERY_VALUE|registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf(`create HKLM\%s: %w`, parametersKey, err)
	}
	defer dst.Close()
	if err := restoreBackup(dst); err != nil {
		return err
	}
	if err := dst.SetStringValue(valueInstalledBy, by); err != nil {
		return fmt.Errorf(`write HKLM\%s\%s: %w`, parametersKey, valueInstalledBy, err)
	}
	return nil
}

// restoreBackup copies backupKey's values into dst, the Parameters key,
// as restoreRegistryConfig says, and deletes the copy.
func restoreBackup(dst registry.Key) error {
	src, err := registry.OpenKey(registry.LOCAL_MACHINE, backupKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(`open HKLM\%s: %w`, backupKey, err)
	}
	defer src.Close()
	_, _, markErr := dst.GetStringValue(valueInstalledBy)
	installed := markErr == nil
	if routes, _, err := dst.GetStringsValue(valueRoutes); installed && err == nil && len(routes) > 0 && routes[0] != "" {
		return nil
	}
	if !installed {
		// The orphan's values go, so that none of them outlives the
		// restore (LogDir, which the MSI has just written, stays unless the
		// copy has one).
		for _, name := range []string{valueRoutes, valueDebug, valueMaxConn, valueClientMax, valueRetention, valueMetrics} {
			if err := dst.DeleteValue(name); err != nil && !errors.Is(err, registry.ErrNotExist) {
				return fmt.Errorf(`delete HKLM\%s\%s: %w`, parametersKey, name, err)
			}
		}
	}
	if err := copyConfigValues(src, dst); err != nil {
		return err
	}
	src.Close()
	if err := registry.DeleteKey(registry.LOCAL_MACHINE, backupKey); err != nil {
		return fmt.Errorf(`delete HKLM\%s: %w`, backupKey, err)
	}
	return nil
}
