package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// The admin menu: RelayTCP 1.0's RETCPADM screens as a plain numbered
// console menu. Choices and answers are lines of input, so it works the same
// on a console and from a pipe (a script, a test).

// errEndOfInput ends the menu when its input runs out; errClosing when
// the uninstall of relaytcp.exe asks it to close (watchCloseRequest).
var (
	errEndOfInput = errors.New("end of input")
	errClosing    = errors.New("closing")
)

// adminMenu is one run of the menu.
type adminMenu struct {
	m   serviceManager
	in  <-chan string // the input's lines; closed at its end
	out io.Writer
	// closing is closed when the menu must close.
	closing <-chan struct{}
	// installed says whether the service was installed when the menu
	// opened: then a missing service was uninstalled meanwhile.
	installed bool
}

// runAdmin runs the menu until 4-Exit, the end of input, or an uninstall
// of relaytcp.exe.
func runAdmin(m serviceManager, stdin io.Reader, stdout io.Writer) int {
	closing := make(chan struct{})
	var once sync.Once
	stop := watchCloseRequest(func() { once.Do(func() { close(closing) }) })
	defer stop()
	done := make(chan struct{})
	defer close(done)
	a := &adminMenu{m: m, in: readLines(stdin, done), out: stdout, closing: closing,
		installed: configNeedsService && m.Status() != statusNotInstalled}
	err := a.mainScreen()
	switch {
	case err == errClosing:
		fmt.Fprintln(stdout, "\nrelaytcp is being uninstalled: the administration menu closes.")
	case err != nil && err != errEndOfInput:
		fmt.Fprintf(stdout, "Error: %v\n", err)
		return exitConfig
	}
	return exitOK
}

// load reads the configuration for a screen. One that does not exist yet
// is empty: 1-Add Route creates it.
func (a *adminMenu) load() (*Config, error) {
	cfg, err := a.m.LoadConfig()
	if isConfigMissing(err) {
		return cfg, nil
	}
	return cfg, err
}

// readLines sends the lines of r on the channel it returns, closed at the
// end of r, until done is closed: ask then waits for a line or for the
// request to close, whichever comes first.
func readLines(r io.Reader, done <-chan struct{}) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewScanner(r)
		for in.Scan() {
			select {
			case lines <- in.Text():
			case <-done:
				return
			}
		}
	}()
	return lines
}

// ask prints a prompt and reads one answer line.
func (a *adminMenu) ask(prompt string) (string, error) {
	fmt.Fprint(a.out, prompt)
	select {
	case line, ok := <-a.in:
		if !ok {
			fmt.Fprintln(a.out)
			return "", errEndOfInput
		}
		return strings.TrimSpace(line), nil
	case <-a.closing:
		return "", errClosing
	}
}

// serviceGone reports whether the menu must not change the service or its
// configuration: on Windows the service is not installed, or no longer
// (configNeedsService).
func (a *adminMenu) serviceGone() bool {
	return configNeedsService && a.m.Status() == statusNotInstalled
}

// sayServiceGone is the main screen's line when serviceGone.
func (a *adminMenu) sayServiceGone() {
	if a.installed {
		fmt.Fprintf(a.out, "The %s service was uninstalled: this menu cannot change its configuration any more (4-Exit)\n", serviceName)
		return
	}
	fmt.Fprintf(a.out, "The %s service is not installed: this menu cannot change its configuration (install it with the MSI or relaytcp install, then open the menu again)\n", serviceName)
}

// header starts every screen.
func (a *adminMenu) header() {
	v, _ := buildVersion()
	fmt.Fprintf(a.out, "\nRelayTCP v%s - Administration\n\n", v)
}

