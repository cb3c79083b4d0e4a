package main

// TLS on a relayed connection of the goroutine relay (conn.go): the
// client's handshake of a terminating route (tls=), the backend's of an
// originating one (backendtls=), and the two directions reading and
// writing through them. The relay's rules (the backend attempt, opened and
// closed, the half-close) stay conn.go's: TLS only wraps a side.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// prefixConn is a connection whose first bytes were read already (after a
// PROXY header, or an SNI route's ClientHello): Read returns them first.
type prefixConn struct {
	net.Conn
	buf []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// startTLS runs the client's handshake on a terminating route, within the
// handshake timeout; early are the client's bytes read already. It returns
// the bytes still to relay to the backend (none once TLS has them), and
// false when the handshake failed: the failure is reported and counted,
// and the client closed and done.
func (c *relayConn) startTLS(clientAddr string, early []byte) ([]byte, bool) {
	t := c.cfg.tls
	if t == nil || t.server == nil {
		return early, true
	}
	conn := tls.Server(&prefixConn{Conn: c.clientConn, buf: early}, t.server)
	c.clientConn.SetDeadline(time.Now().Add(t.handshakeTimeout()))
	err := conn.Handshake()
	c.clientConn.SetDeadline(time.Time{})
	stats := &c.l.stats.tls
	if err != nil {
		stats.failed.Add(1)
		c.clientConn.SetLinger(0)
		c.clientConn.Close()
		l := c.l
		l.relay.emit(Event{Kind: TLSFailed, Time: time.Now(), Route: l.id, Client: clientAddr,
			Remote: c.cfg.RemoteAddr(), Duration: time.Since(c.start), Err: handshakeReason(err, t.handshakeTimeout())})
		l.connDone(c)
		return nil, false
	}
	stats.done.Add(1)
	c.clientTLS = conn
	return nil, true
}

// backendHandshake runs the TLS handshake with a backend at addr that has
// just answered (after the PROXY header, if any), within the handshake
// timeout; on success the connection's backend side is TLS.
func (c *relayConn) backendHandshake(conn net.Conn, addr string) error {
	t := c.cfg.tls
	tc := tls.Client(conn, t.backendConfig(addr))
	ctx, cancel := context.WithTimeout(c.l.dials, t.handshakeTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.l.stats.tls.failed.Add(1)
		return fmt.Errorf("backend TLS: %w", handshakeReason(err, t.handshakeTimeout()))
	}
	c.l.stats.tls.done.Add(1)
	c.remoteTLS = tc
	return nil
}

// originates reports whether the route speaks TLS to its backends.
func (c *routeConfig) originates() bool { return c.tls != nil && c.tls.opts.BackendTLS != "" }

// handshakeReason is why a handshake failed, in the connection log's words.
func handshakeReason(err error, timeout time.Duration) error {
	var rh tls.RecordHeaderError
	var ne net.Error
	var certErr *tls.CertificateVerificationError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &rh):
		return errors.New("client spoke plaintext")
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no TLS handshake within %v", timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("peer closed during the TLS handshake")
	case strings.Contains(err.Error(), "didn't provide a certificate"),
		strings.Contains(err.Error(), "certificate required"):
		return errors.New("tls: no certificate")
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("certificate expired or not yet valid: %v", invalid)
	case errors.As(err, &hostErr):
		return fmt.Errorf("wrong name: %v", hostErr)
	case errors.As(err, &unknown):
		return fmt.Errorf("unknown authority: %v", unknown)
	case errors.As(err, &certErr):
		return certErr.Err
	}
	return err
}

// wrapTLS makes the directions read and write through the TLS sides.
func (c *relayConn) wrapTLS(up, down *halfConn) {
	up.srcTLS, up.dstTLS = c.clientTLS, c.remoteTLS
	down.srcTLS, down.dstTLS = c.remoteTLS, c.clientTLS
}

// tlsSummary describes the TLS sides for the connection log: version,
// cipher suite, server name, and the client certificate's subject.
func (c *relayConn) tlsSummary() string {
	var parts []string
	if c.clientTLS != nil {
		parts = append(parts, describeTLS("client", c.clientTLS.ConnectionState()))
	}
	if c.remoteTLS != nil {
		parts = append(parts, describeTLS("backend", c.remoteTLS.ConnectionState()))
	}
	if c.sniName != "" && c.clientTLS == nil {
		parts = append(parts, "server name "+c.sniName)
	}
	return strings.Join(parts, "; ")
}

// describeTLS writes one TLS side: "client TLS 1.3 TLS_AES_128_GCM_SHA256
// server name www.example.com client certificate CN=alice".
func describeTLS(side string, st tls.ConnectionState) string {
	s := side + " " + tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
	if st.ServerName != "" {
		s += " server name " + st.ServerName
	}
	if side == "client" && len(st.PeerCertificates) > 0 {
		s += " client certificate " + st.PeerCertificates[0].Subject.String()
	}
	return s
}

// hasTLS reports whether a direction reads or writes through TLS.
func (h *halfConn) hasTLS() bool { return h.srcTLS != nil || h.dstTLS != nil }

// reader is what the direction reads from.
func (h *halfConn) reader() io.Reader {
	if h.srcTLS != nil {
		return h.srcTLS
	}
	return h.src
}

// writer is what the direction writes to.
func (h *halfConn) writer() io.Writer {
	if h.dstTLS != nil {
		return h.dstTLS
	}
	return h.dst
}

// closeWrite ends the direction's writing: TLS's close_notify first, then
// the TCP half-close.
func (h *halfConn) closeWrite() error {
	if h.dstTLS != nil {
		h.dstTLS.CloseWrite()
	}
	return h.dst.CloseWrite()
}
