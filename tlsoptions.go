package main

// The TLS options of a route (issue 23), in every route form: tls= and its
// companions terminate TLS from clients, backendtls= and its companions
// speak TLS to the backends, sni= shares a local port among routes by the
// server name the client asks for. This file holds their plain-data model,
// parsing and text form; tlsroute.go builds what runs from them.

import (
	"fmt"
	"strings"
	"time"
)

// TLSOptions are a route's TLS options as written, plain values that
// compare with ==. The zero value is a route without TLS.
type TLSOptions struct {
	// TLSCert and TLSKey are tls=CERTFILE,KEYFILE: PEM files, the
	// certificate file holding the chain. Set, the route terminates TLS.
	TLSCert, TLSKey string
	// TLSMin is tlsmin=: "1.3" raises the floor; "" is TLS 1.2.
	TLSMin string
	// TLSClientCA is tlsclientca=: clients must present a certificate
	// signed by a CA in this PEM file.
	TLSClientCA string
	// Handshake is handshake=: how long a client has to complete its
	// ClientHello (sni=) and handshake (tls=); 0 is defaultHandshake.
	Handshake time.Duration

	// BackendTLS is backendtls=: "1" speaks TLS to the backends and
	// verifies them, "noverify" does not verify; "" is plaintext.
	BackendTLS string
	// BackendCA is backendca=: the CAs (PEM) that sign the backends'
	// certificates; "" is the system's roots.
	BackendCA string
	// BackendSNI is backendsni=: the name sent to and verified for the
	// backends; "" is each backend's host.
	BackendSNI string
	// BackendCert and BackendKey are backendcert=CERT,KEY: the client
	// certificate presented to the backends.
	BackendCert, BackendKey string

	// SNI is sni=: the server names, lower case, comma-separated, that
	// select this route among those sharing its local port ("*.example.com"
	// matches one label more). "" is the port's default route.
	SNI string
}

// defaultHandshake is the handshake timeout when handshake= is not given.
const defaultHandshake = 10 * time.Second

// tlsOptionNames lists the TLS options in the order tlsOptions writes them.
const tlsOptionNames = "tls, tlsmin, tlsclientca, handshake, backendtls, backendca, backendsni, backendcert, sni"

// handshakeTimeout is the handshake timeout in effect.
func (o TLSOptions) handshakeTimeout() time.Duration {
	if o.Handshake > 0 {
		return o.Handshake
	}
	return defaultHandshake
}

// terminates reports whether the route terminates TLS from its clients.
func (o TLSOptions) terminates() bool { return o.TLSCert != "" }

// usesTLS reports whether any TLS option is on: such a route is relayed by
// the goroutine relay, which can wrap a side in TLS or read the ClientHello.
func (o TLSOptions) usesTLS() bool {
	return o.TLSCert != "" || o.BackendTLS != "" || o.SNI != ""
}

// setTLSOption sets one of the TLS options; handled is false for an
// option that is not one of them.
func (o *TLSOptions) setTLSOption(key, value string) (handled bool, err error) {
	switch key {
	case "tls", "backendcert":
		names, err := parseFileNames(value) // quotedpaths.go
		if err != nil || len(names) != 2 {
			return true, fmt.Errorf("invalid %s=%s: want CERTFILE,KEYFILE (two PEM files; a name with spaces or commas in double quotes)", key, value)
		}
		cert, keyFile := names[0], names[1]
		if key == "tls" {
			o.TLSCert, o.TLSKey = cert, keyFile
		} else {
			o.BackendCert, o.BackendKey = cert, keyFile
		}
	case "tlsmin":
		switch value {
		case "1.2":
			o.TLSMin = ""
		case "1.3":
			o.TLSMin = value
		default:
			return true, fmt.Errorf("invalid tlsmin=%s: want 1.2 or 1.3", value)
		}
	case "tlsclientca", "backendca":
		names, err := parseFileNames(value) // quotedpaths.go
		if err != nil || len(names) != 1 {
			return true, fmt.Errorf("invalid %s=%s: want a PEM file of CA certificates (a name with spaces or commas in double quotes)", key, value)
		}
		value = names[0]
		if key == "tlsclientca" {
			o.TLSClientCA = value
		} else {
			o.BackendCA = value
		}
	case "handshake":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return true, fmt.Errorf("invalid handshake=%s: want a duration such as 5s or 30s", value)
		}
		o.Handshake = d
	case "backendtls":
		switch value {
		case "1", "noverify":
			o.BackendTLS = value
		case "0":
			o.BackendTLS = ""
		default:
			return true, fmt.Errorf("invalid backendtls=%s: want 1 (verify the backend's certificate) or noverify", value)
		}
	case "backendsni":
		name := strings.ToLower(value)
		if err := checkHostName(name); err != nil {
			return true, fmt.Errorf("invalid backendsni=%s: %v", value, err)
		}
		o.BackendSNI = name
	case "sni":
		names, err := parseSNINames(value)
		if err != nil {
			return true, fmt.Errorf("invalid sni=%s: %v", value, err)
		}
		o.SNI = strings.Join(names, ",")
	default:
		return false, nil
	}
	return true, nil
}

