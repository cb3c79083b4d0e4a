package main

import (
	"fmt"
	"io"
	"sync"
)

// lineQueue writes lines to a writer from its own goroutine, so that a slow
// console or disk never slows the relay down. Print never blocks: when the
// queue is full, lines are dropped and counted, and the count is written
// once there is room again.
type lineQueue struct {
	lines chan string
	done  chan struct{}
	eol   string

	mu      sync.Mutex
	dropped int
	closed  bool
}

// lineQueueSize is how many lines may wait for a slow writer.
const lineQueueSize = 8192

// newLineQueue starts writing queued lines to w, each ended by eol.
func newLineQueue(w io.Writer, eol string) *lineQueue {
	q := &lineQueue{lines: make(chan string, lineQueueSize), done: make(chan struct{}), eol: eol}
	go q.writeLines(w)
	return q
}

// Print queues one line (without its newline).
func (q *lineQueue) Print(line string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.dropped > 0 {
		select {
		case q.lines <- fmt.Sprintf("(%d lines dropped: output too slow)", q.dropped):
			q.dropped = 0
		default:
			q.dropped++
			return
		}
	}
	select {
	case q.lines <- line:
	default:
		q.dropped++
	}
}

// Close writes what is queued and stops the writer.
func (q *lineQueue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		if q.dropped > 0 {
			// Close may wait: the queue drains, so this send finishes.
			q.lines <- fmt.Sprintf("(%d lines dropped: output too slow)", q.dropped)
		}
		close(q.lines)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *lineQueue) writeLines(w io.Writer) {
	defer close(q.done)
	for line := range q.lines {
		io.WriteString(w, line+q.eol)
	}
}
