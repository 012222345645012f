package sfu_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/parley-rtc/parley/sfu"
)

// TestSRTPDirect: what the SFU sends a participant goes through its own SRTP write path
// once the participant's peer connection is connected, and the participant decrypts it:
// the keys the SFU derived from the DTLS handshake are the ones Pion on the other side
// has. With Config.PionSRTP, nothing goes that way and media still flows.
func TestSRTPDirect(t *testing.T) {
	for _, pion := range []bool{false, true} {
		name := "direct"
		if pion {
			name = "PionSRTP"
		}
		t.Run(name, func(t *testing.T) {
			s, a, b := twoCameras(t, sfu.Config{PionSRTP: pion})
			receiving(t, "A", 10, b)
			receiving(t, "B", 10, a)
			// Packets sent before the first count may still be on their way: wait them out
			// (loopback takes well under a millisecond), so that each packet received in the
			// window was sent in it.
			before := s.Stats()
			time.Sleep(200 * time.Millisecond)
			const more = 60
			start := [2]int64{b.track("A").packets.Load(), a.track("B").packets.Load()}
			receiving(t, "A", more, b)
			receiving(t, "B", more, a)
			after := s.Stats()
			got := [2]int64{b.track("A").packets.Load() - start[0], a.track("B").packets.Load() - start[1]}
			direct := after.SRTPDirect - before.SRTPDirect
			t.Logf("A and B received %d and %d packets; %d went through the SFU's SRTP write path", got[0], got[1], direct)
			for _, p := range after.Participants {
				if p.SRTPDirect == pion {
					t.Errorf("participant %s: SRTPDirect %v with PionSRTP %v", p.ID, p.SRTPDirect, pion)
				}
			}
			if pion {
				if after.SRTPDirect != 0 {
					t.Errorf("%d packets through the SFU's SRTP write path with PionSRTP", after.SRTPDirect)
				}
				return
			}
			// Every RTP packet to a connected participant goes that way: at least all those
			// they received in between.
			if direct < uint64(got[0]+got[1]) {
				t.Errorf("%d packets through the SFU's SRTP write path while A and B received %d", direct, got[0]+got[1])
			}
		})
	}
}

// TestRTCPDirect: once a participant's peer connection is connected, the SFU takes the RTCP
// it sends off the media port itself (rtcpin.go) and acts on it as Pion's path does: its
// PLI reaches the publisher as a key frame request, its NACK is answered with a
// retransmission, and its transport-wide feedback moves its bandwidth estimate. With
// Config.PionSRTP the same happens through Pion, and nothing is taken.
func TestRTCPDirect(t *testing.T) {
	for _, pion := range []bool{false, true} {
		name := "direct"
		if pion {
			name = "PionSRTP"
		}
		t.Run(name, func(t *testing.T) {
			s, a, b := twoCameras(t, sfu.Config{PionSRTP: pion, KeyFrameInterval: 50 * time.Millisecond})
			receiving(t, "A", 10, b)
			fromA := b.track("A")
			estimate := func() int {
				for _, p := range s.Stats().Participants {
					if p.ID == "B" {
						return p.EstimateKbps
					}
				}
				return -1
			}
			first := estimate()
			before := s.Stats()

			// B asks for a key frame of A's camera: the SFU asks A.
			time.Sleep(100 * time.Millisecond) // past the key frame interval of the SFU's own requests
			plis := a.plis.Load()
			if err := b.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: fromA.ssrc}}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "A asked for a key frame", func() (bool, string) {
				return a.plis.Load() > plis, fmt.Sprintf("%d PLIs", a.plis.Load()-plis)
			})

			// B NACKs a packet it had: the SFU sends it again.
			seq := uint16(fromA.lastSeq.Load()) - 3
			nack := &rtcp.TransportLayerNack{MediaSSRC: fromA.ssrc, Nacks: []rtcp.NackPair{{PacketID: seq}}}
			if err := b.pc.WriteRTCP([]rtcp.Packet{nack}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the NACKed packet resent", func() (bool, string) {
				st := s.Stats()
				return st.Retransmissions > before.Retransmissions && st.NACKsReceived > before.NACKsReceived,
					fmt.Sprintf("%d NACKs received, %d packets resent", st.NACKsReceived-before.NACKsReceived, st.Retransmissions-before.Retransmissions)
			})

			// B's transport-wide feedback reaches its bandwidth estimator.
			waitFor(t, 20*time.Second, "B's bandwidth estimate moved", func() (bool, string) {
				e := estimate()
				return e != first, fmt.Sprintf("%d kbit/s, as at the start", e)
			})

			taken := s.Stats().RTCPDirect - before.RTCPDirect
			t.Logf("%d RTCP packets taken by the SFU's SRTCP read path", taken)
			if pion && s.Stats().RTCPDirect != 0 {
				t.Errorf("%d RTCP packets taken by the SFU's SRTCP read path with PionSRTP", s.Stats().RTCPDirect)
			}
			if !pion && taken < 3 { // the PLI, the NACK, and feedback every 100 ms
				t.Errorf("%d RTCP packets taken by the SFU's SRTCP read path, want at least 3", taken)
			}
		})
	}
}
