package main

// Reading a TLS ClientHello without terminating TLS (sni= routes): the
// records are read as they come, up to the end of the ClientHello, and
// kept, so that the route relays them to its backend exactly as received;
// the server name is the one in the server_name extension (RFC 6066,
// section 3). RFC 8446, sections 4.1.2 and 5.1, give the layout.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"
)

// Bounds of a ClientHello: a record's payload is at most 2^14 bytes (RFC
// 8446, section 5.1); the whole message, which may span records, at most
// maxClientHello.
const (
	maxRecordPayload = 1 << 14
	maxClientHello   = 64 << 10
	recordHeaderLen  = 5
	recordHandshake  = 0x16
	msgClientHello   = 1
	extServerName    = 0
	sniHostName      = 0
)

// errHelloIncomplete: more bytes are needed to read the ClientHello.
var errHelloIncomplete = errors.New("incomplete ClientHello")

// errPlaintext: the first byte is not a TLS handshake record.
var errPlaintext = errors.New("client spoke plaintext")

// parseClientHello reads the server name from the TLS records in data,
// which start at the connection's first byte. It returns the name ("" when
// the client sent none) and the number of bytes the records up to the end
// of the ClientHello take; errHelloIncomplete when data ends before that;
// another error when data is not a ClientHello within the bounds.
func parseClientHello(data []byte) (name string, n int, err error) {
	var p helloParser
	return p.feed(data)
}

// helloParser reads a ClientHello's records as they arrive: each record
// is looked at once, however the bytes come (a byte at a time, say), so
// reading a ClientHello costs time in proportion to its size.
type helloParser struct {
	n   int    // the bytes of the records read so far
	msg []byte // their handshake bytes
}

// feed reads the complete records in data (all the bytes so far, from
// the first) that it has not read yet; its results are parseClientHello's.
func (p *helloParser) feed(data []byte) (name string, n int, err error) {
	for {
		if len(data) > 0 && data[0] != recordHandshake {
			return "", 0, errPlaintext
		}
		if len(data[p.n:]) < recordHeaderLen {
			return "", 0, errHelloIncomplete
		}
		h := data[p.n : p.n+recordHeaderLen]
		if h[0] != recordHandshake {
			return "", 0, fmt.Errorf("record of type %d inside the ClientHello", h[0])
		}
		if h[1] != 3 {
			return "", 0, fmt.Errorf("record version %d.%d is not TLS", h[1], h[2])
		}
		size := int(h[3])<<8 | int(h[4])
		if size == 0 {
			return "", 0, errors.New("empty handshake record")
		}
		if size > maxRecordPayload {
			return "", 0, fmt.Errorf("record of %d bytes is over TLS's %d", size, maxRecordPayload)
		}
		if len(data[p.n:]) < recordHeaderLen+size {
			return "", 0, errHelloIncomplete
		}
		p.msg = append(p.msg, data[p.n+recordHeaderLen:p.n+recordHeaderLen+size]...)
		p.n += recordHeaderLen + size
		if len(p.msg) < 4 {
			continue
		}
		if p.msg[0] != msgClientHello {
			return "", 0, fmt.Errorf("handshake message %d is not a ClientHello", p.msg[0])
		}
		length := int(p.msg[1])<<16 | int(p.msg[2])<<8 | int(p.msg[3])
		if length > maxClientHello {
			return "", 0, fmt.Errorf("ClientHello of %d bytes is over %d", length, maxClientHello)
		}
		if len(p.msg) < 4+length {
			continue
		}
		if len(p.msg) > 4+length {
			return "", 0, errors.New("bytes after the ClientHello in its record")
		}
		name, err := serverName(p.msg[4:])
		return name, p.n, err
	}
}

// helloReader walks a ClientHello's fields; ok turns false at the first
// field that runs past the end.
type helloReader struct {
	b  []byte
	ok bool
}

func (r *helloReader) skip(n int) {
	if !r.ok || n > len(r.b) {
		r.ok = false
		return
	}
	r.b = r.b[n:]
}

// vector returns a field that starts with its length in lenBytes bytes.
func (r *helloReader) vector(lenBytes int) []byte {
	if !r.ok || len(r.b) < lenBytes {
		r.ok = false
		return nil
	}
	n := 0
	for _, c := range r.b[:lenBytes] {
		n = n<<8 | int(c)
	}
	r.b = r.b[lenBytes:]
	if n > len(r.b) {
		r.ok = false
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *helloReader) uint16() int {
	if !r.ok || len(r.b) < 2 {
		r.ok = false
		return 0
	}
	v := int(r.b[0])<<8 | int(r.b[1])
	r.b = r.b[2:]
	return v
}

// serverName returns the host name of a ClientHello body's server_name
// extension, lower case, or "" when there is none.
func serverName(body []byte) (string, error) {
	r := &helloReader{b: body, ok: true}
	r.skip(2 + 32) // legacy_version, random
	r.vector(1)    // legacy_session_id
	r.vector(2)    // cipher_suites
	r.vector(1)    // legacy_compression_methods
	if !r.ok {
		return "", errors.New("truncated ClientHello")
	}
	if len(r.b) == 0 {
		return "", nil // no extensions at all (SSL 3.0 style)
	}
	exts := &helloReader{b: r.vector(2), ok: r.ok}
	if !r.ok || len(r.b) != 0 {
		return "", errors.New("malformed ClientHello extensions")
	}
	for len(exts.b) > 0 {
		typ := exts.uint16()
		data := exts.vector(2)
		if !exts.ok {
			return "", errors.New("malformed ClientHello extension")
		}
		if typ != extServerName {
			continue
		}
		ext := &helloReader{b: data, ok: true}
		list := &helloReader{b: ext.vector(2), ok: ext.ok}
		if !ext.ok {
			return "", errors.New("malformed server_name extension")
		}
		for len(list.b) > 0 {
			if list.b[0] != sniHostName {
				list.skip(1)
				list.vector(2)
				if !list.ok {
					return "", errors.New("malformed server_name extension")
				}
				continue
			}
			list.skip(1)
			name := list.vector(2)
			if !list.ok || len(name) == 0 {
				return "", errors.New("malformed server_name extension")
			}
			s := strings.ToLower(strings.TrimSuffix(string(name), "."))
			if checkHostName(s) != nil {
				return "", fmt.Errorf("server name %q is not a host name", name)
			}
			return s, nil
		}
		return "", nil
	}
	return "", nil
}

// readClientHello reads a client's first bytes up to the end of its
// ClientHello, within timeout, and returns them and the server name. Bytes
// after the ClientHello (a client that sent on before hearing from a
// server) are returned too, to be relayed after it.
func readClientHello(c net.Conn, timeout time.Duration) (hello []byte, name string, err error) {
	var p helloParser
	hello, err = readPrefix(c, timeout, prefixMessage{
		size:       2048,
		limit:      math.MaxInt, // the parser bounds the ClientHello
		incomplete: errHelloIncomplete,
		parse: func(buf []byte) (err error) {
			name, _, err = p.feed(buf)
			return err
		},
		ended: func(n int, timedOut bool, err error) error {
			switch {
			case timedOut:
				return fmt.Errorf("no ClientHello within %v (%d bytes came)", timeout, n)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("the client closed after %d bytes, before the end of its ClientHello", n)
			}
			return err
		},
	})
	if err != nil {
		return hello, "", err
	}
	return hello, name, nil
}
