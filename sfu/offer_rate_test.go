package sfu_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/rtcapi"
	"github.com/parley-rtc/parley/sfu"
)

// TestOfferRate: a member that sends the SFU offers as fast as it can has no more answered
// than the burst and the rate allow, is told rate_limited for the others, and is answered
// again once it slows down.
func TestOfferRate(t *testing.T) {
	inbox := make(chan protocol.Message, 1024)
	s, err := sfu.New(sfu.Config{LoopbackOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Send: func(to string, m protocol.Message) {
			if to == "A" {
				select {
				case inbox <- m:
				default:
					t.Error("inbox full")
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	offer := receiveOffer(t)
	s.Handle(protocol.PeerJoined{SessionID: session, PeerID: "A"})

	// The same offer 60 times at once: the first is the member's first offer, the others
	// re-offers of the same description, each of which the SFU would answer.
	const n = 60
	start := time.Now()
	for range n {
		s.Handle(protocol.Offer{SessionID: session, From: "A", To: protocol.ServerPeer, SDP: offer})
	}
	answers, limited := 0, 0
	count := func(timeout time.Duration) {
		for deadline := time.After(timeout); ; {
			select {
			case m := <-inbox:
				switch m := m.(type) {
				case protocol.Answer:
					answers++
				case protocol.Error:
					if m.Code == protocol.CodeRateLimited && m.Ref == protocol.TypeOffer {
						limited++
					} else {
						t.Errorf("error from the SFU: %+v", m)
					}
				}
			case <-deadline:
				return
			}
		}
	}
	count(2 * time.Second)
	elapsed := time.Since(start)
	// 10 at once, then 2 per second.
	if allowed := 10 + int(2*elapsed.Seconds()) + 1; answers > allowed || answers < 10 {
		t.Errorf("%d of %d offers answered in %v, want 10 to %d", answers, n, elapsed, allowed)
	}
	if answers+limited != n {
		t.Errorf("%d answers and %d rate_limited errors for %d offers", answers, limited, n)
	}
	var st sfu.ParticipantStats
	for _, p := range s.Stats().Participants {
		st = p
	}
	if st.OffersRateLimited != limited {
		t.Errorf("stats: %d offers rate-limited, the member was told of %d", st.OffersRateLimited, limited)
	}

	// A second later there is room for two more.
	time.Sleep(time.Second)
	before := answers
	s.Handle(protocol.Offer{SessionID: session, From: "A", To: protocol.ServerPeer, SDP: offer})
	count(2 * time.Second)
	if answers != before+1 {
		t.Errorf("an offer after a pause: %d answers, want 1", answers-before)
	}
	t.Logf("%d offers at once: %d answered, %d rate-limited in %v", n, before, limited, elapsed.Round(time.Millisecond))
}

// receiveOffer is the offer of a peer connection that only receives audio, which the test
// closes when it ends: an offer the SFU can answer, from no client of the test harness.
func receiveOffer(t *testing.T) string {
	t.Helper()
	api, err := rtcapi.New(rtcapi.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}
