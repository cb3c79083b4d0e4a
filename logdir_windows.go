package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// defaultLogDir is where the service logs when LogDir is not set:
// %ProgramData%\RelayTCP\Logs, in the service's environment (systemEnv),
// whichever process asks. (RelayTCP 1.0 used %SystemRoot%\rTCPLogs;
// programs should not write under the Windows directory.)
func defaultLogDir() string {
	base := systemEnv()["PROGRAMDATA"]
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, "RelayTCP", "Logs")
}

// systemEnv is the system's environment variables, by upper-case name:
// the environment of a service that runs as LocalSystem. A command's own
// environment holds its user's variables too, which may differ (under
// wine, %ProgramData% does). Nil when Windows does not give it.
func systemEnv() map[string]string {
	vars, err := windows.Token(0).Environ(false)
	if err != nil {
		return nil
	}
	env := make(map[string]string, len(vars))
	for _, v := range vars {
		// A name may start with "=" (=C:=C:\dir): the first is no separator.
		if i := strings.IndexByte(v[min(1, len(v)):], '='); i >= 0 {
			env[strings.ToUpper(v[:i+1])] = v[i+2:]
		}
	}
	return env
}

// expandServiceEnv expands the %VARIABLES% of a LogDir value as the service
// does, with the system's environment (systemEnv), so that every process
// that reads the configuration finds the service's directory. A variable
// the system does not have stays as written, as ExpandEnvironmentStrings
// leaves it; without the system's environment, this process's is used.
func expandServiceEnv(s string) (string, error) {
	env := systemEnv()
	if env == nil {
		return registry.ExpandString(s)
	}
	var b strings.Builder
	for {
		start := strings.IndexByte(s, '%')
		if start < 0 {
			break
		}
		end := strings.IndexByte(s[start+1:], '%')
		if end < 0 {
			break
		}
		end += start + 1
		b.WriteString(s[:start])
		if value, ok := env[strings.ToUpper(s[start+1:end])]; ok && end > start+1 {
			b.WriteString(value)
			s = s[end+1:]
			continue
		}
		b.WriteString(s[start:end]) // not a variable: its closing % may open the next
		s = s[end:]
	}
	b.WriteString(s)
	return b.String(), nil
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
