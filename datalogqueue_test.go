package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// queuedDataLog returns a data log whose file is the write end of a pipe
// that nobody reads yet, as a disk that has stopped, and a function that
// starts reading it and returns everything written once the log is closed.
func queuedDataLog(t *testing.T) (*dataLog, func() []byte) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d := &dataLog{name: "pipe", f: w}
	read := func() []byte {
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(r)
			got <- b
		}()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case b := <-got:
			return b
		case <-time.After(10 * time.Second):
			t.Fatal("the data log's text did not all arrive after Close")
			return nil
		}
	}
	return d, read
}

// logDatagrams logs n datagrams of size bytes through dd and fails the
// test if that waits for the file (the pipe is not read meanwhile).
func logDatagrams(t *testing.T, dd *dataLogDirection, n, size int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := bytes.Repeat([]byte{'x'}, size)
		for range n {
			dd.packet(p)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("logging %d datagrams waited for a file nobody reads: the UDP reader would stop behind its log", n)
	}
}

// TestUDPDataLogNeverBlocksTheReader: a UDP session's data log is written
// behind the relay, so a stalled log file does not stop the route's reader,
// and once the file takes writes again every datagram's text is there, in
// order.
func TestUDPDataLogNeverBlocksTheReader(t *testing.T) {
	d, read := queuedDataLog(t)
	up := d.datagrams("127.0.0.1:5000", "127.0.0.1:53")
	const n = 1000 // about 0.5 MB of text: far more than a pipe holds
	logDatagrams(t, up, n, 100)
	text := read()
	if got := bytes.Count(text, []byte("Datagram from 127.0.0.1:5000 to 127.0.0.1:53")); got != n {
		t.Fatalf("%d datagrams in the log, want %d", got, n)
	}
	if bytes.Contains(text, []byte("not logged")) {
		t.Fatalf("a gap was reported though the queue had room")
	}
}

// TestUDPDataLogGapIsCounted: past the queue's bound the datagrams' text is
// not kept, and one line says how many went unlogged; logged and unlogged
// add up to every datagram.
func TestUDPDataLogGapIsCounted(t *testing.T) {
	d, read := queuedDataLog(t)
	up := d.datagrams("127.0.0.1:5000", "127.0.0.1:53")
	const n = 20000 // about 10 MB of text, over maxQueuedLogText
	logDatagrams(t, up, n, 100)
	text := read()
	logged := bytes.Count(text, []byte("Datagram from"))
	unlogged := 0
	marks := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d (\d+) datagrams not logged: the data log's disk fell behind`).FindAllSubmatch(text, -1)
	for _, m := range marks {
		k, _ := strconv.Atoi(string(m[1]))
		unlogged += k
	}
	if len(marks) == 0 {
		t.Fatalf("no gap line though %d datagrams were logged of %d", logged, n)
	}
	if logged+unlogged != n {
		t.Fatalf("logged %d + unlogged %d = %d, want %d", logged, unlogged, logged+unlogged, n)
	}
}
