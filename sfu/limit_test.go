package sfu_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/sfu"
)

// rtpTrack publishes a VP8 track whose packets the test writes itself, in stream streamID.
func (c *client) rtpTrack(trackID, streamID string) (*webrtc.TrackLocalStaticRTP, *webrtc.RTPSender) {
	c.t.Helper()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		trackID, streamID)
	if err != nil {
		c.t.Fatal(err)
	}
	return track, c.addTrack(track)
}

// mediaDirection returns the direction attribute of the media section mid of sdpText.
func mediaDirection(sdpText, mid string) string {
	for _, sec := range strings.Split(sdpText, "\r\nm=")[1:] {
		if !strings.Contains(sec+"\r\n", "\r\na=mid:"+mid+"\r\n") {
			continue
		}
		for _, d := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
			if strings.Contains(sec+"\r\n", "\r\na="+d+"\r\n") {
				return d
			}
		}
		return "sendrecv"
	}
	return ""
}

// TestPublishLimits: a member that floods a track gets no more of it forwarded than the
// track's rate limit, while its other track goes on; and a member offering more tracks
// than MaxTracks has the extra media sections declined, told with too_many_tracks, and
// nothing of them forwarded, even once there is room again.
func TestPublishLimits(t *testing.T) {
	const pps = 300 // the test's MaxTrackPacketRate; the sample camera sends about 90
	camera := loadVideo(t, "chrome-vp8.ivf")
	s, a, b := twoCameras(t, sfu.Config{MaxTracks: 2, MaxTrackPacketRate: pps})
	receiving(t, "A", 30, b)

	// A second track, at a gentle rate until B receives it.
	flood, floodSender := a.rtpTrack("flood", "flood-A")
	payload := make([]byte, 1000)
	payload[0] = 0x10 // VP8 payload descriptor: start of a partition
	// Each packet a frame of its own, so marked as its last (RFC 7741 §4.1): the SFU sends
	// it at once rather than waiting for the frame's end, and the counts below do not
	// depend on when a frame's last packet comes.
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1, Marker: true}, Payload: payload}
	write := func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 90
		if err := flood.WriteRTP(pkt); err != nil {
			t.Errorf("write: %v", err)
		}
	}
	gentle, gentleDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(gentleDone)
		for {
			select {
			case <-gentle:
				return
			case <-time.After(20 * time.Millisecond):
				write()
			}
		}
	}()
	receiving(t, "A~1", 5, b)
	close(gentle)
	<-gentleDone

	// The flood: for a second, a few thousand packets a second (faster, and the loopback
	// path loses most of them before the SFU, limit or not).
	before := b.track("A~1").packets.Load()
	start := time.Now()
	n := 0
	for time.Since(start) < time.Second {
		for range 4 {
			write()
			n++
		}
		time.Sleep(time.Millisecond)
	}
	wrote := time.Since(start)
	receiving(t, "A", 30, b) // the camera goes on; the flood has long reached B
	elapsed := time.Since(start)
	got := b.track("A~1").packets.Load() - before
	// The limiter admits a second's worth at once, then pps per second; the time since the
	// flood started bounds what it can have admitted.
	allowed := int64(pps + pps*elapsed.Seconds())
	t.Logf("flood: %d packets written in %v; B received %d of them in %v (at most %d allowed)", n, wrote, got, elapsed, allowed)
	if got > allowed {
		t.Errorf("B received %d packets of the flood, more than the %d the limit of %d packets/s allows", got, allowed, pps)
	}
	var over uint64
	for _, p := range s.Stats().Participants {
		for _, l := range p.Layers {
			if l.Track == "A-flood" {
				over = l.OverLimit
			}
			if l.Track == "A-camera" && l.OverLimit > 0 {
				t.Errorf("%d packets of A's camera over the limit: its ~90 packets/s are well under %d", l.OverLimit, pps)
			}
		}
	}
	if total := s.Stats().OverLimit; total < over {
		t.Errorf("the SFU's total over the limit is %d, less than the flood's layer's %d", total, over)
	}
	if over == 0 || int64(over)+got > int64(n) {
		t.Errorf("%d packets of the flood counted over the limit, %d forwarded to B, of %d written", over, got, n)
	}

	// A third track, over MaxTracks = 2: declined, and A is told.
	a.publish(camera, "screen", "screen-A")
	waitFor(t, 30*time.Second, "A told too_many_tracks", func() (bool, string) { return a.tooMany.Load() == 1, "" })
	var mid, dir string
	a.do(func() {
		for _, tr := range a.pc.GetTransceivers() {
			if s := tr.Sender(); s != nil && s.Track() != nil && s.Track().ID() == "screen" {
				mid = tr.Mid()
			}
		}
		if rd := a.pc.RemoteDescription(); rd != nil {
			dir = mediaDirection(rd.SDP, mid)
		}
	})
	if dir != "inactive" {
		t.Errorf("the SFU's answer has the third track's media section (mid %q) %q, want inactive", mid, dir)
	}
	waitFor(t, 30*time.Second, "settled with two of A's tracks", func() (bool, string) {
		return settled(s, map[string]int{"A": 2, "B": 1}, map[string]int{"A": 1, "B": 2})
	})
	receiving(t, "A", 30, b)

	// A stops the second track: there is room again, but the declined section stays
	// declined (A's next offer still sends on it), and A is told again.
	a.do(func() {
		if err := a.pc.RemoveTrack(floodSender); err != nil {
			t.Errorf("remove track: %v", err)
		}
		a.needOffer = true
		a.maybeOffer()
	})
	waitFor(t, 30*time.Second, "A told too_many_tracks again", func() (bool, string) { return a.tooMany.Load() == 2, "" })
	waitFor(t, 30*time.Second, "settled with A's camera alone", func() (bool, string) {
		return settled(s, map[string]int{"A": 1, "B": 1}, map[string]int{"A": 1, "B": 1})
	})
	receiving(t, "A", 30, b)
	if tr := b.track("A~2"); tr != nil {
		t.Errorf("B receives A's declined track: %d packets", tr.packets.Load())
	}
	if st := fmt.Sprint(s.Stats().Participants); strings.Contains(st, "A-screen") {
		t.Errorf("the declined track is published: %s", st)
	}
}
