package sfu

import "testing"

func TestVP8KeyFrameStart(t *testing.T) {
	// A key frame's payload header: P=0, then the start code of RFC 6386 §9.1.
	key := []byte{0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a}
	delta := []byte{0x51, 0x2a, 0x00}
	for _, c := range []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"empty", nil, false},
		{"no descriptor extension, key frame", append([]byte{0x10}, key...), true},
		{"no descriptor extension, delta frame", append([]byte{0x10}, delta...), false},
		{"not the start of a frame (S=0)", append([]byte{0x00}, key...), false},
		{"a later partition (PID=1)", append([]byte{0x11}, key...), false},
		{"7-bit PictureID", append([]byte{0x90, 0x80, 0x05}, key...), true},
		{"15-bit PictureID", append([]byte{0x90, 0x80, 0x81, 0x05}, key...), true},
		{"15-bit PictureID, delta frame", append([]byte{0x90, 0x80, 0x81, 0x05}, delta...), false},
		{"PictureID, TL0PICIDX, TID", append([]byte{0x90, 0xe0, 0x81, 0x05, 0x07, 0x40}, key...), true},
		{"KEYIDX only", append([]byte{0x90, 0x10, 0x03}, key...), true},
		{"TL0PICIDX only, delta", append([]byte{0x90, 0x40, 0x07}, delta...), false},
		{"descriptor cut short", []byte{0x90, 0x80}, false},
		{"15-bit PictureID cut short", []byte{0x90, 0x80, 0x81}, false},
		{"no payload after the descriptor", []byte{0x90, 0xe0, 0x81, 0x05, 0x07, 0x40}, false},
	} {
		if got := vp8KeyFrameStart(c.payload); got != c.want {
			t.Errorf("%s: vp8KeyFrameStart(% x) = %v, want %v", c.name, c.payload, got, c.want)
		}
	}
}
