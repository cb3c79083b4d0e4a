package main

import (
	"fmt"
	"io"
)

// runService runs the service under the Windows service manager.
// (In progress: issue 3.)
func runService(configPath string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "relaytcp service: the Windows service is not built yet")
	return exitRuntime
}

// runInstall installs or removes the Windows service. (In progress.)
func runInstall(name string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "relaytcp %s: not built yet\n", name)
	return exitRuntime
}

// newServiceManager reaches the SCM and the registry. (In progress.)
func newServiceManager(configPath string) (serviceManager, error) {
	return nil, fmt.Errorf("the Windows service manager is not built yet")
}
