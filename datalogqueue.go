package main

import (
	"strconv"
	"sync"
	"time"
)

// A UDP route's data log is written behind the datagrams, not in their
// path: the route's one reader goroutine serves every session, so a slow
// disk under a synchronous write would stop all of them and the kernel
// would drop what arrives meanwhile. Each datagram's text is formatted at
// once (so its time is when it was relayed) and queued; a writer goroutine,
// running only while there is text waiting, writes it to the file in
// order.
//
// The queue is bounded: past maxQueuedLogText bytes waiting (a disk that has
// fallen far behind), a datagram's text is not queued and, when the writer
// catches up, one line says how many datagrams went unlogged, so a gap in the
// log is never silent.

// maxQueuedLogText bounds the formatted text one data log keeps waiting for
// its writer.
const maxQueuedLogText = 4 << 20

// dataLogQueue is the pending text of one data log and the state of its
// writer goroutine. Its zero value is an empty queue with no writer.
type dataLogQueue struct {
	mu       sync.Mutex
	pending  []byte
	spare    []byte     // the buffer the writer last emptied, reused
	writing  bool       // a writer goroutine is running
	unlogged int        // datagrams not queued since the last written text
	idle     *sync.Cond // signalled when the writer stops; made on first use
}

// enqueue adds one formatted chunk to d's queue and starts the writer if
// none is running. It never waits for the file.
func (d *dataLog) enqueue(text []byte) {
	q := &d.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending)+len(text) > maxQueuedLogText {
		q.unlogged++
		return
	}
	if q.unlogged > 0 {
		q.pending = appendUnloggedLine(q.pending, time.Now(), q.unlogged)
		q.unlogged = 0
	}
	q.pending = append(q.pending, text...)
	if !q.writing {
		q.writing = true
		go d.writeQueued()
	}
}

// appendUnloggedLine appends the line that marks a gap in a data log.
func appendUnloggedLine(dst []byte, t time.Time, n int) []byte {
	dst = t.AppendFormat(dst, "15:04:05")
	dst = append(dst, " "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, " datagrams not logged: the data log's disk fell behind"...)
	dst = append(dst, newline...)
	return append(dst, newline...)
}

// writeQueued is the writer goroutine: it writes what is queued, in
// order, until the queue is empty, then ends.
func (d *dataLog) writeQueued() {
	q := &d.queue
	for {
		q.mu.Lock()
		if len(q.pending) == 0 && q.unlogged > 0 {
			q.pending = appendUnloggedLine(q.pending, time.Now(), q.unlogged)
			q.unlogged = 0
		}
		if len(q.pending) == 0 {
			q.writing = false
			if q.idle != nil {
				q.idle.Broadcast()
			}
			q.mu.Unlock()
			return
		}
		text := q.pending
		q.pending, q.spare = q.spare[:0], nil
		q.mu.Unlock()

		d.write(text)

		q.mu.Lock()
		if cap(text) <= maxQueuedLogText { // keep one buffer of a sane size
			q.spare = text[:0]
		}
		q.mu.Unlock()
	}
}

// drainQueue waits until the writer has written everything queued.
func (d *dataLog) drainQueue() {
	q := &d.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.writing {
		if q.idle == nil {
			q.idle = sync.NewCond(&q.mu)
		}
		q.idle.Wait()
	}
}
