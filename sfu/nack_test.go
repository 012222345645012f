package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
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

// TestNACKCounter writes what the NACK responder and generator would through the counting
// interceptor, and checks its counts.
func TestNACKCounter(t *testing.T) {
	var counts nackCounts
	i, err := nackCounter{&counts}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	nop := interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return len(p), nil })
	write := func(w interceptor.RTPWriter, ssrc uint32, seqs ...uint16) {
		for _, s := range seqs {
			if _, err := w.Write(&rtp.Header{SSRC: ssrc, SequenceNumber: s}, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Without RTX, a retransmission repeats a sequence number on the track's SSRC.
	plain := i.BindLocalStream(&interceptor.StreamInfo{SSRC: 1}, nop)
	write(plain, 1, 65534, 65535, 0, 1, 2, 65535, 1, 3, 2+1024)
	if got := counts.retransmitted.Load(); got != 2 {
		t.Errorf("without RTX: %d retransmissions, want 2", got)
	}
	// With RTX (RFC 4588), it is a packet on the retransmission SSRC.
	counts.retransmitted.Store(0)
	rtx := i.BindLocalStream(&interceptor.StreamInfo{SSRC: 2, SSRCRetransmission: 3}, nop)
	write(rtx, 2, 10, 11, 12)
	write(rtx, 3, 100, 101)
	if got := counts.retransmitted.Load(); got != 2 {
		t.Errorf("with RTX: %d retransmissions, want 2", got)
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
