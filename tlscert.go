package main

// A route's certificate and key (tls=, backendcert=), reloaded when the
// files change: a renewed certificate is used from the next handshake,
// without a restart and without touching open connections.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// certCheckEvery is how often, at most, a handshake looks at the files'
// modification times and sizes: a stat per second, not per handshake.
const certCheckEvery = time.Second

// certFileStamp is what tells that a file changed: its modification time and
// size (a zero stamp: the file could not be read).
type certFileStamp struct {
	mod  time.Time
	size int64
}

// certStampOf returns the stamp of path, or the zero stamp.
func certStampOf(path string) certFileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return certFileStamp{}
	}
	return certFileStamp{fi.ModTime(), fi.Size()}
}

// certStore holds a certificate and key loaded from PEM files, and loads
// them again from the next handshake on when either file changes. A pair
// that fails to load keeps the one before, and is reported once (onError)
// until the files change again.
type certStore struct {
	certFile, keyFile string
	// onError reports a changed pair that could not be loaded; it must not
	// block.
	onError func(error)
	// now is time.Now; tests may set it.
	now func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  [2]certFileStamp // of the files cert was loaded from
	bad     [2]certFileStamp // of the pair that failed last, reported once
	checked time.Time        // when the files were last looked at
}

// loadCertStore loads the pair certFile, keyFile: PEM, the certificate
// file holding the chain, an RSA, ECDSA or Ed25519 key.
func loadCertStore(certFile, keyFile string, onError func(error)) (*certStore, error) {
	s := &certStore{certFile: certFile, keyFile: keyFile, onError: onError, now: time.Now}
	stamps := s.stampNow()
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	s.cert, s.stamps, s.checked = cert, stamps, s.now()
	return s, nil
}

// stampNow returns the stamps of the two files now.
func (s *certStore) stampNow() [2]certFileStamp {
	return [2]certFileStamp{certStampOf(s.certFile), certStampOf(s.keyFile)}
}

// loadKeyPair reads and checks a certificate file and its key file.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// get returns the pair to present now: once a second at most, it checks
// whether the files changed, and loads them if they did.
func (s *certStore) get() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.checked) < certCheckEvery && !now.Before(s.checked) {
		return s.cert
	}
	s.checked = now
	stamps := s.stampNow()
	if stamps == s.stamps || stamps == s.bad {
		return s.cert
	}
	cert, err := loadKeyPair(s.certFile, s.keyFile)
	if err != nil {
		// Said once per failed pair: the next change is tried again.
		s.bad = stamps
		if s.onError != nil {
			s.onError(fmt.Errorf("a changed certificate could not be loaded, the one loaded before stays: %w", err))
		}
		return s.cert
	}
	s.cert, s.stamps, s.bad = cert, stamps, [2]certFileStamp{}
	return s.cert
}

// loadCAPool reads a PEM file of CA certificates (tlsclientca=, backendca=).
func loadCAPool(option, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", option, file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s=%s: %w", option, file, errNoPEMCerts)
	}
	return pool, nil
}

// errNoPEMCerts: a CA file holds no PEM certificate.
var errNoPEMCerts = errors.New("no PEM certificate in the file")
