package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// captureHello returns the first bytes a TLS client configured by cfg
// sends: its ClientHello, as the wire carries it.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	hello := captureWith(t, func(port int) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Client(c, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		tc.Handshake()
	})
	if len(hello) == 0 {
		t.Fatal("no ClientHello captured")
	}
	return hello
}

// captureWith returns the first bytes (up to the end of its ClientHello)
// that a client program sends to a local port: run is given the port.
func captureWith(t testing.TB, run func(port int)) []byte {
	t.Helper()
	ln := newLocalListener(t)
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		hello, _, _ := readClientHello(c, 10*time.Second)
		got <- hello
	}()
	go run(portOf(ln.Addr()))
	select {
	case h := <-got:
		return h
	case <-time.After(15 * time.Second):
		t.Fatal("no ClientHello captured")
		return nil
	}
}

// refragment re-records a ClientHello (one record) into records of at
// most size bytes of payload each.
func refragment(t testing.TB, hello []byte, size int) []byte {
	t.Helper()
	if len(hello) < 5 || hello[0] != recordHandshake {
		t.Fatal("not a handshake record")
	}
	msg := hello[5:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordHandshake, hello[1], hello[2], byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// oneByteConn delivers its data one byte per Read.
type oneByteConn struct {
	net.Conn
	r io.Reader
}

func (c oneByteConn) Read(b []byte) (int, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return c.r.Read(b)
}

func TestParseClientHello(t *testing.T) {
	tls12 := &tls.Config{ServerName: "www.Example.com", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	hellos := map[string]struct {
		hello []byte
		want  string
	}{
		"go tls 1.3":   {captureHello(t, &tls.Config{ServerName: "a.example.com", InsecureSkipVerify: true}), "a.example.com"},
		"go tls 1.2":   {captureHello(t, tls12), "www.example.com"},
		"no name (IP)": {captureHello(t, &tls.Config{ServerName: "127.0.0.1", InsecureSkipVerify: true}), ""},
	}
	for name, h := range hellos {
		t.Run(name, func(t *testing.T) {
			for _, form := range []struct {
				name string
				data []byte
			}{{"one record", h.hello}, {"records of 100 bytes", refragment(t, h.hello, 100)}, {"records of 1 byte", refragment(t, h.hello, 1)}} {
				got, n, err := parseClientHello(form.data)
				if err != nil || got != h.want || n != len(form.data) {
					t.Errorf("%s: parseClientHello = %q, %d, %v; want %q, %d", form.name, got, n, err, h.want, len(form.data))
				}
				// Every prefix is incomplete, never an error nor a name.
				for i := range len(form.data) {
					if _, _, err := parseClientHello(form.data[:i]); !errors.Is(err, errHelloIncomplete) {
						t.Fatalf("%s: prefix of %d bytes: %v; want incomplete", form.name, i, err)
					}
				}
				// Delivered a byte at a time, with more bytes after it.
				data := append(append([]byte(nil), form.data...), "after"...)
				hello, got2, err := readClientHello(oneByteConn{nopConn{}, bytes.NewReader(data)}, 5*time.Second)
				if err != nil || got2 != h.want || !bytes.HasPrefix(hello, form.data) {
					t.Errorf("%s, 1-byte reads: %q, %v (%d bytes)", form.name, got2, err, len(hello))
				}
			}
		})
	}
	bad := []struct {
		name string
		data []byte
		want string
	}{
		{"plaintext", []byte("GET / HTTP/1.1\r\n\r\n"), "client spoke plaintext"},
		{"garbage", []byte{0x16, 0x00, 0x00, 0x00, 0x10, 1, 2, 3}, "is not TLS"},
		{"record over 16 KiB", []byte{0x16, 0x03, 0x01, 0x40, 0x01}, "record of 16385 bytes is over TLS's 16384"},
		{"empty record", []byte{0x16, 0x03, 0x01, 0x00, 0x00}, "empty handshake record"},
		{"server hello", []byte{0x16, 0x03, 0x03, 0x00, 0x04, 2, 0, 0, 0}, "handshake message 2 is not a ClientHello"},
		{"hello over 64 KiB", []byte{0x16, 0x03, 0x03, 0x00, 0x04, 1, 1, 0, 1}, "over 65536"},
		{"truncated body", []byte{0x16, 0x03, 0x03, 0x00, 0x06, 1, 0, 0, 2, 3, 3}, "truncated ClientHello"},
		{"alert inside", append(refragment(t, hellos["go tls 1.3"].hello, 100)[:105], 0x15, 3, 3, 0, 2, 2, 40), "record of type 21 inside the ClientHello"},
	}
	for _, tt := range bad {
		if _, _, err := parseClientHello(tt.data); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.name, err, tt.want)
		}
	}
}

// TestReadClientHelloTimeout: a client that sends part of a ClientHello
// and stops is cut at the timeout with the bytes it sent.
func TestReadClientHelloTimeout(t *testing.T) {
	ln := newLocalListener(t)
	c := dialTCP(t, ln.Addr().String())
	defer c.Close()
	c.Write([]byte{0x16, 0x03, 0x01, 0x02})
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, err = readClientHello(s, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no ClientHello within 200ms (4 bytes came)") {
		t.Fatalf("error %v; want the timeout", err)
	}
}

// nopConn is a net.Conn that does nothing (oneByteConn reads elsewhere).
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error { return nil }

// FuzzClientHello: the reader never panics, never reads past what it
// was given, and finds the same name whatever the records' sizes.
func FuzzClientHello(f *testing.F) {
	f.Add(captureHello(f, &tls.Config{ServerName: "fuzz.example.com", InsecureSkipVerify: true}))
	f.Add(captureHello(f, &tls.Config{ServerName: "x.example.org", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		name, n, err := parseClientHello(data)
		if err != nil {
			return
		}
		if n > len(data) {
			t.Fatalf("took %d bytes of %d", n, len(data))
		}
		if name != "" && checkHostName(name) != nil {
			t.Fatalf("name %q is not a host name", name)
		}
		// The same hello in records of 7 bytes names the same server.
		hello := data[:n]
		if n > 5 && int(hello[3])<<8|int(hello[4]) == n-5 {
			again, m, err := parseClientHello(refragment(t, hello, 7))
			if err != nil || again != name || m != len(refragment(t, hello, 7)) {
				t.Fatalf("in records of 7 bytes: %q, %d, %v; want %q", again, m, err, name)
			}
		}
	})
}
