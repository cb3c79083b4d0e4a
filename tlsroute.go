package main

// What a running route needs for TLS, built from its TLSOptions when it
// starts: the server side's configuration (tls=), the client side's
// (backendtls=), the certificate stores, and the handshake counters.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// routeTLS is the TLS of a running route; nil for a route without TLS.
type routeTLS struct {
	opts TLSOptions
	// server terminates clients' TLS; nil when the route does not (tls=).
	server *tls.Config
	// Backends (backendtls=): the roots that sign their certificates (nil:
	// the system's), the client certificate presented (nil: none), and a
	// session cache, so that new connections resume.
	backendRoots *x509.CertPool
	backendCert  *certStore
	sessions     tls.ClientSessionCache
}

// tlsCounters are a route's handshakes (with clients or backends), done
// and failed; they live in its routeStats.
type tlsCounters struct {
	done, failed atomic.Int64
}

// newRouteTLS loads what route options o need: the certificate pair, the
// CA files. report hears of a changed pair that could not be loaded. It
// returns nil for a route without TLS.
func newRouteTLS(o TLSOptions, report func(error)) (*routeTLS, error) {
	if !o.usesTLS() {
		return nil, nil
	}
	t := &routeTLS{opts: o}
	if o.terminates() {
		certs, err := loadCertStore(o.TLSCert, o.TLSKey, report)
		if err != nil {
			return nil, fmt.Errorf("tls=%s,%s: %w", o.TLSCert, o.TLSKey, err)
		}
		t.server = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return certs.get(), nil
			},
		}
		if o.TLSMin == "1.3" {
			t.server.MinVersion = tls.VersionTLS13
		}
		if o.TLSClientCA != "" {
			pool, err := loadCAPool("tlsclientca", o.TLSClientCA)
			if err != nil {
				return nil, err
			}
			t.server.ClientCAs, t.server.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	if o.BackendTLS == "noverify" && report != nil {
		report(errors.New("backendtls=noverify: the backends' certificates are not verified, so anyone on the path can pose as a backend"))
	}
	if o.BackendTLS != "" {
		t.sessions = tls.NewLRUClientSessionCache(64)
		if o.BackendCA != "" {
			pool, err := loadCAPool("backendca", o.BackendCA)
			if err != nil {
				return nil, err
			}
			t.backendRoots = pool
		}
		if o.BackendCert != "" {
			certs, err := loadCertStore(o.BackendCert, o.BackendKey, report)
			if err != nil {
				return nil, fmt.Errorf("backendcert=%s,%s: %w", o.BackendCert, o.BackendKey, err)
			}
			t.backendCert = certs
		}
	}
	return t, nil
}

// backendConfig is the client side's configuration for a backend at addr
// (HOST:PORT): verified for backendsni= or the backend's host, unless
// backendtls=noverify.
func (t *routeTLS) backendConfig(addr string) *tls.Config {
	name := t.opts.BackendSNI
	if name == "" {
		name, _, _ = net.SplitHostPort(addr)
	}
	c := &tls.Config{
		ServerName:         name,
		RootCAs:            t.backendRoots,
		InsecureSkipVerify: t.opts.BackendTLS == "noverify",
		ClientSessionCache: t.sessions,
		MinVersion:         tls.VersionTLS12,
	}
	if t.backendCert != nil {
		certs := t.backendCert
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return certs.get(), nil
		}
	}
	return c
}

// handshakeTimeout bounds a handshake.
func (t *routeTLS) handshakeTimeout() time.Duration { return t.opts.handshakeTimeout() }

// withTLS sets the TLS of a route's configuration and returns it.
func (c *routeConfig) withTLS(t *routeTLS) *routeConfig {
	c.tls = t
	return c
}

// tlsReporter returns what reports route id's certificate that could not
// be reloaded.
func (r *Relay) tlsReporter(id int) func(error) {
	return func(err error) {
		r.emit(Event{Kind: TLSWarning, Time: time.Now(), Route: id, Err: err})
	}
}

// usesGoroutines reports whether route rt must be relayed by the goroutine
// relay: a TLS side is a tls.Conn, and an SNI route reads the ClientHello
// before it picks its backend.
func (rt Route) usesGoroutines() bool { return rt.TLS.usesTLS() }
