package sfu_test

import (
	"testing"
	"time"

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
