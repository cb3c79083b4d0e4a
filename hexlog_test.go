package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loggedPacket is one packet read back from a data log.
type loggedPacket struct {
	time, from, to string
	data           []byte
}

var packetHeader = regexp.MustCompile(`^(\d\d:\d\d:\d\d) Packet from (\S+) to (\S+)$`)

// parseDataLog reads a data log back into its packets, checking the layout
// of every line: the hex column, then one space, then the ASCII column, which
// must agree with the hex.
func parseDataLog(r io.Reader) ([]loggedPacket, error) {
	var packets []loggedPacket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			continue
		}
		if m := packetHeader.FindStringSubmatch(line); m != nil {
			packets = append(packets, loggedPacket{time: m[1], from: m[2], to: m[3]})
			continue
		}
		if len(packets) == 0 {
			return nil, fmt.Errorf("line %d: data before any header: %q", lineNo, line)
		}
		const hexWidth = 3 * hexBytesPerLine
		if len(line) < hexWidth+2 || line[hexWidth] != ' ' {
			return nil, fmt.Errorf("line %d: bad data line %q", lineNo, line)
		}
		var data []byte
		for i := 0; i < hexWidth; i += 3 {
			field := line[i : i+3]
			if field == "   " {
				break
			}
			b, err := strconv.ParseUint(field[1:], 16, 8)
			if field[0] != ' ' || err != nil || strings.ToUpper(field) != field {
				return nil, fmt.Errorf("line %d: bad hex field %q", lineNo, field)
			}
			data = append(data, byte(b))
		}
		ascii := line[hexWidth+1:]
		if len(ascii) != len(data) {
			return nil, fmt.Errorf("line %d: ASCII column %q has %d characters for %d bytes", lineNo, ascii, len(ascii), len(data))
		}
		for i, b := range data {
			want := byte('.')
			if b >= 0x20 && b <= 0x7E {
				want = b
			}
			if ascii[i] != want {
				return nil, fmt.Errorf("line %d: ASCII column %q does not match the hex", lineNo, ascii)
			}
		}
		p := &packets[len(packets)-1]
		p.data = append(p.data, data...)
	}
	return packets, sc.Err()
}

// TestAppendPacketManualSample formats the start of the manual's sample.
func TestAppendPacketManualSample(t *testing.T) {
	when := time.Date(2000, 8, 20, 12, 58, 56, 0, time.Local)
	data := []byte("GET / HTTP/1.1\r\nAccept: image/gi\r\n\r\n")
	got := string(appendPacket(nil, when, "192.168.1.13:54789", "216.32.74.53:80", data))
	want := strings.Join([]string{
		"12:58:56 Packet from 192.168.1.13:54789 to 216.32.74.53:80",
		" 47 45 54 20 2F 20 48 54 54 50 2F 31 2E 31 0D 0A GET / HTTP/1.1..",
		" 41 63 63 65 70 74 3A 20 69 6D 61 67 65 2F 67 69 Accept: image/gi",
		" 0D 0A 0D 0A                                     ....",
		"",
		"",
	}, newline)
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// TestAppendPacketAllBytes formats every byte value and parses it back.
func TestAppendPacketAllBytes(t *testing.T) {
	data := make([]byte, 256*3+5)
	for i := range data {
		data[i] = byte(i)
	}
	text := appendPacket(nil, time.Now(), "a:1", "b:2", data)
	packets, err := parseDataLog(strings.NewReader(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	if len(packets) != 1 || string(packets[0].data) != string(data) {
		t.Fatalf("parsed %d packets; want 1 with the same %d bytes", len(packets), len(data))
	}
}

// TestDataLogNamesNeverRunOut creates more logs in one minute than the
// manual's two random digits allow: all get their own file, the first 100
// with the manual's name, the rest with a longer one.
func TestDataLogNamesNeverRunOut(t *testing.T) {
	dir := tempDir(t)
	var names dataLogNamer
	when := time.Date(2026, 11, 24, 22, 15, 30, 0, time.Local)
	seen := map[string]bool{}
	for i := 0; i < 150; i++ {
		d, err := names.create(dir, when)
		if err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
		d.Close()
		base := filepath.Base(d.name)
		if seen[base] {
			t.Fatalf("name %s given twice", base)
		}
		seen[base] = true
		wantLen := len("RL2611242215nn.LOG")
		if i >= 100 {
			wantLen++
		}
		if !strings.HasPrefix(base, "RL2611242215") || len(base) != wantLen {
			t.Fatalf("log %d named %s; want RL2611242215 + %d digits + .LOG", i, base, wantLen-len("RL2611242215.LOG"))
		}
	}
	// Another process's files count too: a fresh namer must not overwrite.
	var other dataLogNamer
	d, err := other.create(dir, when)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if seen[filepath.Base(d.name)] {
		t.Fatalf("fresh namer reused %s", d.name)
	}
}

// TestDataLogWriteErrorStopsLogging: after the log file fails, logging stops
// with one error and relaying is not affected (packet does not panic).
func TestDataLogWriteErrorStopsLogging(t *testing.T) {
	var names dataLogNamer
	d, err := names.create(tempDir(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	d.onError = func(err error) { errs = append(errs, err) }
	d.f.Close() // every write fails from now on
	dir := d.direction("a:1", "b:2")
	dir.packet([]byte("one"))
	dir.packet([]byte("two"))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), d.name) {
		t.Fatalf("errors %v; want one naming %s", errs, d.name)
	}
}

// TestDataLogCreateError: an unwritable directory gives a clear error.
func TestDataLogCreateError(t *testing.T) {
	var names dataLogNamer
	missing := filepath.Join(tempDir(t), "no", "such", "dir")
	_, err := names.create(missing, time.Now())
	if err == nil || !os.IsNotExist(err) && !strings.Contains(err.Error(), "create data log") {
		t.Fatalf("got %v; want a create data log error", err)
	}
}

// BenchmarkAppendPacket formats 64 KiB chunks, the relay's logged read size.
func BenchmarkAppendPacket(b *testing.B) {
	data := randomBytes(9, 64<<10)
	var buf []byte
	when := time.Now()
	b.SetBytes(int64(len(data)))
	for range b.N {
		buf = appendPacket(buf[:0], when, "192.168.1.13:54789", "216.32.74.53:80", data)
	}
}

// appendPacket appends one TCP chunk's data-log text to dst, as the relay
// logs it.
func appendPacket(dst []byte, t time.Time, from, to string, p []byte) []byte {
	return appendChunk(dst, t, "Packet", from, to, p)
}
