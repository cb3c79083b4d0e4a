package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// The service as the SCM and Event Viewer show it.
const (
	serviceDisplayName = "Relay TCP Service"
	serviceDescription = "Relays TCP connections from local ports to remote hosts (relaytcp)."
)

// runService runs the service under the SCM. The SCM starts it as
// "relaytcp.exe service" (the explicit argument: wine cannot tell a service
// process otherwise).
func runService(configPath string, stderr io.Writer) int {
	elog, err := eventlog.Open(serviceName)
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp service: open the event log: %v\n", err)
		return exitRuntime
	}
	defer elog.Close()
	if err := svc.Run(serviceName, &windowsService{log: elog}); err != nil {
		if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
			fmt.Fprintln(stderr, "relaytcp service: this runs only when the Service Control Manager starts it: use \"net start RelayTCPsvc\", or run relaytcp without arguments for the command-line relay")
		} else {
			fmt.Fprintf(stderr, "relaytcp service: %v\n", err)
		}
		return exitRuntime
	}
	return exitOK
}

// startedAsService reports whether the SCM started this process. The
// "service" argument is the main signal (wine's services are not detected
// by svc.IsWindowsService); this one serves a service registered without it.
func startedAsService() bool {
	is, err := svc.IsWindowsService()
	return err == nil && is
}

// windowsService is the SCM's handler.
type windowsService struct {
	log serviceLog
}

// stopWaitHint is what the service tells the SCM a stop may take: the
// connections' drain time and a margin.
const stopWaitHint = DefaultDrainTimeout + 5*time.Second

