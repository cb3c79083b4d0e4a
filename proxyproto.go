package main

// The PROXY protocol (HAProxy's spec, versions 1 and 2): a header a proxy
// sends before the client's bytes, carrying the client's address and the
// address it connected to. A route with proxy=v1|v2 sends one to its
// backend; a route with acceptproxy=1 requires one from every client and
// takes the client's address from it.
//
//	PROXY TCP4 192.168.1.7 10.0.0.1 50312 80\r\n                       (v1)
//	\r\n\r\n\x00\r\nQUIT\n \x21 \x11 \x00\x0c <src4><dst4><sport><dport>  (v2)
//
// https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// proxyV2Signature starts every version 2 header.
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	// maxProxyV1 is the longest version 1 header, CRLF included (the spec's
	// 107 bytes).
	maxProxyV1 = 107
	// maxProxyV2 bounds a version 2 header's length, TLVs included: a
	// longer one is refused as oversized.
	maxProxyV2 = 16 + 4096
)

// proxyHeader is a received PROXY header: the client and the address it
// connected to, or none (local: a health check of the proxy, or a family
// the relay does not relay), then the connection's own addresses count.
type proxyHeader struct {
	version  int
	local    bool
	src, dst netip.AddrPort
}

// errProxyIncomplete says that the bytes so far are the start of a valid
// header: read more.
var errProxyIncomplete = errors.New("incomplete PROXY header")

// parseProxyHeader parses the PROXY header at the start of b. It returns
// the header and its length, errProxyIncomplete when b is a valid start
// that needs more bytes, or an error that says why b does not start with a
// valid header (the connection is then refused).
func parseProxyHeader(b []byte) (proxyHeader, int, error) {
	switch {
	case len(b) == 0:
		return proxyHeader{}, 0, errProxyIncomplete
	case b[0] == 'P':
		return parseProxyV1(b)
	case b[0] == '\r':
		return parseProxyV2(b)
	}
	return proxyHeader{}, 0, errors.New("no PROXY header")
}

// parseProxyV1 parses a version 1 (text) header.
func parseProxyV1(b []byte) (proxyHeader, int, error) {
	const prefix = "PROXY "
	if n := min(len(b), len(prefix)); !bytes.Equal(b[:n], []byte(prefix[:n])) {
		return proxyHeader{}, 0, errors.New("no PROXY header")
	}
	end := bytes.Index(b[:min(len(b), maxProxyV1)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= maxProxyV1 {
			return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header: no CRLF in the first %d bytes", maxProxyV1)
		}
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 && !(b[i] == '\r' && i == len(b)-1) {
			return proxyHeader{}, 0, errors.New("invalid PROXY header: a line break that is not CRLF")
		}
		return proxyHeader{}, 0, errProxyIncomplete
	}
	line := string(b[:end])
	h := proxyHeader{version: 1}
	fields := strings.Split(line, " ")
	if len(fields) >= 2 && fields[1] == "UNKNOWN" {
		h.local = true // the spec: use the connection's own addresses
		return h, end + 2, nil
	}
	if len(fields) != 6 || (fields[1] != "TCP4" && fields[1] != "TCP6") {
		return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header %q: want PROXY TCP4|TCP6 SRC DST SPORT DPORT", line)
	}
	want4, family := fields[1] == "TCP4", "IPv6"
	if want4 {
		family = "IPv4"
	}
	var addrs [2]netip.Addr
	for i, f := range fields[2:4] {
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" || a.Is4() != want4 {
			return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header %q: %q is not an %s address", line, f, family)
		}
		addrs[i] = a
	}
	var ports [2]uint16
	for i, f := range fields[4:6] {
		p, err := strconv.ParseUint(f, 10, 16)
		if err != nil || (len(f) > 1 && f[0] == '0') {
			return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header %q: %q is not a port", line, f)
		}
		ports[i] = uint16(p)
	}
	h.src, h.dst = netip.AddrPortFrom(addrs[0], ports[0]), netip.AddrPortFrom(addrs[1], ports[1])
	return h, end + 2, nil
}

