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
			forwarded := after.ForwardedDirect - before.ForwardedDirect
			t.Logf("A and B received %d and %d packets; %d went through the SFU's SRTP write path, %d of them past Pion's track", got[0], got[1], direct, forwarded)
			for _, p := range after.Participants {
				if p.SRTPDirect == pion {
					t.Errorf("participant %s: SRTPDirect %v with PionSRTP %v", p.ID, p.SRTPDirect, pion)
				}
			}
			if pion {
				if after.SRTPDirect != 0 || after.ForwardedDirect != 0 {
					t.Errorf("%d packets through the SFU's SRTP write path with PionSRTP, %d past Pion's track", after.SRTPDirect, after.ForwardedDirect)
				}
				return
			}
			// Forwarded packets go past Pion's track: all those received in between, and
			// no more than went the SFU's way.
			if forwarded < uint64(got[0]+got[1]) || forwarded > direct {
				t.Errorf("%d packets forwarded past Pion's track, want from %d (received) to %d (sent the SFU's way)", forwarded, got[0]+got[1], direct)
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

// TestSenderReports: the SFU sends a sender report (RFC 3550 §6.4.1) about each track it
// forwards to a subscriber, whichever way the packets go: it counts the packets and
// payload octets the subscriber got, and maps the subscriber's RTP timestamps to the wall
// clock, which receivers need to play audio and video in sync.
func TestSenderReports(t *testing.T) {
	for _, pion := range []bool{false, true} {
		name := "direct"
		if pion {
			name = "PionSRTP"
		}
		t.Run(name, func(t *testing.T) {
			_, _, b := twoCameras(t, sfu.Config{PionSRTP: pion})
			receiving(t, "A", 10, b)
			rt := b.track("A")
			first := rt.report.Load()
			var r *seenReport
			waitFor(t, 10*time.Second, "a sender report of A's camera to B", func() (bool, string) {
				r = rt.report.Load()
				return r != nil && r != first && r.sr.PacketCount > 0, fmt.Sprintf("%+v", r)
			})
			t.Logf("report: %d packets, %d octets, RTP time %d; B had read %d packets, %d octets, timestamp %d", r.sr.PacketCount, r.sr.OctetCount, r.sr.RTPTime, r.packets, r.octets, r.lastTS)
			// Packets under way when the report went (at 30 frames/s on loopback, a frame's
			// worth at most) make the counts differ a little.
			if d := int64(r.sr.PacketCount) - r.packets; d < -10 || d > 10 {
				t.Errorf("report counts %d packets, B read %d", r.sr.PacketCount, r.packets)
			}
			if d := int64(r.sr.OctetCount) - r.octets; d < -20_000 || d > 20_000 {
				t.Errorf("report counts %d octets, B read %d", r.sr.OctetCount, r.octets)
			}
			// Its RTP time is that of about when it went: past the last frame B read, by
			// less than 200 ms on the 90 kHz clock; or before it by a frame, one that was
			// under way when the report was made and overtook it (Pion's reports are made
			// by one goroutine and its packets counted by another; seen once, in PionSRTP).
			if d := int32(r.sr.RTPTime - r.lastTS); d < -3_900 || d > 18_000 {
				t.Errorf("report's RTP time %d, %d from the last timestamp B read (%d)", r.sr.RTPTime, d, r.lastTS)
			}
			at := time.Unix(int64(r.sr.NTPTime>>32)-2_208_988_800, int64((r.sr.NTPTime&0xffffffff)*1e9>>32))
			if d := r.at.Sub(at); d < -time.Second || d > time.Second {
				t.Errorf("report's NTP time %v, %v before it was read", at, d)
			}
		})
	}
}