// Execute starts the routes, then waits for Stop or Shutdown. It accepts no
// Pause: the manual says the service cannot be paused; if a pause control
// still arrives, it logs the manual's warning. A change of the Parameters
// key is applied by configReloader's rules: a key deleted or holding a bad
// value keeps the running routes (one Warning event), one without routes
// applies once it has settled. A missing key at start stops the service
// with exitNoConfig as its service-specific exit code (exitConfig for a bad
// value).
func (ws *windowsService) Execute(args []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 30000}
	cfg, err := loadRegistryConfig()
	if err != nil {
		ws.log.Error(eventService, fmt.Sprintf(msgStartError, err))
		return true, uint32(configExitCode(err))
	}
	s, err := startService(cfg, ws.log, controlPipeName)
	if err != nil {
		return true, 1
	}
	reloader := &configReloader{Apply: s.apply, Log: ws.log, Load: func() (*Config, string, error) {
		return readRegistryConfig(registry.LOCAL_MACHINE, `HKLM\`, parametersKey)
	}}
	const accepts = svc.AcceptStop | svc.AcceptShutdown
	status <- svc.Status{State: svc.Running, Accepts: accepts}
	changed, stopWatch, err := watchParameters()
	if err != nil {
		ws.log.Warning(eventService, fmt.Sprintf("The Relay TCP Service cannot watch its configuration (%v): restart it to apply changes", err))
	}
	defer stopWatch()
	var recheck <-chan time.Time // while a configuration without routes settles
	for {
		var req svc.ChangeRequest
		select {
		case <-changed:
			recheck = recheckAfter(reloader.Reload(time.Now(), false))
			continue
		case <-recheck:
			recheck = recheckAfter(reloader.Reload(time.Now(), false))
			continue
		case <-s.stopRequests(): // a control client's "stop": as the SCM's Stop
			req = svc.ChangeRequest{Cmd: svc.Stop}
		case req = <-requests:
		}
		switch req.Cmd {
		case svc.Interrogate:
			status <- req.CurrentStatus
		case svc.Stop, svc.Shutdown:
			status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWaitHint / time.Millisecond)}
			ctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
			s.shutdown(ctx)
			cancel()
			status <- svc.Status{State: svc.Stopped}
			return false, 0
		case svc.Pause:
			ws.log.Warning(eventService, msgNoPause)
			status <- svc.Status{State: svc.Running, Accepts: accepts}
		default:
			ws.log.Warning(eventService, fmt.Sprintf("The Relay TCP Service ignored control %d", req.Cmd))
		}
	}
}

// watchParameters reports changes of the Parameters key's values (regedit,
// relaytcp route, the admin menu) on the returned channel, a burst of
// changes once, until stop is called. The key deleted is a change too; it
// is then looked for every configCheckInterval, and its return is another.
func watchParameters() (changed <-chan struct{}, stop func(), err error) {
	const access = registry.NOTIFY | registry.QUERY_VALUE
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, parametersKey, access)
	if err != nil {
		return nil, func() {}, fmt.Errorf(`open HKLM\%s: %w`, parametersKey, err)
	}
	event, err := windows.CreateEvent(nil, 0, 0, nil)
	if err != nil {
		k.Close()
		return nil, func() {}, fmt.Errorf("create event: %w", err)
	}
	quit, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		k.Close()
		windows.CloseHandle(event)
		return nil, func() {}, fmt.Errorf("create event: %w", err)
	}
	ch := make(chan struct{}, 1)
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func(key registry.Key) {
		defer close(done)
		for {
			quitting := watchKey(key, event, quit, notify)
			key.Close()
			if quitting {
				return
			}
			notify() // the key is gone: the reload says so
			for {
				w, err := windows.WaitForSingleObject(quit, uint32(configCheckInterval/time.Millisecond))
				if err != nil || w == windows.WAIT_OBJECT_0 {
					return
				}
				if key, err = registry.OpenKey(registry.LOCAL_MACHINE, parametersKey, access); err == nil {
					break
				}
			}
			notify() // the key is back
		}
	}(k)
	stop = func() {
		windows.SetEvent(quit)
		<-done
		windows.CloseHandle(event)
		windows.CloseHandle(quit)
	}
	return ch, stop, nil
}

// watchKey calls notify after each change of k's values, until k is
// deleted (false) or quit is set (true).
func watchKey(k registry.Key, event, quit windows.Handle, notify func()) (quitting bool) {
	for {
		// Asynchronous: the event is signalled at the next change.
		if err := windows.RegNotifyChangeKeyValue(windows.Handle(k), false, windows.REG_NOTIFY_CHANGE_LAST_SET, event, true); err != nil {
			return false // deleted
		}
		for changed := false; !changed; {
			w, err := windows.WaitForMultipleObjects([]windows.Handle{event, quit}, false, uint32(configCheckInterval/time.Millisecond))
			switch {
			case err != nil || w == windows.WAIT_OBJECT_0+1:
				return true
			case w == windows.WAIT_OBJECT_0:
				changed = true
			default:
				// Timed out: a deleted key need not signal, so look.
				if _, err := k.Stat(); err != nil {
					return false
				}
			}
		}
		// Let a burst of writes (a route add writes several values)
		// settle into one reload.
		time.Sleep(300 * time.Millisecond)
		notify()
	}
}

// runInstall installs or removes the service, its event source and its
// Parameters key, for installs without the MSI (uninstall keeps the logs),
// and backs the configuration up and restores it around an MSI upgrade.
func runInstall(name string, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "relaytcp %s: unexpected argument %q\n", name, args[0])
		return exitUsage
	}
	if !windows.GetCurrentProcessToken().IsElevated() {
		fmt.Fprintf(stderr, "relaytcp %s: run it from an elevated prompt (Run as Administrator)\n", name)
		return exitRuntime
	}
	var err error
	switch name {
	case "install":
		err = installService(stdout)
	case "uninstall":
		err = uninstallService(stdout)
	case "backup-config":
		// Run by the MSI before it removes the service: stopping it here,
		// and waiting for its process to end, means the service is deleted
		// at once rather than "marked for deletion", which would make the
		// new product's InstallServices fail.
		if err = backupRegistryConfig(); err == nil {
			err = stopServiceProcess()
		}
	case "restore-config":
		err = restoreRegistryConfig()
	}
	if err != nil {
		fmt.Fprintf(stderr, "relaytcp %s: %v\n", name, err)
		return exitRuntime
	}
	return exitOK
}

func installService(stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find relaytcp.exe: %w", err)
	}
	exe, _ = filepath.Abs(exe)
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(serviceName); err == nil {
		s.Close()
		return fmt.Errorf("service %s already exists", serviceName)
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: serviceDisplayName,
		Description: serviceDescription,
		StartType:   mgr.StartAutomatic,
	}, "service")
	if err != nil {
		return fmt.Errorf("create service %s: %w", serviceName, err)
	}
	defer s.Close()
	if err := setRecoveryActions(s); err != nil {
		s.Delete()
		return err
	}
	const types = eventlog.Error | eventlog.Warning | eventlog.Info
	if err := eventlog.Install(serviceName, exe, false, types); err != nil {
		s.Delete()
		return fmt.Errorf("create event source %s: %w", serviceName, err)
	}
	cfg, err := loadRegistryConfig()
	if err == nil || isConfigMissing(err) {
		err = saveRegistryConfig(cfg) // creates the Parameters key
	}
	if err != nil {
		s.Delete()
		eventlog.Remove(serviceName)
		return err
	}
	fmt.Fprintf(stdout, "Service %s created successfully\nEvents for %s are now ready into the Application log\n", serviceDisplayName, serviceName)
	return nil
}

func uninstallService(stdout io.Writer) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("service %s is not installed", serviceName)
	}
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := controlAndWait(s, svc.Stop, svc.Stopped); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", serviceName, err)
	}
	if err := eventlog.Remove(serviceName); err != nil {
		return fmt.Errorf("remove event source %s: %w", serviceName, err)
	}
	fmt.Fprintf(stdout, "Service %s removed successfully\nEvent log for '%s' was successfully removed from Application log\nThe log directory was kept.\n", serviceName, serviceName)
	return nil
}

// stopServiceProcess stops the service if it runs and waits, up to the
// stop wait hint and a margin, until its process has exited. A service
// that is not installed or not running is not an error.
func stopServiceProcess() error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return nil
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil || st.State == svc.Stopped {
		return nil
	}
	var process windows.Handle
	if st.ProcessId != 0 {
		process, _ = windows.OpenProcess(windows.SYNCHRONIZE, false, st.ProcessId)
	}
	if process != 0 {
		defer windows.CloseHandle(process)
	}
	if err := controlAndWait(s, svc.Stop, svc.Stopped); err != nil {
		return err
	}
	if process != 0 {
		windows.WaitForSingleObject(process, uint32((stopWaitHint + 10*time.Second).Milliseconds()))
	}
	return nil
}

// controlAndWait sends a control and waits, up to the stop wait hint and a
// margin, for the service to reach state.
func controlAndWait(s *mgr.Service, c svc.Cmd, state svc.State) error {
	st, err := s.Control(c)
	if err != nil {
		return fmt.Errorf("control service %s: %w", serviceName, err)
	}
	deadline := time.Now().Add(stopWaitHint + 10*time.Second)
	for st.State != state {
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not reach state %d (now %d)", serviceName, state, st.State)
		}
		time.Sleep(300 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return fmt.Errorf("query service %s: %w", serviceName, err)
		}
	}
	return nil
}

// windowsManager keeps the configuration in the registry and reaches the
// service through the SCM.
type windowsManager struct{}

func newServiceManager(configPath string) (serviceManager, error) {
	return windowsManager{}, nil
}

func (windowsManager) ConfigLocation() string       { return `HKLM\` + parametersKey }
func (windowsManager) LoadConfig() (*Config, error) { return loadRegistryConfig() }
func (windowsManager) SaveConfig(cfg *Config) error { return saveRegistryConfig(cfg) }
func (windowsManager) Status() string               { return queryServiceStatus() }
func (windowsManager) Start() error                 { return connectService(startServiceAndWait) }

func (windowsManager) Stop() error {
	return connectService(func(s *mgr.Service) error { return controlAndWait(s, svc.Stop, svc.Stopped) })
}

// connectService opens the service and runs op on it.
func connectService(op func(*mgr.Service) error) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager: %w (run as Administrator)", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("service %s is not installed (relaytcp install, or the MSI)", serviceName)
	}
	defer s.Close()
	return op(s)
}

// startServiceAndWait starts the service and waits until it runs.
func startServiceAndWait(s *mgr.Service) error {
	if err := s.Start(); err != nil {
		return fmt.Errorf("start service %s: %w", serviceName, err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("query service %s: %w", serviceName, err)
		}
		switch st.State {
		case svc.Running:
			return nil
		case svc.Stopped:
			return fmt.Errorf("service %s stopped at once: see the Application event log", serviceName)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not start within 40s", serviceName)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// queryServiceStatus is the service's state in the manual's words.
func queryServiceStatus() string {
	m, err := mgr.Connect()
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return statusNotInstalled
	}
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return map[svc.State]string{
		svc.Stopped:         "Stopped",
		svc.StartPending:    "Start pending",
		svc.StopPending:     "Stop pending",
		svc.Running:         "Running",
		svc.ContinuePending: "Continue pending",
		svc.PausePending:    "Pause pending",
		svc.Paused:          "Paused",
	}[st.State]
}

// ControlPath is the service's named pipe.
func (windowsManager) ControlPath() string { return controlPipeName }