// parseSNINames parses sni='s list: host names, each possibly starting with
// "*." (a wildcard for one label), lower case, without repeats.
func parseSNINames(s string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("empty list")
	}
	var names []string
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		name := strings.ToLower(strings.TrimSuffix(item, "."))
		base := strings.TrimPrefix(name, "*.")
		if strings.Contains(base, "*") {
			return nil, fmt.Errorf("%q: a wildcard is only allowed as the first label, as in *.example.com", item)
		}
		if err := checkHostName(base); err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names, nil
}

// checkTLS refuses TLS options that make no sense together or on the
// route's protocol, naming the option.
func (r RouteSpec) checkTLS() error {
	o := r.TLSOptions
	if r.Proto == "udp" {
		for _, opt := range []struct {
			set  bool
			name string
		}{{o.TLSCert != "", "tls="}, {o.BackendTLS != "", "backendtls="}, {o.SNI != "", "sni="},
			{o.TLSMin != "", "tlsmin="}, {o.TLSClientCA != "", "tlsclientca="}, {o.Handshake != 0, "handshake="},
			{o.BackendCA != "", "backendca="}, {o.BackendSNI != "", "backendsni="}, {o.BackendCert != "", "backendcert="}} {
			if opt.set {
				return fmt.Errorf("option %s does not apply to proto=udp routes (TLS runs over TCP)", opt.name)
			}
		}
		return nil
	}
	if o.TLSCert == "" {
		if o.TLSMin != "" {
			return fmt.Errorf("option tlsmin= needs tls=CERTFILE,KEYFILE")
		}
		if o.TLSClientCA != "" {
			return fmt.Errorf("option tlsclientca= needs tls=CERTFILE,KEYFILE")
		}
		if o.Handshake != 0 && o.SNI == "" {
			return fmt.Errorf("option handshake= needs tls= or sni=")
		}
	}
	if o.BackendTLS == "" {
		for _, opt := range []struct {
			set  bool
			name string
		}{{o.BackendCA != "", "backendca="}, {o.BackendSNI != "", "backendsni="}, {o.BackendCert != "", "backendcert="}} {
			if opt.set {
				return fmt.Errorf("option %s needs backendtls=1", opt.name)
			}
		}
	}
	if o.BackendTLS == "noverify" && (o.BackendCA != "" || o.BackendSNI != "") {
		return fmt.Errorf("backendtls=noverify does not verify: backendca= and backendsni= need backendtls=1")
	}
	if o.SNI != "" && r.AcceptProxy {
		return fmt.Errorf("option sni= does not go with acceptproxy=1 (the ClientHello is read first)")
	}
	if o.SNI != "" && r.LocalPortEnd != 0 {
		return fmt.Errorf("option sni= applies to a single local port, not the range %s", r.Local())
	}
	return nil
}

// tlsOptions returns the TLS options in text form, in a fixed order.
func (o TLSOptions) tlsOptions() []string {
	var opts []string
	add := func(name, value string) {
		if value != "" {
			opts = append(opts, name+"="+value)
		}
	}
	if o.TLSCert != "" {
		add("tls", quoteFileName(o.TLSCert)+","+quoteFileName(o.TLSKey))
	}
	add("tlsmin", o.TLSMin)
	add("tlsclientca", quoteFileName(o.TLSClientCA))
	if o.Handshake > 0 {
		add("handshake", shortDuration(o.Handshake))
	}
	add("backendtls", o.BackendTLS)
	add("backendca", quoteFileName(o.BackendCA))
	add("backendsni", o.BackendSNI)
	if o.BackendCert != "" {
		add("backendcert", quoteFileName(o.BackendCert)+","+quoteFileName(o.BackendKey))
	}
	add("sni", o.SNI)
	return opts
}
