package peer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/media"
)

// SimulcastLayer is one layer of a simulcast video: its RTP stream ID (RID, RFC 8852) and
// the VP8 stream it plays. Parley's clients use "q", "h" and "f" for a quarter, half and
// full resolution.
type SimulcastLayer struct {
	RID   string
	Video *media.Stream
}

// taggedPackets is how many of a layer's first packets carry the MID and RID header
// extensions (RFC 8843 §15, RFC 8852 §3.1), by which the receiver tells the layers'
// SSRCs apart: the SDP names the RIDs, not the SSRCs. Not all of them: Pion's NACK
// responder resends a packet with its extensions, and a retransmission (RTX, RFC 4588)
// that names a RID would be taken by Pion's receiver for that layer's stream.
const taggedPackets = 50

// addSimulcast adds one video track with an encoding per layer (Pion: AddTrack, then
// RTPSender.AddEncoding) and a sender per layer, which packetizes VP8 itself to tag the
// first packets with MID and RID.
func (c *call) addSimulcast() error {
	var rtpSender *webrtc.RTPSender
	for i, l := range c.cfg.Simulcast {
		if l.RID == "" || l.Video == nil {
			return fmt.Errorf("simulcast layer %d: a RID and a video are required", i)
		}
		codec := webrtc.RTPCodecCapability{MimeType: l.Video.MimeType, ClockRate: l.Video.ClockRate}
		track, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "parley", webrtc.WithRTPStreamID(l.RID))
		if err != nil {
			return fmt.Errorf("new simulcast track %q: %w", l.RID, err)
		}
		if i == 0 {
			if rtpSender, err = c.pc.AddTrack(track); err != nil {
				return fmt.Errorf("add simulcast track: %w", err)
			}
		} else if err := rtpSender.AddEncoding(track); err != nil {
			return fmt.Errorf("add simulcast layer %q: %w", l.RID, err)
		}
		w := &layerWriter{pc: c.pc, sender: rtpSender, track: track, rid: l.RID,
			packetizer: rtp.NewPacketizer(1200, 0, 0, &codecs.VP8Payloader{EnablePictureID: true},
				rtp.NewRandomSequencer(), l.Video.ClockRate), clock: l.Video.ClockRate}
		s := sender{kind: "video", write: w.write, stream: l.Video}
		if i == 0 {
			s.count = &c.videoSent // frames of the video, not of each layer
		}
		c.senders = append(c.senders, s)
		rid := l.RID
		// Reading each layer's RTCP lets the interceptors see NACKs and receiver reports;
		// it ends when the peer connection closes.
		c.spawn(func() {
			for {
				if _, _, err := rtpSender.ReadSimulcastRTCP(rid); err != nil {
					return
				}
			}
		})
	}
	return nil
}

// layerWriter packetizes one simulcast layer's frames.
type layerWriter struct {
	pc         *webrtc.PeerConnection
	sender     *webrtc.RTPSender
	track      *webrtc.TrackLocalStaticRTP
	rid        string
	packetizer rtp.Packetizer
	clock      uint32

	mu           sync.Mutex
	mid          string
	midID, ridID uint8
	tagged       int
}

// The header extensions' URIs (RFC 8843 §16.2, RFC 8852 §4.1).
const (
	midURI = "urn:ietf:params:rtp-hdrext:sdes:mid"
	ridURI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
)

var errNoMIDExtension = errors.New("the MID or RID header extension was not negotiated")

func (w *layerWriter) write(f media.Frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tagged < taggedPackets && w.midID == 0 {
		// Negotiated by now: sending starts once the connection is up.
		for _, e := range w.sender.GetParameters().HeaderExtensions {
			switch e.URI {
			case midURI:
				w.midID = uint8(e.ID)
			case ridURI:
				w.ridID = uint8(e.ID)
			}
		}
		for _, t := range w.pc.GetTransceivers() {
			if t.Sender() == w.sender {
				w.mid = t.Mid()
			}
		}
		if w.midID == 0 || w.ridID == 0 || w.mid == "" {
			return fmt.Errorf("simulcast layer %q: %w", w.rid, errNoMIDExtension)
		}
	}
	samples := uint32(f.Duration.Seconds() * float64(w.clock))
	for _, p := range w.packetizer.Packetize(f.Data, samples) {
		if w.tagged < taggedPackets {
			w.tagged++
			if err := p.Header.SetExtension(w.midID, []byte(w.mid)); err != nil {
				return err
			}
			if err := p.Header.SetExtension(w.ridID, []byte(w.rid)); err != nil {
				return err
			}
		}
		if err := w.track.WriteRTP(p); err != nil {
			return fmt.Errorf("simulcast layer %q: %w", w.rid, err)
		}
	}
	return nil
}
