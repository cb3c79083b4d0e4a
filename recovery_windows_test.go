package main

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc/mgr"
)

// wantFailureActionsHex is the FailureActions value of RelayTCPsvc: reset
// after 86400 s (80510100), no reboot message or command (0, 0), 2 actions
// (02000000) at offset 20 (14000000), restart (01000000) after 5000 ms
// (88130000), restart after 30000 ms (30750000). The wine scripts and the
// MSI (wix/relaytcp.wxs) carry the same hex.
const wantFailureActionsHex = "805101000000000000000000020000001400000001000000881300000100000030750000"

// TestRecoveryFailureActionsValue checks the bytes of the value, for the
// service's own actions and for the edge cases of the layout.
func TestRecoveryFailureActionsValue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reset   time.Duration
		actions []mgr.RecoveryAction
		want    string
	}{
		{"service", recoveryResetPeriod, recoveryActions(), wantFailureActionsHex},
		{"no actions", time.Hour, []mgr.RecoveryAction{}, "100e0000" + "00000000" + "00000000" + "00000000" + "00000000"},
		{"three kinds", 0, []mgr.RecoveryAction{
			{Type: mgr.ServiceRestart, Delay: 60 * time.Second},
			{Type: mgr.RunCommand, Delay: 1500 * time.Millisecond},
			{Type: mgr.NoAction},
		}, "00000000" + "00000000" + "00000000" + "03000000" + "14000000" +
			"01000000" + "60ea0000" + "03000000" + "dc050000" + "00000000" + "00000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hex.EncodeToString(failureActionsValue(tc.reset, tc.actions)); got != tc.want {
				t.Errorf("failureActionsValue = %s; want %s", got, tc.want)
			}
		})
	}
}

// scratchService creates a demand-start service with a random name for the
// test and deletes it at the end; it skips the test when this process may
// not create services (not elevated on Windows).
func scratchService(t *testing.T) *mgr.Service {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Skipf("cannot connect to the service manager (not elevated?): %v", err)
	}
	t.Cleanup(func() { m.Disconnect() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("RelayTCPtest%d", rand.Uint32())
	s, err := m.CreateService(name, exe, mgr.Config{StartType: mgr.StartManual}, "service")
	if err != nil {
		t.Skipf("cannot create a service (not elevated?): %v", err)
	}
	t.Cleanup(func() {
		s.Delete()
		s.Close()
	})
	return s
}

// readFailureActions reads the FailureActions value of service s; found is
// false when there is none.
func readFailureActions(t *testing.T, s *mgr.Service) (value []byte, found bool) {
	t.Helper()
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKeyPath(s.Name), registry.QUERY_VALUE)
	if err != nil {
		t.Fatalf(`open HKLM\%s: %v`, serviceKeyPath(s.Name), err)
	}
	defer k.Close()
	v, typ, err := k.GetBinaryValue(valueFailureActions)
	if err == registry.ErrNotExist {
		return nil, false
	}
	if err != nil {
		t.Fatalf("read %s of %s: %v (type %d)", valueFailureActions, s.Name, err, typ)
	}
	return v, true
}

// TestRecoveryStoredAsByTheSCM: where the SCM stores failure actions (real
// Windows), what it stores for the API call alone is what
// failureActionsValue builds. Under wine 8, which stores nothing, it skips.
func TestRecoveryStoredAsByTheSCM(t *testing.T) {
	s := scratchService(t)
	if err := s.SetRecoveryActions(recoveryActions(), uint32(recoveryResetPeriod/time.Second)); err != nil {
		t.Fatalf("SetRecoveryActions: %v", err)
	}
	got, found := readFailureActions(t, s)
	if !found {
		t.Skip("the SCM stored no FailureActions value (wine 8 does not persist ChangeServiceConfig2)")
	}
	if want := failureActionsValue(recoveryResetPeriod, recoveryActions()); hex.EncodeToString(got) != hex.EncodeToString(want) {
		t.Errorf("the SCM stored %x; failureActionsValue builds %x", got, want)
	}
}

// TestRecoverySetAtInstall: setRecoveryActions, as install calls it, leaves
// the service's FailureActions value with the expected bytes.
func TestRecoverySetAtInstall(t *testing.T) {
	s := scratchService(t)
	if err := setRecoveryActions(s); err != nil {
		t.Fatal(err)
	}
	got, found := readFailureActions(t, s)
	if !found {
		t.Fatalf("no %s value after setRecoveryActions", valueFailureActions)
	}
	if hex.EncodeToString(got) != wantFailureActionsHex {
		t.Errorf("FailureActions = %x; want %s", got, wantFailureActionsHex)
	}
}
