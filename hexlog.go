package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The data log, in the manual's format: for every chunk read from one side, a
// header line, then the bytes sixteen to a line, each as " %02X", then one
// space and the same bytes as ASCII (0x20-0x7E as they are, others '.'),
// then a blank line:
//
//	12:58:56 Packet from 192.168.1.13:54789 to 216.32.74.53:80
//	 47 45 54 20 2F 20 48 54 54 50 2F 31 2E 31 0D 0A GET / HTTP/1.1..
//	 0D 0A                                           ..
//
// The ASCII column of a short last line stays aligned with the lines above.

// hexBytesPerLine is how many relayed bytes one data-log line shows.
const hexBytesPerLine = 16

// appendChunk appends one chunk's data-log text to dst under a header
// word: "Packet" for a TCP chunk, "Datagram" for a UDP datagram.
func appendChunk(dst []byte, t time.Time, word, from, to string, p []byte) []byte {
	dst = t.AppendFormat(dst, "15:04:05")
	dst = append(dst, ' ')
	dst = append(dst, word...)
	dst = append(dst, " from "...)
	dst = append(dst, from...)
	dst = append(dst, " to "...)
	dst = append(dst, to...)
	dst = append(dst, newline...)
	// Every line has the same length, padded or not: fill them in place.
	const lineLen = dataLogLineLen
	lines := (len(p) + hexBytesPerLine - 1) / hexBytesPerLine
	dst = slices.Grow(dst, lines*lineLen+len(newline))
	for len(p) >= hexBytesPerLine {
		start := len(dst)
		dst = dst[:start+lineLen]
		formatFullLine((*[lineLen]byte)(dst[start:]), (*[hexBytesPerLine]byte)(p))
		p = p[hexBytesPerLine:]
	}
	if len(p) > 0 {
		var full [lineLen]byte
		formatFullLine(&full, (*[hexBytesPerLine]byte)(append(p[:len(p):len(p)], make([]byte, hexBytesPerLine-len(p))...)))
		// Blank the missing bytes' hex and cut the ASCII column short.
		for i := 3 * len(p); i < 3*hexBytesPerLine; i++ {
			full[i] = ' '
		}
		dst = append(dst, full[:3*hexBytesPerLine+1+len(p)]...)
		dst = append(dst, newline...)
	}
	return append(dst, newline...)
}

// dataLogLineLen is the length of a data-log line with all sixteen bytes.
const dataLogLineLen = 3*hexBytesPerLine + 1 + hexBytesPerLine + len(newline)

// formatFullLine writes one data-log line for sixteen bytes. Fixed-size
// arrays let the compiler drop the bounds checks: this is the hot loop of -d.
func formatFullLine(line *[dataLogLineLen]byte, p *[hexBytesPerLine]byte) {
	for i, b := range p {
		line[3*i] = ' '
		line[3*i+1] = hexDigits[b>>4]
		line[3*i+2] = hexDigits[b&0x0F]
		line[3*hexBytesPerLine+1+i] = printable[b]
	}
	line[3*hexBytesPerLine] = ' '
	copy(line[3*hexBytesPerLine+1+hexBytesPerLine:], newline)
}

// printable maps each byte to itself if it is printable ASCII, else '.'.
const printable = "................................" +
	" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~." +
	"................................................................" +
	"................................................................"

// hexDigits are the upper-case hex digits the data log uses.
const hexDigits = "0123456789ABCDEF"

// dataLog is one connection's data log file, shared by its two directions.
type dataLog struct {
	name    string
	onError func(error) // called once, with the first write error
	// guard, when the service's, hears of a write error, and sets reopen
	// when it has recreated the removed directory: the file is then opened
	// again at its path before the next chunk.
	guard  *logDirGuard
	reopen atomic.Bool

	mu     sync.Mutex
	f      *os.File
	failed bool

	queue dataLogQueue // a UDP session's text waiting for the file
}

// dataLogDirection formats the packets of one direction of a connection.
// Formatting happens outside the file's lock, in the direction's own buffer.
type dataLogDirection struct {
	log      *dataLog
	word     string // the header's word: "Packet", or "Datagram" (UDP)
	from, to string
	queued   bool // written behind the relay (UDP): see datalogqueue.go
	buf      []byte
}

// direction returns the logger for packets going from one address to the
// other; on a nil dataLog it returns nil, which means "not logged".
func (d *dataLog) direction(from, to string) *dataLogDirection {
	if d == nil {
		return nil
	}
	return &dataLogDirection{log: d, word: "Packet", from: from, to: to}
}

// datagrams returns the logger for the datagrams of one direction of a
// UDP session; nil on a nil dataLog.
func (d *dataLog) datagrams(from, to string) *dataLogDirection {
	dd := d.direction(from, to)
	if dd != nil {
		dd.word, dd.queued = "Datagram", true
	}
	return dd
}

