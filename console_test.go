package main

import "testing"

func TestIsEscapeKey(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"\x1b", true},
		{"abc\x1b", true},
		{"\x1b\x1b", true},
		{"\x1b[A", false}, // up arrow
		{"\x1bOP", false}, // F1
		{"q", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isEscapeKey([]byte(tt.in)); got != tt.want {
			t.Errorf("isEscapeKey(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}
