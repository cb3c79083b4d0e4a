package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuotedFileNames: file names with spaces and commas in double quotes
// (C:\Program Files\...) are read in every option that takes files, and
// written back in quotes, so the text form reads back the same route.
func TestQuotedFileNames(t *testing.T) {
	text := `443 127.0.0.1 8080 tls="C:\Program Files\relaytcp\site.pem","C:\Program Files\relaytcp\a,b.key" tlsclientca="C:\Program Files\ca.pem"`
	r, err := ParseRouteSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	if r.TLSCert != `C:\Program Files\relaytcp\site.pem` || r.TLSKey != `C:\Program Files\relaytcp\a,b.key` || r.TLSClientCA != `C:\Program Files\ca.pem` {
		t.Fatalf("read %q, %q, %q", r.TLSCert, r.TLSKey, r.TLSClientCA)
	}
	if got := r.String(); got != text {
		t.Errorf("written back as\n%s\nwant\n%s", got, text)
	}
	back, err := ParseRouteSpec(r.String())
	if err != nil || back.TLSOptions != r.TLSOptions {
		t.Errorf("read back %+v, %v", back.TLSOptions, err)
	}
	// The usual names stay as they were.
	plain := "443 127.0.0.1 8080 backendtls=1 backendca=/etc/ssl/ca.pem backendcert=/etc/c.pem,/etc/k.pem"
	if r, err := ParseRouteSpec(plain); err != nil || r.String() != plain {
		t.Errorf("%q read back as %q, %v", plain, r.String(), err)
	}
	for _, tt := range []struct{ text, want string }{
		{`443 h 1 tls="C:\a b\c.pem,C:\k.pem`, "unterminated quote"},
		{`443 h 1 tls="a b.pem"`, `invalid tls="a b.pem": want CERTFILE,KEYFILE`},
		{`443 h 1 tls=a.pem,""`, `invalid tls=a.pem,"": want CERTFILE,KEYFILE`},
		{`443 h 1 backendtls=1 backendca="a.pem","b.pem"`, `invalid backendca="a.pem","b.pem"`},
	} {
		if _, err := ParseRouteSpec(tt.text); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want one containing %q", tt.text, err, tt.want)
		}
	}
}

// TestTLSCertificateInDirectoryWithSpace: a terminating route whose
// certificate and key are in a directory with a space in its name, given
// in quotes, relays TLS.
func TestTLSCertificateInDirectoryWithSpace(t *testing.T) {
	dir := filepath.Join(tempDir(t), "Program Files")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "site cert", certSpec{cn: "relay", names: []string{"relay.example.com"}, keyType: "ecdsa"})
	backend := echoServer(t)
	_, addr, log := startSpecRoute(t, fmt.Sprintf(`1 127.0.0.1 %d tls="%s","%s"`, portOf(backend.Addr()), cert, key))
	if _, err := tlsRoundTrip(t, addr, &tls.Config{RootCAs: ca.pool(), ServerName: "relay.example.com"}, "through quoted names"); err != nil {
		t.Fatalf("%v\n%s", err, log.dump())
	}
}
