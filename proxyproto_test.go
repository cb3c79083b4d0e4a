package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestProxyHeaderBytes: the headers relaytcp sends, byte for byte, as the
// spec's examples write them.
func TestProxyHeaderBytes(t *testing.T) {
	c4, d4 := netip.MustParseAddrPort("192.168.1.7:50312"), netip.MustParseAddrPort("10.0.0.1:80")
	c6, d6 := netip.MustParseAddrPort("[2001:db8::7]:50312"), netip.MustParseAddrPort("[2001:db8::1]:443")
	mapped := netip.MustParseAddrPort("[::ffff:192.168.1.7]:50312")
	tests := []struct {
		version     string
		client, dst netip.AddrPort
		want        string // v1 text, or v2 in hex
	}{
		{proxyV1, c4, d4, "PROXY TCP4 192.168.1.7 10.0.0.1 50312 80\r\n"},
		{proxyV1, c6, d6, "PROXY TCP6 2001:db8::7 2001:db8::1 50312 443\r\n"},
		{proxyV1, mapped, netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), "PROXY TCP4 192.168.1.7 10.0.0.1 50312 80\r\n"},
		{proxyV1, c4, d6, "PROXY UNKNOWN\r\n"},
		{proxyV2, c4, d4, "0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "c0a80107" + "0a000001" + "c488" + "0050"},
		{proxyV2, c6, d6, "0d0a0d0a000d0a515549540a" + "21" + "21" + "0024" +
			"20010db8000000000000000000000007" + "20010db8000000000000000000000001" + "c488" + "01bb"},
		{proxyV2, mapped, d4, "0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "c0a80107" + "0a000001" + "c488" + "0050"},
		{proxyV2, c4, d6, "0d0a0d0a000d0a515549540a" + "20" + "00" + "0000"},
	}
	for _, tt := range tests {
		got := proxyHeaderBytes(tt.version, tt.client, tt.dst)
		want := []byte(tt.want)
		if tt.version == proxyV2 {
			want, _ = hex.DecodeString(tt.want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s %v %v:\n got %q\nwant %q", tt.version, tt.client, tt.dst, got, want)
			continue
		}
		// What relaytcp sends, it reads back.
		h, n, err := parseProxyHeader(append(got, "hello"...))
		if err != nil || n != len(got) {
			t.Errorf("parse %q: %v, %d", got, err, n)
			continue
		}
		if !h.local && (h.src.Addr() != tt.client.Addr().Unmap() || h.src.Port() != tt.client.Port() || h.dst.Addr() != tt.dst.Addr().Unmap()) {
			t.Errorf("parse %q: %+v", got, h)
		}
	}
}

// TestParseProxyHeader: what is accepted, what needs more bytes, what is
// refused and why.
func TestParseProxyHeader(t *testing.T) {
	v2 := func(hexs string) string {
		b, _ := hex.DecodeString(strings.ReplaceAll(hexs, " ", ""))
		return string(b)
	}
	sig := "0d0a0d0a000d0a515549540a"
	good := []struct {
		in    string
		n     int
		local bool
		src   string
	}{
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\nGET /", 36, false, "1.2.3.4:1000"},
		{"PROXY TCP6 ::1 ::2 65535 0\r\n", 28, false, "[::1]:65535"},
		{"PROXY UNKNOWN\r\n", 15, true, ""},
		{"PROXY UNKNOWN ffff:f...f:ffff 1 2\r\nx", 35, true, ""},
		{v2(sig+"21 11 000c 01020304 05060708 03e8 0050") + "data", 28, false, "1.2.3.4:1000"},
		{v2(sig + "20 00 0000"), 16, true, ""},                                                       // LOCAL
		{v2(sig + "20 11 0000"), 16, true, ""},                                                       // LOCAL: the family is ignored, so are missing addresses
		{v2(sig + "20 11 000c 01020304 05060708 03e8 0050"), 28, true, ""},                           // LOCAL with addresses
		{v2(sig + "21 11 0011 01020304 05060708 03e8 0050 0300 02 abcd"), 33, false, "1.2.3.4:1000"}, // a TLV
		{v2(sig + "21 31 0000"), 16, true, ""},                                                       // Unix: no TCP client
		{v2(sig + "21 00 0000"), 16, true, ""},                                                       // UNSPEC
		{v2(sig + "21 12 000c 01020304 05060708 03e8 0050"), 28, true, ""},                           // UDP over IPv4
		{v2(sig + "21 22 0000"), 16, true, ""},                                                       // UDP over IPv6, no addresses
		{v2(sig + "21 32 0000"), 16, true, ""},                                                       // Unix datagram
		{v2(sig + "20 41 0000"), 16, true, ""},                                                       // LOCAL: even an undefined family is ignored
	}
	for _, tt := range good {
		h, n, err := parseProxyHeader([]byte(tt.in))
		if err != nil || n != tt.n || h.local != tt.local || (!tt.local && h.src.String() != tt.src) {
			t.Errorf("parse %q = %+v, %d, %v; want n %d local %v src %s", tt.in, h, n, err, tt.n, tt.local, tt.src)
		}
	}
	incomplete := []string{"", "P", "PROXY", "PROXY TCP4 1.2.3.4 5.6.7.8 1000 80", "PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r",
		"\r\n\r\n", v2(sig + "21"), v2(sig + "21 11 000c 01020304")}
	for _, in := range incomplete {
		if _, _, err := parseProxyHeader([]byte(in)); !errors.Is(err, errProxyIncomplete) {
			t.Errorf("parse %q: %v; want incomplete", in, err)
		}
	}
	bad := []struct{ in, want string }{
		{"GET / HTTP/1.0\r\n", "no PROXY header"},
		{"PROXI TCP4", "no PROXY header"},
		{"\r\nGET", "no PROXY header"},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\n", "a line break that is not CRLF"},
		{"PROXY TCP5 1.2.3.4 5.6.7.8 1000 80\r\n", "want PROXY TCP4|TCP6"},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1000\r\n", "want PROXY TCP4|TCP6"},
		{"PROXY TCP4 ::1 5.6.7.8 1000 80\r\n", `"::1" is not an IPv4 address`},
		{"PROXY TCP6 1.2.3.4 ::1 1000 80\r\n", `"1.2.3.4" is not an IPv6 address`},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n", `"65536" is not a port`},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n", `"080" is not a port`},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80 " + strings.Repeat("x", 100), "no CRLF in the first 107 bytes"},
		{v2(sig + "11 11 000c"), "version 1"},
		{v2(sig + "22 11 000c"), "command 2"},
		{v2(sig + "21 11 0004 01020304"), "4 bytes of addresses for family 0x11, want 12"},
		{v2(sig + "21 13 0000"), "address family 0x13"},
		{v2(sig + "21 41 000c 01020304 05060708 03e8 0050"), "address family 0x41"}, // no family 4
		{v2(sig + "21 14 000c 01020304 05060708 03e8 0050"), "address family 0x14"}, // no transport 4
		{v2(sig + "21 33 0000"), "address family 0x33"},
		{v2(sig + "21 f1 0000"), "address family 0xf1"},
		{v2(sig + "21 11 ffff"), "65551 bytes, more than 4112"},
	}
	for _, tt := range bad {
		_, _, err := parseProxyHeader([]byte(tt.in))
		if err == nil || errors.Is(err, errProxyIncomplete) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse %q: %v; want an error with %q", tt.in, err, tt.want)
		}
	}
}

// FuzzParseProxyHeader: the parser never panics, never claims more bytes
// than it was given, and what it accepts from a header relaytcp would send
// it reads back the same.
func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\n"))
	f.Add(proxyHeaderBytes(proxyV2, netip.MustParseAddrPort("[2001:db8::7]:1"), netip.MustParseAddrPort("[2001:db8::1]:2")))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x41\x00\x00"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x32\x00\x00"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x41\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseProxyHeader(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("parse %q: length %d of %d", b, n, len(b))
		}
		if !h.local && (!h.src.Addr().IsValid() || !h.dst.Addr().IsValid()) {
			t.Fatalf("parse %q: %+v", b, h)
		}
	})
}
