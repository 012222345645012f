package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

func TestNACKedPackets(t *testing.T) {
	for _, c := range []struct {
		pairs []rtcp.NackPair
		want  uint64
	}{
		{nil, 0},
		{[]rtcp.NackPair{{PacketID: 7}}, 1},
		{[]rtcp.NackPair{{PacketID: 7, LostPackets: 0b101}}, 3},
		{[]rtcp.NackPair{{PacketID: 7, LostPackets: 0xffff}, {PacketID: 30}}, 18},
	} {
		n := &rtcp.TransportLayerNack{Nacks: c.pairs}
		if got := nackedPackets(n); got != c.want {
			t.Errorf("nackedPackets(%v) = %d, want %d", c.pairs, got, c.want)
		}
		var listed uint64
		for _, p := range c.pairs {
			listed += uint64(len(p.PacketList()))
		}
		if listed != c.want {
			t.Errorf("%v lists %d packets, want %d", c.pairs, listed, c.want)
		}
	}
}

// TestNACKCounter writes what the NACK generator would through the counting interceptor,
// and checks its counts.
func TestNACKCounter(t *testing.T) {
	var counts nackCounts
	i, err := nackCounter{&counts}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	w := i.BindRTCPWriter(interceptor.RTCPWriterFunc(func(p []rtcp.Packet, _ interceptor.Attributes) (int, error) { return 0, nil }))
	if _, err := w.Write([]rtcp.Packet{
		&rtcp.ReceiverReport{},
		&rtcp.TransportLayerNack{MediaSSRC: 9, Nacks: []rtcp.NackPair{{PacketID: 5, LostPackets: 0b11}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if s, p := counts.sent.Load(), counts.sentPackets.Load(); s != 1 || p != 3 {
		t.Errorf("sent %d NACKs naming %d packets, want 1 and 3", s, p)
	}
}