// packet logs one chunk of relayed bytes. A TCP connection's file is
// written at once, so the log can be followed while the connection runs; a
// UDP session's is queued for its writer (datalogqueue.go). After a write
// error the connection is no longer logged; the relay itself goes on.
func (dd *dataLogDirection) packet(p []byte) {
	dd.buf = appendChunk(dd.buf[:0], time.Now(), dd.word, dd.from, dd.to, p)
	if dd.queued {
		dd.log.enqueue(dd.buf)
		return
	}
	dd.log.write(dd.buf)
}

// write writes formatted text to the file, reopening it first if its
// directory was recreated.
func (d *dataLog) write(text []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed {
		return
	}
	err := d.reopenIfMoved()
	if err == nil {
		_, err = d.f.Write(text)
	}
	if err != nil {
		d.fail(err)
	}
}

// fail stops the data log after an error and reports it. d.mu is held.
func (d *dataLog) fail(err error) {
	d.failed = true
	op, pe := "write", (*fs.PathError)(nil)
	if errors.As(err, &pe) {
		op, err = pe.Op, pe.Err // its path is d.name
	}
	err = fmt.Errorf("%s data log %s: %w", op, d.name, err)
	if d.onError != nil {
		d.onError(err)
	}
	if d.guard != nil {
		d.guard.dataLogFailed(err)
	}
}

// reopenIfMoved opens the file again at its path when the guard has
// recreated the directory it was in: what follows is logged there, not in
// the removed file. d.mu is held.
func (d *dataLog) reopenIfMoved() error {
	if !d.reopen.Load() { // a plain load: this is on every logged chunk
		return nil
	}
	d.reopen.Store(false)
	f, err := os.OpenFile(d.name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	d.f.Close()
	d.f = f
	return nil
}

// Close writes what is still queued and closes the file.
func (d *dataLog) Close() error {
	d.drainQueue()
	if d.guard != nil {
		d.guard.untrack(d)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Close()
}

// dataLogNamer creates data log files named as the manual says:
// RL + yymmddhhtt (local time) + a two-digit random number + .LOG. Names are
// created exclusively, never overwritten. When all hundred names of a minute
// are taken, it goes on with three digits, then four, and so on, so no
// connection goes without its log. The zero value is ready to use.
type dataLogNamer struct {
	// guard is the service's log directory guard, if any: a data log that
	// cannot be created in its directory because the directory is gone is
	// created again once the guard has recreated it, and the logs created
	// there are tracked by the guard.
	guard atomic.Pointer[logDirGuard]

	mu     sync.Mutex
	minute string // the yymmddhhtt the width below applies to
	width  int    // digits of the random part that still had room this minute
}

// maxDataLogDigits bounds the search for a free name.
const maxDataLogDigits = 9

// create makes a new data log file in dir for a connection opened at t.
func (n *dataLogNamer) create(dir string, t time.Time) (*dataLog, error) {
	g := n.guard.Load()
	if g != nil && g.path != dir {
		g = nil // a route still running on a former log directory
	}
	d, err := n.createIn(dir, t)
	if err != nil && g != nil && errors.Is(err, fs.ErrNotExist) {
		if _, dirErr := g.repair(); dirErr == nil { // there again
			d, err = n.createIn(dir, t)
		}
	}
	if g != nil {
		if err != nil {
			g.dataLogFailed(err)
			return nil, err
		}
		d.guard = g
		g.track(d)
	}
	return d, err
}

// createIn is create without the guard.
func (n *dataLogNamer) createIn(dir string, t time.Time) (*dataLog, error) {
	minute := t.Format("0601021504")
	n.mu.Lock()
	width := 2
	if n.minute == minute {
		width = n.width
	}
	n.mu.Unlock()

	for ; width <= maxDataLogDigits; width++ {
		f, name, err := createUnique(dir, "RL"+minute, width)
		if errors.Is(err, fs.ErrExist) {
			continue // every name of this width is taken
		}
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		n.minute, n.width = minute, width
		n.mu.Unlock()
		return &dataLog{name: name, f: f}, nil
	}
	return nil, fmt.Errorf("create data log in %s: no free RL%s name", dir, minute)
}

// createUnique creates prefix+N+".LOG" in dir exclusively, N being a number
// of width digits: a random one first, then the following ones in turn, so
// every name of that width is tried once. It returns fs.ErrExist when all are
// taken.
func createUnique(dir, prefix string, width int) (*os.File, string, error) {
	count := 1
	for range width {
		count *= 10
	}
	start := rand.IntN(count)
	for i := range count {
		name := filepath.Join(dir, fmt.Sprintf("%s%0*d.LOG", prefix, width, (start+i)%count))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", fmt.Errorf("create data log: %w", err)
		}
	}
	return nil, "", fs.ErrExist
}
