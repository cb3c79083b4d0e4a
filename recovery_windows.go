package main

import (
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc/mgr"
)

// recoveryResetPeriod is how long the service must run without a failure
// before the SCM counts the next failure as the first again.
const recoveryResetPeriod = 24 * time.Hour

// valueFailureActions is the value of the service's key in which the SCM
// keeps its recovery actions (REG_BINARY, see failureActionsValue).
const valueFailureActions = "FailureActions"

// recoveryActions is what the SCM does when the service fails, that is,
// when its process ends without reporting Stopped (a crash, a kill): restart
// it after 5 s the first time and after 30 s the second. The SCM repeats the
// last action for later failures, so a crash loop restarts every 30 s. A stop
// the service reports itself (net stop, no routes, a bad configuration) is
// not a failure and is not retried.
func recoveryActions() []mgr.RecoveryAction {
	return []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	}
}

// setRecoveryActions gives service s its recovery actions (recoveryActions,
// reset after recoveryResetPeriod), as "sc qfailure" shows them, and writes
// them into the service key's FailureActions value too. On Windows the SCM
// stores these same bytes there itself, so the write changes nothing; wine's
// SCM keeps no failure actions, and the value is what the wine tests check,
// as the MSI writes it through its Registry table.
func setRecoveryActions(s *mgr.Service) error {
	actions := recoveryActions()
	if err := s.SetRecoveryActions(actions, uint32(recoveryResetPeriod/time.Second)); err != nil {
		return fmt.Errorf("set recovery actions of %s: %w", s.Name, err)
	}
	path := serviceKeyPath(s.Name)
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf(`set recovery actions of %s: open HKLM\%s: %w`, s.Name, path, err)
	}
	defer k.Close()
	if err := k.SetBinaryValue(valueFailureActions, failureActionsValue(recoveryResetPeriod, actions)); err != nil {
		return fmt.Errorf(`set recovery actions of %s: write HKLM\%s\%s: %w`, s.Name, path, valueFailureActions, err)
	}
	return nil
}

// serviceKeyPath is the registry key, under HKLM, of the service named name.
func serviceKeyPath(name string) string {
	return `SYSTEM\CurrentControlSet\Services\` + name
}

// failureActionsValue returns the FailureActions value as the SCM stores
// it for a reset period (in whole seconds) and actions (delays in whole
// milliseconds): SERVICE_FAILURE_ACTIONS with its pointers stored as 32-bit
// offsets, the same 20-byte header on 32- and 64-bit Windows, followed by
// the SC_ACTION array; every field a little-endian uint32:
//
//	offset  field
//	 0      dwResetPeriod, seconds
//	 4      reboot message: 0 (the message is the RebootMessage value)
//	 8      command: 0 (the command line is the FailureCommand value)
//	12      cActions
//	16      offset of the actions: 20 (0 when there are none)
//	20      cActions times {SC_ACTION_TYPE Type; DWORD Delay in ms}
//
// For a day's reset and restarts after 5 s and 30 s that is the 36 bytes
// 80510100 00000000 00000000 02000000 14000000 01000000 88130000 01000000 30750000.
//
// The header is the structure [MS-SCMR] 2.2.37 SERVICE_FAILURE_ACTIONS_WOW64
// (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-scmr/9489030e-dd82-49db-8505-b3d72c6a9271);
// values exported from 64-bit Windows have this form (offset 0x14 at byte
// 16, not pointer-sized fields), and ReactOS's advapi32 apitest
// (modules/rostests/apitests/advapi32/QueryServiceConfig2.c), which reads
// the value into the native structure, skips its cActions check on x64
// because it "Fails on Win 2003 x64".
func failureActionsValue(reset time.Duration, actions []mgr.RecoveryAction) []byte {
	const headerSize = 20
	b := make([]byte, 0, headerSize+8*len(actions))
	b = binary.LittleEndian.AppendUint32(b, uint32(reset/time.Second))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(actions)))
	actionsOffset := uint32(headerSize)
	if len(actions) == 0 {
		actionsOffset = 0
	}
	b = binary.LittleEndian.AppendUint32(b, actionsOffset)
	for _, a := range actions {
		b = binary.LittleEndian.AppendUint32(b, uint32(a.Type))
		b = binary.LittleEndian.AppendUint32(b, uint32(a.Delay/time.Millisecond))
	}
	return b
}
