package sfu

import (
	"net/netip"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/stun/v4"
)

// TestIsRTCP: the media port tells RTCP from the RTP, DTLS and STUN beside it by its first
// two bytes (RFC 7983 §7, RFC 5761 §4).
func TestIsRTCP(t *testing.T) {
	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}).Marshal()
	rr, _ := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"PLI", pli, true},
		{"receiver report", rr, true},
		{"RTP, VP8 (96)", []byte{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"RTP, marker, VP8", []byte{0x80, 0x80 | 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"RTP, Opus (111)", []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"DTLS handshake", []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"STUN binding request", []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, false},
		{"too short", pli[:4], false},
	} {
		if got := isRTCP(tc.b); got != tc.want {
			t.Errorf("%s: isRTCP %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTakes: the SFU's SRTCP read path takes a compound packet of what a subscriber sends
// about what it receives, and leaves one with anything else, such as a sender report, to
// Pion whole.
func TestTakes(t *testing.T) {
	rr := &rtcp.ReceiverReport{SSRC: 1}
	sdes := &rtcp.SourceDescription{}
	if !takes([]rtcp.Packet{rr, sdes, &rtcp.PictureLossIndication{}}) {
		t.Error("receiver report, SDES and PLI: not taken")
	}
	if !takes([]rtcp.Packet{&rtcp.TransportLayerCC{}}) || !takes([]rtcp.Packet{&rtcp.TransportLayerNack{}}) || !takes([]rtcp.Packet{&rtcp.FullIntraRequest{}}) {
		t.Error("transport-wide feedback, NACK or FIR alone: not taken")
	}
	if takes([]rtcp.Packet{&rtcp.SenderReport{SSRC: 1}, sdes, &rtcp.TransportLayerNack{}}) {
		t.Error("a compound packet with a sender report: taken")
	}
	if takes([]rtcp.Packet{rr, &rtcp.ExtendedReport{}}) {
		t.Error("a compound packet with an extended report: taken")
	}
}

// TestSTUNFrom: the media port hands a peer connection's SRTP path the RTCP from each
// address its STUN requests to its ufrag come from, besides its selected ICE pair's, up to
// maxRTCPAddrs of them, and none once the path is off.
func TestSTUNFrom(t *testing.T) {
	m := &mediaMux{}
	o, other := &srtpOut{}, &srtpOut{}
	local := netip.MustParseAddr("127.0.0.1")
	pair := func(port uint16) icePair {
		return icePair{local, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), port)}
	}
	request := func(username string) []byte {
		msg, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(username), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		return msg.Raw
	}
	m.setRTCP(o, pair(1), "sfuA")
	m.setRTCP(other, pair(2), "sfuB")
	m.stunFrom(pair(10), request("sfuA:peer"))
	m.stunFrom(pair(11), request("sfuB:peer"))
	m.stunFrom(pair(12), request("nobody:peer"))
	for _, tc := range []struct {
		port uint16
		want *srtpOut
	}{{1, o}, {2, other}, {10, o}, {11, other}, {12, nil}} {
		if got := m.rtcpFor(pair(tc.port)); got != tc.want {
			t.Errorf("port %d: RTCP to %p, want %p", tc.port, got, tc.want)
		}
	}
	for port := uint16(20); port < 40; port++ {
		m.stunFrom(pair(port), request("sfuA:peer"))
	}
	n := 0
	for _, p := range *m.rtcp.Load() {
		if p == o {
			n++
		}
	}
	if n != maxRTCPAddrs {
		t.Errorf("%d addresses for one connection, want at most %d", n, maxRTCPAddrs)
	}
	m.setRTCP(o, icePair{}, "")
	m.stunFrom(pair(10), request("sfuA:peer"))
	for _, p := range *m.rtcp.Load() {
		if p == o {
			t.Fatal("an address still goes to a connection whose path is off")
		}
	}
	if m.rtcpFor(pair(11)) != other {
		t.Error("the other connection lost its address")
	}
}
