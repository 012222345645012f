package peer

import (
	"testing"

	"github.com/pion/rtp"
)

func vp8Packet(seq uint16, ts uint32, start, marker bool) *rtp.Packet {
	desc := byte(0x00)
	if start {
		desc = 0x10 // S=1, PID=0
	}
	return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: []byte{desc, 0x00, 0x01}}
}

func TestFirstFrame(t *testing.T) {
	cases := []struct {
		name    string
		packets []*rtp.Packet
		want    []bool // after each packet
	}{
		{"in order", []*rtp.Packet{vp8Packet(10, 90, true, false), vp8Packet(11, 90, false, false), vp8Packet(12, 90, false, true)},
			[]bool{false, false, true}},
		{"one packet", []*rtp.Packet{vp8Packet(65535, 90, true, true)}, []bool{true}},
		{"reordered across the wrap", []*rtp.Packet{vp8Packet(65535, 90, true, false), vp8Packet(1, 90, false, true), vp8Packet(0, 90, false, false)},
			[]bool{false, false, true}},
		{"middle lost", []*rtp.Packet{vp8Packet(10, 90, true, false), vp8Packet(12, 90, false, true), vp8Packet(13, 180, true, true)},
			[]bool{false, false, true}},
		{"joined mid-frame", []*rtp.Packet{vp8Packet(11, 90, false, false), vp8Packet(12, 90, false, true), vp8Packet(13, 180, true, false), vp8Packet(14, 180, false, true)},
			[]bool{false, false, false, true}},
	}
	for _, tc := range cases {
		var f firstFrame
		for i, p := range tc.packets {
			if got := f.add(p); got != tc.want[i] {
				t.Errorf("%s: after packet %d got %v, want %v", tc.name, i, got, tc.want[i])
			}
		}
	}
}

func TestSeqCheck(t *testing.T) {
	for _, c := range []struct {
		name   string
		seqs   []uint16
		ts     []uint32
		jump   int
		tsBack int64
	}{
		{"continuous across the wrap", []uint16{65534, 65535, 0, 1}, []uint32{1, 1, 2, 3}, 1, 0},
		{"a lost packet, a late one", []uint16{10, 11, 13, 12, 14}, []uint32{1, 1, 2, 2, 3}, 2, 0},
		{"a jump forward", []uint16{10, 11, 5000, 5001}, []uint32{1, 2, 3, 4}, 4989, 0},
		{"a jump backward", []uint16{5000, 5001, 10, 11}, []uint32{1, 2, 3, 4}, 4991, 0},
		{"timestamp back", []uint16{1, 2, 3}, []uint32{9000, 6000, 9000}, 1, 1},
	} {
		var s seqCheck
		for i := range c.seqs {
			s.add(c.seqs[i], c.ts[i])
		}
		if s.maxJump != c.jump || s.tsBack != c.tsBack || s.packets != int64(len(c.seqs)) {
			t.Errorf("%s: max jump %d, timestamps back %d, packets %d; want %d, %d, %d",
				c.name, s.maxJump, s.tsBack, s.packets, c.jump, c.tsBack, len(c.seqs))
		}
	}
}
