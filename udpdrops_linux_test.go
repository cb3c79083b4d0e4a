package main

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestDropCountOf: the drop count is found among a datagram's control
// messages, after another one, and a truncated or malformed buffer yields
// none.
func TestDropCountOf(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.SizeofCmsghdr:], data)
		return b
	}
	count := binary.NativeEndian.AppendUint32(nil, 44)
	ovfl := cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, count)
	other := cmsg(unix.SOL_IP, unix.IP_TTL, []byte{64, 0, 0, 0})
	for _, tt := range []struct {
		name string
		ctrl []byte
		want uint32
		ok   bool
	}{
		{"alone", ovfl, 44, true},
		{"after another", append(append([]byte(nil), other...), ovfl...), 44, true},
		{"another alone", other, 0, false},
		{"truncated", ovfl[:unix.SizeofCmsghdr+2], 0, false},
		{"empty", nil, 0, false},
		{"length past the end", cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, make([]byte, 64))[:unix.SizeofCmsghdr+8], 0, false},
	} {
		if v, ok := dropCountOf(tt.ctrl); v != tt.want || ok != tt.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tt.name, v, ok, tt.want, tt.ok)
		}
	}
}
