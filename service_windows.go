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
			fmt.Fprintln(stderr, "relaytcp service: this runs only when the Service Control Manager starts it: start the service with \"net start RelayTCPsvc\" (or relaytcp start); for the command-line relay run \"relaytcp LISTENPORT REMOTEHOST REMOTEPORT\"")
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
	// Checked before the SCM hears of any state: a service that cannot run
	// fails to start (net start, sc start, relaytcp start say so) rather
	// than starting and stopping at once.
	cfg, code := ws.startConfig()
	if code != 0 {
		return true, code
	}
	status <- svc.Status{State: svc.StartPending, WaitHint: 30000}
	s, err := startService(cfg, ws.log, controlPipeName)
	if err != nil {
		return true, serviceExitNoneStarted
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

// The service's exit codes when it stops at once: the SCM keeps them as
// its service-specific exit code (sc query: SERVICE_EXIT_CODE), and
// relaytcp start tells them in words (serviceExitText).
const (
	serviceExitNoRoutes    = 1            // no routes configured
	serviceExitNoneStarted = exitBind     // 3: no route could start (ports taken, names that do not resolve)
	serviceExitConfig      = exitConfig   // 5: the configuration does not load
	serviceExitNoConfig    = exitNoConfig // 7: there is no Parameters key
)

// startConfig loads the configuration for a start. When the service cannot
// run with it, it says why (event 100, the manual's texts) and returns the
// exit code.
func (ws *windowsService) startConfig() (*Config, uint32) {
	cfg, err := loadRegistryConfig()
	if err != nil {
		ws.log.Error(eventService, fmt.Sprintf(msgStartError, err))
		return nil, uint32(configExitCode(err)) // exitNoConfig or exitConfig
	}
	if len(cfg.Routes) == 0 {
		ws.log.Error(eventService, msgNoRoutes)
		return nil, serviceExitNoRoutes
	}
	return cfg, 0
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
	var profiles []string // install's firewall rule
	if name == "install" {
		var err error
		if profiles, args, err = firewallOption(args); err != nil {
			cmd, _ := findCommand(name)
			fmt.Fprintf(stderr, "relaytcp %s: %v\n%s\n", name, err, commandUsage(cmd))
			return exitUsage
		}
	}
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
		if err = installService(stdout); err == nil {
			warnFirewall(name, installFirewallRule(profiles, stdout), stderr)
		}
	case "uninstall":
		if err = uninstallService(stdout); err == nil {
			warnFirewall(name, uninstallFirewallRule(stdout), stderr)
		}
	case "backup-config":
		// Run by the MSI before it removes the service: stopping it here,
		// and waiting for its process to end, means the service is deleted
		// at once rather than "marked for deletion", which would make the
		// new product's InstallServices fail.
		if err = backupRegistryConfig(); err == nil {
			err = stopServiceProcess()
		}
	case "restore-config":
		err = restoreRegistryConfig(installedByMSI)
	case "close-running":
		err = closeRunning(stdout, closeWait)
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
	// The Parameters key: a ConfigBackup wins over a key no install made,
	// as for the MSI; then every value is written out.
	err = restoreRegistryConfig(installedByCommand)
	var cfg *Config
	if err == nil {
		cfg, err = loadRegistryConfig()
	}
	if err == nil {
		err = saveRegistryConfig(cfg)
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
	// Deleting the service deletes its Parameters key: a copy stays for
	// a later install, as the MSI keeps one.
	if err := backupRegistryConfig(); err != nil {
		return err
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", serviceName, err)
	}
	if err := eventlog.Remove(serviceName); err != nil {
		return fmt.Errorf("remove event source %s: %w", serviceName, err)
	}
	fmt.Fprintf(stdout, "Service %s removed successfully\nEvent log for '%s' was successfully removed from Application log\nThe log directory was kept, and a copy of the configuration in HKLM\\%s.\n", serviceName, serviceName, backupKey)
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

// configNeedsService: the Parameters key belongs to the service. Written
// while the service is not installed, it would be an orphan that nothing
// reads or removes.
const configNeedsService = true

// errNotInstalledForEdit refuses a change of the configuration of a
// service that is not installed.
var errNotInstalledForEdit = fmt.Errorf("the %s service is not installed (run the MSI or relaytcp install first): nothing was changed", serviceName)

// SaveConfig writes the configuration, if the service is installed: a
// Parameters key without its service is an orphan.
func (windowsManager) SaveConfig(cfg *Config) error {
	if queryServiceStatus() == statusNotInstalled {
		return errNotInstalledForEdit
	}
	return saveRegistryConfig(cfg)
}

func (windowsManager) Status() string { return queryServiceStatus() }
func (windowsManager) Start() error   { return connectService(startServiceAndWait) }

// Stop stops the service and waits until it has stopped; a service that
// does not run is an unchangedError.
func (windowsManager) Stop() error {
	return connectService(func(s *mgr.Service) error {
		err := controlAndWait(s, svc.Stop, svc.Stopped)
		if errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return unchangedError("the service is not running")
		}
		return serviceError(err)
	})
}

// errServiceNotInstalled is the error of an operation on the service when
// there is none.
var errServiceNotInstalled = errors.New("the service is not installed (run the MSI or relaytcp install)")

// connectService opens the service and runs op on it.
func connectService(op func(*mgr.Service) error) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager: %w (run as Administrator)", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return errServiceNotInstalled
	}
	if err != nil {
		return fmt.Errorf("open service %s: %w", serviceName, err)
	}
	defer s.Close()
	return op(s)
}

