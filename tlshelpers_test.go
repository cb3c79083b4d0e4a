package main

// Test certificates, made at test time with crypto/x509 into a test's
// directory: a CA, and server and client certificates it signs.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	file    string // its certificate, PEM
}

// certSpec describes a certificate to issue.
type certSpec struct {
	cn        string
	names     []string // DNS names; 127.0.0.1 and ::1 are always added
	keyType   string   // "ecdsa" (default), "rsa", "ed25519"
	expired   bool
	client    bool // for client authentication rather than server
	notBefore time.Time
}

var serialCounter = big.NewInt(time.Now().UnixNano())

// newKey makes a key of the type named.
func newKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch keyType {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestCA makes a CA and writes its certificate to dir/name.pem.
func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	key := newKey(t, "ecdsa")
	tmpl := &x509.Certificate{
		SerialNumber:          serialCounter.Add(serialCounter, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.file = filepath.Join(dir, name+".pem")
	if err := os.WriteFile(ca.file, ca.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a certificate signed by ca and writes it (with the CA's, as
// a chain) and its key to dir/base.crt and dir/base.key.
func (ca *testCA) issue(t testing.TB, dir, base string, s certSpec) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.issuePEM(t, s)
	certFile, keyFile = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// issuePEM is issue without the files.
func (ca *testCA) issuePEM(t testing.TB, s certSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t, s.keyType)
	tmpl := &x509.Certificate{
		SerialNumber: serialCounter.Add(serialCounter, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: s.cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     s.names,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if s.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if s.expired {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.certPEM...)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM
}

// pool returns a pool holding the CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// tlsEchoServer starts a TLS server on the loopback that echoes each
// connection and closes its write side after the client does; it returns
// the listener.
func tlsEchoServer(t testing.TB, certFile, keyFile string, clientCAs *x509.CertPool) net.Listener {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		cfg.ClientCAs, cfg.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	ln := tls.NewListener(newLocalListener(t), cfg)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						c.(*tls.Conn).CloseWrite()
						return
					}
				}
			}()
		}
	}()
	return ln
}