func (a *adminMenu) mainScreen() error {
	for {
		cfg, err := a.load()
		if err != nil {
			return err
		}
		a.header()
		live, liveErr := liveStatus(a.m)
		printStatus(a.out, a.m, cfg, live, liveErr)
		fmt.Fprintln(a.out)
		if a.serviceGone() {
			a.sayServiceGone()
		}
		fmt.Fprintln(a.out, "1-Start Service  2-Stop Service  3-Change Config  4-Exit  5-Refresh")
		choice, err := a.ask("Option: ")
		if err != nil {
			return err
		}
		if (choice == "1" || choice == "2" || choice == "3") && a.serviceGone() {
			continue // the screen, drawn again, says why
		}
		switch choice {
		case "1":
			a.report("Starting the service", a.m.Start())
		case "2":
			a.report("Stopping the service", a.m.Stop())
		case "3":
			if err := a.changeConfigScreen(); err != nil {
				return err
			}
		case "4":
			return nil
		case "5": // the screen is drawn again with fresh numbers
		default:
			fmt.Fprintf(a.out, "Unknown option %q: type 1, 2, 3, 4 or 5 and Enter\n", choice)
		}
	}
}

// report says how a start or stop went.
func (a *adminMenu) report(what string, err error) {
	var unchanged unchangedError
	if errors.As(err, &unchanged) {
		fmt.Fprintf(a.out, "%s: %v\n", what, err)
		return
	}
	if err != nil {
		fmt.Fprintf(a.out, "%s failed: %v\n", what, err)
		return
	}
	fmt.Fprintf(a.out, "%s: done\n", what)
}

func (a *adminMenu) changeConfigScreen() error {
	for {
		cfg, err := a.load()
		if err != nil {
			return err
		}
		a.header()
		printConfig(a.out, "Change Configuration", a.m, cfg, nil)
		// RelayTCP 1.0's three choices keep their numbers; switching a
		// route off and on again come after them.
		fmt.Fprintln(a.out, "\n1-Add Route      2-Delete Route      3-Exit\n4-Disable Route  5-Enable Route")
		choice, err := a.ask("Option: ")
		if err != nil {
			return err
		}
		if changes := choice == "1" || choice == "2" || choice == "4" || choice == "5"; changes && a.serviceGone() {
			return nil // the main screen says why
		}
		switch choice {
		case "1":
			err = a.addRoute(cfg)
		case "2":
			err = a.deleteRoute(cfg)
		case "3":
			return nil
		case "4", "5":
			err = a.switchRoute(cfg, choice == "4")
		default:
			fmt.Fprintf(a.out, "Unknown option %q: type 1, 2, 3, 4 or 5 and Enter\n", choice)
		}
		if err != nil {
			return err
		}
	}
}

// askValid asks until parse accepts the answer, saying what was wrong each
// time. An empty answer gives up (ok false).
func (a *adminMenu) askValid(prompt string, parse func(string) error) (answer string, ok bool, err error) {
	for {
		answer, err = a.ask(prompt)
		if err != nil || answer == "" {
			return "", false, err
		}
		if perr := parse(answer); perr != nil {
			fmt.Fprintf(a.out, "  %v (press Enter alone to cancel)\n", perr)
			continue
		}
		return answer, true, nil
	}
}