// serviceError puts the SCM's answers that a user meets in plain words,
// keeping the error (errors.Is still finds it).
func serviceError(err error) error {
	var words string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, windows.ERROR_SERVICE_CANNOT_ACCEPT_CTRL):
		words = "the service is starting or stopping: try again in a moment"
	case errors.Is(err, windows.ERROR_SERVICE_DISABLED):
		words = "the service is disabled: set its start type to Automatic or Manual (Services applet)"
	case errors.Is(err, windows.ERROR_SERVICE_MARKED_FOR_DELETE):
		words = "the service is being removed: close the Services applet and try again"
	default:
		return err
	}
	return fmt.Errorf("%s (%w)", words, err)
}

// startWait is how long relaytcp start waits for the service to run.
const startWait = 30 * time.Second

// startServiceAndWait starts the service and waits, up to startWait, until
// it runs. A service that stops instead says why (startFailure); a running
// one is an unchangedError.
func startServiceAndWait(s *mgr.Service) error {
	startErr := s.Start()
	if errors.Is(startErr, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		return unchangedError("the service is already running")
	}
	// Windows lets a service that stops before it runs fail after the
	// start; wine's SCM fails the start itself (ERROR_SERVICE_REQUEST_TIMEOUT).
	// Either way it is stopped now or soon, with its exit code.
	deadline := time.Now().Add(startWait)
	for {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("query service %s: %w", serviceName, err)
		}
		switch {
		case st.State == svc.Running && startErr == nil:
			return nil
		case st.State == svc.Stopped && (startErr == nil || st.Win32ExitCode != 0):
			return startFailure(st)
		case startErr != nil:
			return serviceError(fmt.Errorf("start service %s: %w", serviceName, startErr))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the service did not start within %v (its state: %s)", startWait, stateWords(st.State))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// startFailure says why the service stopped instead of running: its exit
// code in words, completed by a check of the configuration here.
func startFailure(st svc.Status) error {
	why := "it stopped at once"
	switch {
	case st.Win32ExitCode == uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR):
		why = serviceExitText(st.ServiceSpecificExitCode)
	case st.Win32ExitCode != 0:
		why = windows.Errno(st.Win32ExitCode).Error()
	}
	cfg, err := loadRegistryConfig()
	switch {
	case err != nil:
		why += ": " + err.Error()
	case len(cfg.Routes) == 0 && st.ServiceSpecificExitCode == serviceExitNoRoutes:
		why += ": add one with relaytcp route add LOCALPORT REMOTEHOST REMOTEPORT"
	}
	return fmt.Errorf("the service could not start: %s (the Application event log, source %s, has its events)", why, serviceName)
}

// serviceExitText is the service's exit code in words.
func serviceExitText(code uint32) string {
	switch code {
	case serviceExitNoRoutes:
		return "no routes configured"
	case serviceExitNoneStarted:
		return "none of its routes could start (a port taken, a name that does not resolve)"
	case serviceExitConfig:
		return "its configuration does not load"
	case serviceExitNoConfig:
		return "it has no configuration"
	}
	return fmt.Sprintf("service-specific exit code %d", code)
}

// stateWords is an SCM state in the manual's words.
func stateWords(state svc.State) string {
	switch state {
	case svc.Stopped:
		return "Stopped"
	case svc.StartPending:
		return "Start pending"
	case svc.StopPending:
		return "Stop pending"
	case svc.Running:
		return "Running"
	case svc.ContinuePending:
		return "Continue pending"
	case svc.PausePending:
		return "Pause pending"
	case svc.Paused:
		return "Paused"
	}
	return fmt.Sprintf("(state %d)", state)
}

// queryServiceStatus is the service's state in the manual's words. It asks
// for the query right only, so that it works without elevation (relaytcp
// status never asks for it).
func queryServiceStatus() string {
	m, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	defer windows.CloseServiceHandle(m)
	name, _ := windows.UTF16PtrFromString(serviceName)
	s, err := windows.OpenService(m, name, windows.SERVICE_QUERY_STATUS)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return statusNotInstalled
	}
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	defer windows.CloseServiceHandle(s)
	var st windows.SERVICE_STATUS
	if err := windows.QueryServiceStatus(s, &st); err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return stateWords(svc.State(st.CurrentState))
}

// ControlPath is the service's named pipe.
func (windowsManager) ControlPath() string { return controlPipeName }