// parseProxyV2 parses a version 2 (binary) header.
func parseProxyV2(b []byte) (proxyHeader, int, error) {
	if n := min(len(b), len(proxyV2Signature)); !bytes.Equal(b[:n], proxyV2Signature[:n]) {
		return proxyHeader{}, 0, errors.New("no PROXY header")
	}
	if len(b) < 16 {
		return proxyHeader{}, 0, errProxyIncomplete
	}
	verCmd, fam := b[12], b[13]
	size := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header: version %d", verCmd>>4)
	}
	if size > maxProxyV2 {
		return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header: %d bytes, more than %d", size, maxProxyV2)
	}
	h := proxyHeader{version: 2}
	switch verCmd & 0xf {
	case 0: // LOCAL: the proxy's own connection (a health check)
		h.local = true
	case 1: // PROXY
	default:
		return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header: command %d", verCmd&0xf)
	}
	if h.local {
		// LOCAL: the receiver ignores the family and skips the rest.
		if len(b) < size {
			return proxyHeader{}, 0, errProxyIncomplete
		}
		return h, size, nil
	}
	// The family byte: the address family in its high nibble (0 UNSPEC,
	// 1 INET, 2 INET6, 3 UNIX), the transport in its low one (0 UNSPEC,
	// 1 STREAM, 2 DGRAM); the spec (2.2) wants any other value refused.
	if fam>>4 > 3 || fam&0x0f > 2 {
		return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header: address family 0x%02x", fam)
	}
	var addrLen int
	switch fam {
	case 0x11: // TCP over IPv4
		addrLen = 12
	case 0x21: // TCP over IPv6
		addrLen = 36
	default: // UNSPEC, UDP, Unix: no TCP client address to use
		h.local = true
	}
	if size < 16+addrLen {
		return proxyHeader{}, 0, fmt.Errorf("invalid PROXY header: %d bytes of addresses for family 0x%02x, want %d", size-16, fam, addrLen)
	}
	if len(b) < size {
		return proxyHeader{}, 0, errProxyIncomplete
	}
	if h.local {
		return h, size, nil
	}
	a := b[16 : 16+addrLen]
	if addrLen == 12 {
		h.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		h.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:12]))
	} else {
		h.src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:34]))
		h.dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:36]))
	}
	return h, size, nil
}

// proxyHeaderBytes returns the header that tells a backend that client
// connected to dst, in version (proxyV1 or proxyV2). IPv4 addresses mapped
// into IPv6 (a dual-stack listener's IPv4 clients) are sent as IPv4. When
// the two are not of one family, the header says UNKNOWN (v1) or LOCAL
// (v2), as the spec wants.
func proxyHeaderBytes(version string, client, dst netip.AddrPort) []byte {
	src := netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	same := src.Addr().Is4() == dst.Addr().Is4() && src.Addr().IsValid() && dst.Addr().IsValid()
	if version == proxyV1 {
		if !same {
			return []byte("PROXY UNKNOWN\r\n")
		}
		fam := "TCP4"
		if !src.Addr().Is4() {
			fam = "TCP6"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, src.Addr().WithZone(""), dst.Addr().WithZone(""), src.Port(), dst.Port())
	}
	b := append([]byte(nil), proxyV2Signature...)
	if !same {
		return append(b, 0x20, 0x00, 0, 0) // LOCAL, UNSPEC
	}
	if src.Addr().Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		b = append(append(b, s4[:]...), d4[:]...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		b = append(append(b, s16[:]...), d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// readProxyHeader reads a PROXY header from a client, waiting at most
// timeout for all of it, and returns it with the client's bytes read
// after it (to relay first). A client that sends something else, ends
// before its header does, or is too slow is refused with the error.
func readProxyHeader(c net.Conn, timeout time.Duration) (proxyHeader, []byte, error) {
	var h proxyHeader
	var size int
	buf, err := readPrefix(c, timeout, prefixMessage{
		size:       512,
		limit:      maxProxyV2,
		incomplete: errProxyIncomplete,
		parse: func(buf []byte) (err error) {
			h, size, err = parseProxyHeader(buf)
			return err
		},
		ended: func(n int, timedOut bool, err error) error {
			switch {
			case timedOut:
				return fmt.Errorf("no PROXY header within %v", timeout)
			case n == 0:
				return fmt.Errorf("no PROXY header: the client ended after 0 bytes")
			case err != nil:
				return fmt.Errorf("truncated PROXY header: the client ended after %d bytes", n)
			}
			return nil
		},
	})
	if err != nil {
		return proxyHeader{}, nil, err
	}
	return h, buf[size:], nil
}
