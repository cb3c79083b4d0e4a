package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// TestMessageTableHasEventIDs: the message table linked into the exe (from
// rsrc_windows_amd64.syso) gives Event Viewer a text for IDs 100, 101 and
// 102.
func TestMessageTableHasEventIDs(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.LoadLibraryEx(exe, 0, windows.LOAD_LIBRARY_AS_DATAFILE)
	if err != nil {
		t.Fatalf("LoadLibraryEx(%s): %v", exe, err)
	}
	defer windows.FreeLibrary(h)
	for _, id := range []uint32{eventService, eventRoute, eventBackend} {
		text := "event text " + fmt.Sprint(id)
		arg := uintptr(unsafe.Pointer(windows.StringToUTF16Ptr(text)))
		buf := make([]uint16, 512)
		n, err := windows.FormatMessage(windows.FORMAT_MESSAGE_FROM_HMODULE|windows.FORMAT_MESSAGE_ARGUMENT_ARRAY,
			uintptr(h), id, 0, buf, (*byte)(unsafe.Pointer(&arg)))
		if err != nil {
			t.Fatalf("FormatMessage(%d): %v", id, err)
		}
		if got := strings.TrimRight(windows.UTF16ToString(buf[:n]), "\r\n"); got != text {
			t.Errorf("message %d = %q; want %q", id, got, text)
		}
	}
}

// testKey creates a scratch registry key under HKCU (no elevation needed).
func testKey(t *testing.T) registry.Key {
	t.Helper()
	path := fmt.Sprintf(`Software\relaytcp-test-%d`, rand.Int64())
	k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.ALL_ACCESS)
	if err != nil {
		t.Fatalf("create test key: %v", err)
	}
	t.Cleanup(func() {
		k.Close()
		registry.DeleteKey(registry.CURRENT_USER, path)
	})
	return k
}

// TestRegistryConfigRoundTrip writes a configuration and reads it back.
func TestRegistryConfigRoundTrip(t *testing.T) {
	k := testKey(t)
	want := &Config{LogDir: `C:\DATA\LOGS`, Debug: true, MaxConn: 500, LogRetentionDays: 30, Routes: []RouteSpec{
		{LocalPort: 155, RemoteHost: "192.168.1.200", RemotePort: 110}, {LocalPort: 1088, RemoteHost: "www.mydomaindot.com", RemotePort: 80}, {LocalPort: 8080, RemoteHost: "::1", RemotePort: 9000},
		{BindAddr: "127.0.0.1", LocalPort: 25, RemoteHost: "mail", RemotePort: 25, Allow: "10.0.0.0/8", MaxConn: 10},
	}}
	if err := writeConfigValues(k, want); err != nil {
		t.Fatal(err)
	}
	got, err := readConfigValues(k)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read back %+v; want %+v", got, want)
	}
	routes, typ, err := k.GetStringsValue(valueRoutes)
	if err != nil || typ != registry.MULTI_SZ || routes[2] != "8080 [::1] 9000" {
		t.Fatalf("Routes value %q (type %d, %v)", routes, typ, err)
	}
}

