package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
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
	os.Setenv("RELAYTCP_TEST_DIR", `C:\Logs`)
	k.SetExpandStringValue(valueLogDir, `%RELAYTCP_TEST_DIR%\relay`)
	k.SetDWordValue(valueDebug, 1)
	k.SetStringsValue(valueRoutes, []string{"155 host 110", ""})
	cfg, err := readConfigValues(k)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogDir != `C:\Logs\relay` || !cfg.Debug || len(cfg.Routes) != 1 {
		t.Fatalf("got %+v", cfg)
	}
	// REG_SZ is expanded too (the MSI cannot write REG_EXPAND_SZ).
	k.SetStringValue(valueLogDir, `%RELAYTCP_TEST_DIR%\sz`)
	if cfg, err := readConfigValues(k); err != nil || cfg.LogDir != `C:\Logs\sz` {
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
