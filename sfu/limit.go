package sfu

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// Defaults of Config's publishing limits.
const (
	// DefaultMaxTracks: a camera, a microphone, and a screen share with its sound.
	DefaultMaxTracks = 4
	// DefaultMaxTrackBitrate is several times what a browser sends for one 1080p camera or
	// screen share, all simulcast layers together.
	DefaultMaxTrackBitrate = 10_000_000 // bit/s
	// DefaultMaxTrackPacketRate is some five times what a 4 Mbit/s track sends in
	// 1200-byte packets.
	DefaultMaxTrackPacketRate = 2000 // packets/s
)

// A participant's offers to the SFU: each costs Pion's SDP work (1.3 ms for a one-section
// offer on the 2-core machine, TestOfferRate; more with more sections) on the CPU every
// group shares, and holds up the rest of its own group's negotiation meanwhile. A client
// offers on joining, and when it starts or stops a track or retries after glare: a handful
// a minute.
const (
	offerRate  = rate.Limit(2) // offers/s, on average
	offerBurst = 10
)

// trackLimit caps the rate at which the SFU forwards one published track, all its
// simulcast layers together: a member sending more (a broken or hostile client) would
// otherwise have every packet multiplied by the number of subscribers, on the CPU and the
// uplink that every call on the server shares. Packets over the limit are dropped. Each
// rate may be used in a burst of one second's worth (of bytes, at least 64 KiB), which
// holds a key frame.
type trackLimit struct {
	packets *rate.Limiter  // nil: no limit
	bytes   *rate.Limiter  // RTP bytes; nil: no limit
	dropped *atomic.Uint64 // the SFU's total of packets dropped (Stats.OverLimit); may be nil
}

func newTrackLimit(bitrate, packetRate int, dropped *atomic.Uint64) trackLimit {
	l := trackLimit{dropped: dropped}
	if packetRate > 0 {
		l.packets = rate.NewLimiter(rate.Limit(packetRate), packetRate)
	}
	if bitrate > 0 {
		l.bytes = rate.NewLimiter(rate.Limit(bitrate/8), max(bitrate/8, 1<<16))
	}
	return l
}

// allow takes an RTP packet of size bytes arriving at now; false means drop it. The
// limiters are safe for the layers' goroutines to share.
func (l *trackLimit) allow(now time.Time, size int) bool {
	if (l.packets == nil || l.packets.AllowN(now, 1)) && (l.bytes == nil || l.bytes.AllowN(now, size)) {
		return true
	}
	if l.dropped != nil {
		l.dropped.Add(1)
	}
	return false
}

// limitTracks holds p to Config.MaxTracks published tracks. Each media section of p's
// offer (its remote description) in which p sends audio or video is a track; one already
// accepted stays accepted, new ones are accepted in the order of the offer while there is
// room, and the transceivers of the others are stopped, so that the answer declines them
// (a=inactive, RFC 8866 §6.7.4): p's side does not send on them. A section p stopped
// sending on frees its place. A declined section stays declined (Pion cannot restart a
// stopped transceiver), even when p sends on it again later with room to spare. It
// returns the mids declined by this answer.
func (s *SFU) limitTracks(p *participant) []string {
	sending := sendingMedia(p.pc.RemoteDescription())
	accepted := map[string]bool{}
	for _, mid := range sending {
		if p.accepted[mid] {
			accepted[mid] = true
		}
	}
	var declined []string
	for _, mid := range sending {
		switch {
		case accepted[mid]:
		case !p.declined[mid] && (s.cfg.MaxTracks < 0 || len(accepted) < s.cfg.MaxTracks):
			accepted[mid] = true
		default:
			declined = append(declined, mid)
		}
	}
	p.accepted = accepted
	for _, tr := range p.pc.GetTransceivers() {
		if mid := tr.Mid(); slices.Contains(declined, mid) && !p.declined[mid] {
			_ = tr.Stop()
			if p.declined == nil {
				p.declined = map[string]bool{}
			}
			p.declined[mid] = true
		}
	}
	return declined
}

// sendingMedia returns, in order, the mids of desc's audio and video sections in which its
// side sends.
func sendingMedia(desc *webrtc.SessionDescription) []string {
	var out []string
	forSending(desc, func(m *sdp.MediaDescription, mid string) {
		if k := m.MediaName.Media; k == "audio" || k == "video" {
			out = append(out, mid)
		}
	})
	return out
}
