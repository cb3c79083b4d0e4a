package main

// The goroutine relay's side of the bandwidth caps (bandwidth.go): a
// direction under a cap moves a chunk at a time, as its pacer lets it.

import (
	"io"
	"net"
)

// copyPaced relays direction h under pacer p until it ends, as copy does:
// by io.CopyN between the sockets a chunk at a time where that splices,
// else (a data log, an idle timer, TLS) by copyChunks reading through
// the pacer.
func (h *halfConn) copyPaced(p *pacer) error {
	if h.dlog == nil && h.conn.idleTimer == nil && copySplices && !h.hasTLS() {
		for {
			n := p.wait(h.conn.isAborted)
			if n == 0 {
				return net.ErrClosed
			}
			m, err := io.CopyN(h.dst, h.src, int64(n))
			h.bytes.Add(m)
			p.charge(int(m))
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	return copyChunks(h.write, &pacedReader{src: h.reader(), p: p, stopped: h.conn.isAborted}, h.dlog, h.conn.touch, &h.bytes)
}

// pacedReader reads src no faster than its pacer lets it.
type pacedReader struct {
	src     io.Reader
	p       *pacer
	stopped func() bool
}

func (r *pacedReader) Read(b []byte) (int, error) {
	n := r.p.wait(r.stopped)
	if n == 0 {
		return 0, net.ErrClosed
	}
	if len(b) > n {
		b = b[:n]
	}
	m, err := r.src.Read(b)
	r.p.charge(m)
	return m, err
}