func (a *adminMenu) addRoute(cfg *Config) error {
	var r RouteSpec
	steps := []struct {
		prompt string
		parse  func(string) error
	}{
		{"Local port (or ADDR:PORT, or a range FIRST-LAST): ", func(s string) (err error) {
			if r.BindAddr, r.LocalPort, r.LocalPortEnd, err = parseLocal(s); err != nil {
				return err
			}
			return cfg.conflict(r, len(cfg.Routes))
		}},
		{"Remote IP or name: ", func(s string) (err error) { r.RemoteHost, err = parseHost(s); return err }},
		{"Destination port (or a range as long as the local one): ", func(s string) (err error) {
			if r.RemotePort, r.RemotePortEnd, err = parsePortRange("destination port", s); err != nil {
				return err
			}
			return r.checkRanges()
		}},
	}
	for _, step := range steps {
		_, ok, err := a.askValid(step.prompt, step.parse)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(a.out, "No route added.")
			return nil
		}
	}
	// Options are optional: an empty answer means none.
	for {
		answer, err := a.ask("Options (" + routeOptionNames + " as OPTION=VALUE; Enter for none): ")
		if err != nil {
			return err
		}
		opts, perr := ParseRouteSpec(r.String() + " " + answer)
		if perr == nil {
			r = opts
			break
		}
		fmt.Fprintf(a.out, "  %v\n", perr)
	}
	// Saved under the lock, into the configuration as it is by now: another
	// command may have changed it while the questions were answered.
	var n int
	err := editConfig(a.m, func(now *Config) error {
		if err := now.AddRoute(r); err != nil {
			return refuse(err)
		}
		n = len(now.Routes) - 1
		return nil
	})
	if err != nil {
		fmt.Fprintf(a.out, "No route added: %v\n", err)
		return nil
	}
	fmt.Fprintf(a.out, "Added %s\n", routeLine(n, r))
	return nil
}

// switchRoute asks for a route by its number on the screen and switches it
// off (disabled) or on. As deleteRoute does, it finds the route by its
// local side under the lock, and changes nothing if another command
// changed it meanwhile.
func (a *adminMenu) switchRoute(cfg *Config, disabled bool) error {
	verb := "enable"
	if disabled {
		verb = "disable"
	}
	if len(cfg.Routes) == 0 {
		fmt.Fprintf(a.out, "There are no routes to %s.\n", verb)
		return nil
	}
	var n int
	_, ok, err := a.askValid("Route number to "+verb+": ", func(s string) (err error) {
		n, err = parseRouteNumber(s, len(cfg.Routes))
		return err
	})
	if err != nil || !ok {
		return err
	}
	shown := cfg.Routes[n]
	n, r, err := switchRoute(a.m, func(now *Config) (int, error) {
		i := now.routeOn(shown.BindAddr, shown.LocalPort, shown.LocalPortEnd, shown.Proto)
		if i < 0 || now.Routes[i] != shown {
			return 0, refuse(fmt.Errorf("route %d was changed or deleted meanwhile", n))
		}
		return i, nil
	}, disabled)
	var same unchangedError
	switch {
	case errors.As(err, &same):
		fmt.Fprintf(a.out, "Nothing changed: %v\n", same)
	case err != nil:
		fmt.Fprintf(a.out, "Nothing changed: %v\n", err)
	case disabled:
		fmt.Fprintf(a.out, "Disabled %s\n", routeLine(n, r))
	default:
		fmt.Fprintf(a.out, "Enabled %s\n", routeLine(n, r))
	}
	return nil
}

func (a *adminMenu) deleteRoute(cfg *Config) error {
	if len(cfg.Routes) == 0 {
		fmt.Fprintln(a.out, "There are no routes to delete.")
		return nil
	}
	var n int
	_, ok, err := a.askValid("Route number to delete: ", func(s string) (err error) {
		n, err = parseRouteNumber(s, len(cfg.Routes))
		return err
	})
	if err != nil || !ok {
		return err
	}
	// The number is the one on the screen; the route is deleted by its
	// local side, so a change made meanwhile by another command cannot make
	// it delete another route.
	shown := cfg.Routes[n]
	err = editConfig(a.m, func(now *Config) error {
		i := now.routeOn(shown.BindAddr, shown.LocalPort, shown.LocalPortEnd, shown.Proto)
		if i < 0 || now.Routes[i] != shown {
			return refuse(fmt.Errorf("route %d was changed or deleted meanwhile", n))
		}
		n = i
		return now.DeleteRoute(i)
	})
	if err != nil {
		fmt.Fprintf(a.out, "Nothing deleted: %v\n", err)
		return nil
	}
	fmt.Fprintf(a.out, "Deleted %s\n", routeLine(n, shown))
	return nil
}