// TestRegistryConfigMissingKey: a Parameters key that does not exist is
// not an empty configuration but a *configMissingError naming the key (the
// running service keeps its routes), with an empty configuration for
// saveRegistryConfig to create; the key back is read.
func TestRegistryConfigMissingKey(t *testing.T) {
	path := fmt.Sprintf(`Software\relaytcp-test-%d\Parameters`, rand.Int64())
	cfg, _, err := readRegistryConfig(registry.CURRENT_USER, `HKCU\`, path)
	if !isConfigMissing(err) || cfg == nil || len(cfg.Routes) != 0 || err.Error() != `registry key HKCU\`+path+` does not exist` {
		t.Fatalf("missing key: %+v, %v", cfg, err)
	}
	if code := configExitCode(err); code != exitNoConfig {
		t.Errorf("exit code %d; want %d", code, exitNoConfig)
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.ALL_ACCESS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.Close()
		registry.DeleteKey(registry.CURRENT_USER, path)
		registry.DeleteKey(registry.CURRENT_USER, strings.TrimSuffix(path, `\Parameters`))
	})
	k.SetStringsValue(valueRoutes, []string{"155 host 110"})
	if cfg, _, err := readRegistryConfig(registry.CURRENT_USER, `HKCU\`, path); err != nil || len(cfg.Routes) != 1 {
		t.Fatalf("key back: %+v, %v", cfg, err)
	}
}

// TestRegistryConfigForms: the value types an administrator may write.
func TestRegistryConfigForms(t *testing.T) {
	k := testKey(t)
	// Variables are the system's, which the service has.
	root := systemEnv()["SYSTEMROOT"]
	if root == "" {
		t.Fatal("the system environment has no SystemRoot")
	}
	k.SetExpandStringValue(valueLogDir, `%SystemRoot%\relay`)
	k.SetDWordValue(valueDebug, 1)
	k.SetStringsValue(valueRoutes, []string{"155 host 110", ""})
	cfg, err := readConfigValues(k)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogDir != root+`\relay` || !cfg.Debug || len(cfg.Routes) != 1 {
		t.Fatalf("got %+v", cfg)
	}
	// REG_SZ is expanded too (the MSI cannot write REG_EXPAND_SZ).
	k.SetStringValue(valueLogDir, `%SystemRoot%\sz`)
	if cfg, err := readConfigValues(k); err != nil || cfg.LogDir != root+`\sz` {
		t.Fatalf("REG_SZ LogDir: %+v, %v", cfg, err)
	}

	bad := []struct {
		set  func()
		want string
	}{
		{func() { k.SetStringValue(valueDebug, "yes") }, `Debug: invalid debug value "yes"`},
		{func() { k.SetStringValue(valueMaxConn, "lots") }, `MaxConn: want a whole number`},
		{func() { k.SetDWordValue(valueDebug, 7) }, `Debug: want REG_SZ "0" or "1"`},
		{func() { k.SetStringValue(valueRoutes, "155 host 110") }, `Routes`},
		{func() { k.SetStringsValue(valueRoutes, []string{"155 host 110", "156 host x"}) }, `Routes: route 1: invalid remote port "x"`},
		{func() { k.SetStringsValue(valueRoutes, []string{"155 a 1", "155 b 2"}) }, "local port 155 is already used by route 0"},
	}
	for _, b := range bad {
		k.SetStringValue(valueDebug, "0")
		k.SetStringsValue(valueRoutes, []string{"155 host 110"})
		k.DeleteValue(valueMaxConn)
		b.set()
		if _, err := readConfigValues(k); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("got %v; want an error containing %q", err, b.want)
		}
	}
}

// TestLogDirACL: a log directory relaytcp creates is for SYSTEM and
// Administrators only.
func TestLogDirACL(t *testing.T) {
	if windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil {
		t.Skip("wine 8 keeps no file ACLs: it reports a DACL made from the Unix mode, so this runs on Windows only")
	}
	dir := filepath.Join(tempDir(t), "new", "Logs")
	if err := createLogDir(dir); err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	got := sd.String()
	for _, want := range []string{"D:P", "(A;OICI;FA;;;SY)", "(A;OICI;FA;;;BA)"} {
		if !strings.Contains(got, want) {
			t.Errorf("log directory DACL %s lacks %s", got, want)
		}
	}
	if strings.Count(got, "(A;") != 2 {
		t.Errorf("log directory DACL %s: want exactly two allow entries", got)
	}
	// Files created inside can be written (by us, an Administrator here).
	if err := os.WriteFile(filepath.Join(dir, "CO000101.LOG"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLogDirExpandedAsTheService: a LogDir's %VARIABLES%, and the default
// log directory, are the service's (the system environment's) in every
// process, not the caller's: relaytcp status showed the caller's
// %ProgramData% (under wine C:\ProgramData, where the service writes
// C:\users\Public). Failed before: ExpandString used the caller's.
func TestLogDirExpandedAsTheService(t *testing.T) {
	system := systemEnv()["PROGRAMDATA"]
	if system == "" {
		t.Fatal("the system environment has no ProgramData")
	}
	t.Setenv("ProgramData", `C:\CallerOnly`)
	got, err := expandServiceEnv(`%ProgramData%\RelayTCP\Logs`)
	if want := system + `\RelayTCP\Logs`; err != nil || got != want {
		t.Errorf("expandServiceEnv = %q, %v; want %q", got, err, want)
	}
	if got, want := defaultLogDir(), filepath.Join(system, "RelayTCP", "Logs"); got != want {
		t.Errorf("defaultLogDir() = %q; want %q", got, want)
	}
	for in, want := range map[string]string{
		`C:\Logs`:                `C:\Logs`,
		`%NoSuchVariable%\x`:     `%NoSuchVariable%\x`,
		`100%\%PROGRAMDATA%`:     `100%\` + system,
		`%%\%systemroot%`:        `%%\` + systemEnv()["SYSTEMROOT"], // ExpandEnvironmentStrings keeps %%
		`%NoSuch%ProgramData%\x`: `%NoSuch` + system + `\x`,
		`%ProgramData`:           `%ProgramData`,
	} {
		if got, _ := expandServiceEnv(in); got != want {
			t.Errorf("expandServiceEnv(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestManifestEmbedded: the executable's application manifest (RT_MANIFEST
// 1, from rsrc_windows_amd64.syso) asks for no elevation (asInvoker) and
// names the supported Windows versions.
func TestManifestEmbedded(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.LoadLibraryEx(exe, 0, windows.LOAD_LIBRARY_AS_DATAFILE)
	if err != nil {
		t.Fatalf("LoadLibraryEx(%s): %v", exe, err)
	}
	defer windows.FreeLibrary(h)
	res, err := windows.FindResource(h, windows.CREATEPROCESS_MANIFEST_RESOURCE_ID, windows.RT_MANIFEST)
	if err != nil {
		t.Fatalf("no manifest resource: %v", err)
	}
	data, err := windows.LoadResourceData(h, res)
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(data)
	for _, want := range []string{
		`<requestedExecutionLevel level="asInvoker" uiAccess="false" />`,
		"{35138b9a-5d96-4fbd-8e2d-a2440225f93a}", // Windows 7
		"{4a2f28e3-53b9-4441-ba9c-d69d4a4a6e38}", // 8
		"{1f676c76-80e1-4239-95bb-83d0f6d0da78}", // 8.1
		"{8e0f7a12-bfb3-4fe8-b9a5-48fd50a15a9a}", // 10 and 11
	} {
		if !strings.Contains(manifest, want) {
			t.Errorf("the manifest lacks %s", want)
		}
	}
	if strings.Contains(manifest, "requireAdministrator") || strings.Contains(manifest, "highestAvailable") {
		t.Error("the manifest asks for elevation: the relay and status must not")
	}
}

// installTestService installs an RelayTCPsvc service (this test binary,
// never started) for a test that changes its Parameters key, when there is
// none, and removes it, with its key, after the test.
func installTestService(t *testing.T) {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatalf("connect to the service manager: %v", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(serviceName); err == nil {
		s.Close()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{StartType: mgr.StartManual}, "service")
	if err != nil {
		t.Fatalf("create service %s: %v", serviceName, err)
	}
	s.Close()
	t.Cleanup(func() { removeTestService(t) })
}

// removeTestService deletes the RelayTCPsvc service, and so its
// Parameters key, if there is one.
func removeTestService(t *testing.T) {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatalf("connect to the service manager: %v", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return
	}
	defer s.Close()
	if err := s.Delete(); err != nil {
		t.Fatalf("delete service %s: %v", serviceName, err)
	}
	registry.DeleteKey(registry.LOCAL_MACHINE, parametersKey)
}

// needRegistryTests skips a test that changes the real service and its
// Parameters key unless registryTestEnv allows it.
func needRegistryTests(t *testing.T) {
	t.Helper()
	if os.Getenv(registryTestEnv) != "1" {
		t.Skipf("changes HKLM\\...\\RelayTCPsvc: set %s=1 to run it (scripts/wine-test.sh does, in a throwaway prefix)", registryTestEnv)
	}
}

// TestEditRefusedWithoutService: with no RelayTCPsvc service, route add
// and the admin menu change nothing and create no Parameters key (an
// orphan, which the next install took instead of ConfigBackup). Failed
// before: the key was created.
func TestEditRefusedWithoutService(t *testing.T) {
	needRegistryTests(t)
	removeTestService(t)
	registry.DeleteKey(registry.LOCAL_MACHINE, parametersKey)
	var stdout, stderr bytes.Buffer
	code := run([]string{"route", "add", "19155", "127.0.0.1", "110"}, os.Stdin, &stdout, &stderr)
	if code != exitRuntime || !strings.Contains(stderr.String(), "relaytcp route: the RelayTCPsvc service is not installed (run the MSI or relaytcp install first): nothing was changed") {
		t.Errorf("route add: exit %d, stderr %q; want exit %d and the service not installed", code, stderr.String(), exitRuntime)
	}
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, parametersKey, registry.QUERY_VALUE); err == nil {
		k.Close()
		t.Error("route add created the Parameters key of a service that is not installed")
	}
	stdout.Reset()
	code = runAdmin(windowsManager{}, strings.NewReader("3\n1\n4\n"), &stdout)
	out := stdout.String()
	if code != exitOK || !strings.Contains(out, "The RelayTCPsvc service is not installed: this menu cannot change its configuration") || strings.Contains(out, "Local port") {
		t.Errorf("admin menu: exit %d\n%s", code, out)
	}
}

// TestAdminMenuNoticesUninstall: a menu opened while the service was
// installed refuses edits once it is uninstalled, with a line that says
// so, and still exits on 4. Failed before: the menu added the route.
func TestAdminMenuNoticesUninstall(t *testing.T) {
	needRegistryTests(t)
	installTestService(t)
	in, feed := io.Pipe()
	var out lockedBuffer
	done := make(chan int)
	go func() { done <- runAdmin(windowsManager{}, in, &out) }()
	waitFor(t, &out, "Option: ")
	removeTestService(t)
	io.WriteString(feed, "3\n")
	waitFor(t, &out, "this menu cannot change its configuration any more")
	io.WriteString(feed, "1\n4\n")
	if code := <-done; code != exitOK {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(out.String(), "Local port") {
		t.Errorf("the menu asked for a route of an uninstalled service:\n%s", out.String())
	}
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, parametersKey, registry.QUERY_VALUE); err == nil {
		k.Close()
		t.Error("a Parameters key is left after the uninstall")
	}
}

// lockedBuffer is a bytes.Buffer that a goroutine writes while the test
// reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits up to 10 s for text in b.
func waitFor(t *testing.T, b *lockedBuffer, text string) {
	t.Helper()
	for range 200 {
		if strings.Contains(b.String(), text) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %q within 10s in:\n%s", text, b.String())
}

// TestRestoreOverOrphanParameters: an install restores ConfigBackup over a
// Parameters key that no install made (an orphan: its values all go), but
// not over an installed key with routes; without a backup an orphan is
// kept. Every key is marked as installed afterwards. Failed before: the
// orphan's routes won over the backup.
func TestRestoreOverOrphanParameters(t *testing.T) {
	needRegistryTests(t)
	installTestService(t)
	setKey := func(path string, routes []string, metrics string, installed bool) {
		t.Helper()
		registry.DeleteKey(registry.LOCAL_MACHINE, path)
		k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, path, registry.ALL_ACCESS)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		k.SetStringsValue(valueRoutes, routes)
		if metrics != "" {
			k.SetStringValue(valueMetrics, metrics)
		}
		if installed {
			k.SetStringValue(valueInstalledBy, installedByMSI)
		}
	}
	read := func(path, name string) string {
		t.Helper()
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE)
		if err != nil {
			return "(no key)"
		}
		defer k.Close()
		if v, _, err := k.GetStringsValue(name); err == nil {
			return strings.Join(v, "|")
		}
		if v, _, err := k.GetStringValue(name); err == nil {
			return v
		}
		return "(none)"
	}
	t.Cleanup(func() { registry.DeleteKey(registry.LOCAL_MACHINE, backupKey) })

	// An orphan and a backup: the backup wins, whole.
	setKey(parametersKey, []string{"19001 orphan 1"}, "127.0.0.1:19999", false)
	setKey(backupKey, []string{"19002 backup 2"}, "", false)
	if err := restoreRegistryConfig(installedByMSI); err != nil {
		t.Fatal(err)
	}
	if got := read(parametersKey, valueRoutes); got != "19002 backup 2" {
		t.Errorf("orphan and backup: Routes %q; want the backup's", got)
	}
	if got := read(parametersKey, valueMetrics); got != "(none)" {
		t.Errorf("orphan and backup: the orphan's MetricsAddr %q stayed", got)
	}
	if got := read(parametersKey, valueInstalledBy); got != installedByMSI {
		t.Errorf("InstalledBy %q; want %q", got, installedByMSI)
	}
	if got := read(backupKey, valueRoutes); got != "(no key)" {
		t.Errorf("the backup was not deleted: %q", got)
	}

	// An installed key with routes (a repair): kept, and the backup too.
	setKey(parametersKey, []string{"19003 installed 3"}, "", true)
	setKey(backupKey, []string{"19002 backup 2"}, "", false)
	if err := restoreRegistryConfig(installedByCommand); err != nil {
		t.Fatal(err)
	}
	if got := read(parametersKey, valueRoutes); got != "19003 installed 3" {
		t.Errorf("installed key: Routes %q; want its own", got)
	}
	if got := read(backupKey, valueRoutes); got != "19002 backup 2" {
		t.Errorf("installed key: the backup went: %q", got)
	}

	// An orphan without a backup: kept, and marked.
	registry.DeleteKey(registry.LOCAL_MACHINE, backupKey)
	setKey(parametersKey, []string{"19004 orphan 4"}, "", false)
	if err := restoreRegistryConfig(installedByCommand); err != nil {
		t.Fatal(err)
	}
	if got, mark := read(parametersKey, valueRoutes), read(parametersKey, valueInstalledBy); got != "19004 orphan 4" || mark != installedByCommand {
		t.Errorf("orphan alone: Routes %q, InstalledBy %q; want it kept and marked %q", got, mark, installedByCommand)
	}
}

// TestStartFailureWords: what relaytcp start says of a service that
// stopped instead of running, from its exit code and a check of the
// configuration.
func TestStartFailureWords(t *testing.T) {
	needRegistryTests(t)
	installTestService(t)
	if err := saveRegistryConfig(&Config{}); err != nil {
		t.Fatal(err)
	}
	specific := func(code uint32) svc.Status {
		return svc.Status{State: svc.Stopped, Win32ExitCode: uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR), ServiceSpecificExitCode: code}
	}
	for _, tc := range []struct {
		st   svc.Status
		want string
	}{
		{specific(serviceExitNoRoutes), "the service could not start: no routes configured: add one with relaytcp route add LOCALPORT REMOTEHOST REMOTEPORT (the Application event log, source RelayTCPsvc, has its events)"},
		{specific(serviceExitNoneStarted), "the service could not start: none of its routes could start (a port taken, a name that does not resolve) (the Application event log"},
		{specific(serviceExitConfig), "the service could not start: its configuration does not load"},
		{specific(42), "the service could not start: service-specific exit code 42"},
		{svc.Status{State: svc.Stopped, Win32ExitCode: uint32(windows.ERROR_ACCESS_DENIED)}, "the service could not start: " + windows.ERROR_ACCESS_DENIED.Error()},
	} {
		if got := startFailure(tc.st).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("startFailure(%+v) = %q; want it to start with %q", tc.st, got, tc.want)
		}
	}
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, parametersKey, registry.SET_VALUE)
	if err != nil {
		t.Fatal(err)
	}
	k.SetStringsValue(valueRoutes, []string{"155 host x"})
	k.Close()
	if got := startFailure(specific(serviceExitConfig)).Error(); !strings.Contains(got, `its configuration does not load: HKLM\SYSTEM\CurrentControlSet\Services\RelayTCPsvc\Parameters\Routes: route 0: invalid remote port "x"`) {
		t.Errorf("bad config: %q; want the check's error", got)
	}
}
