package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// forwarder forwards one published track to its subscribers' local tracks, as it comes:
// no decoding, no jitter buffer. Its goroutine ends when the track's reads fail, which is
// when the publisher's peer connection closes.
type forwarder struct {
	id       string // the track ID subscribers see
	streamID string // the publisher's user ID: subscribers group tracks by it
	codec    webrtc.RTPCodecCapability
	track    *webrtc.TrackRemote
	pc       *webrtc.PeerConnection // the publisher's, for key frame requests
	ssrc     uint32
	video    bool
	interval time.Duration // between key frame requests

	mu      sync.Mutex                                    // serialises changes to subs
	subs    atomic.Pointer[[]*webrtc.TrackLocalStaticRTP] // read once per packet, replaced on change
	lastPLI atomic.Int64                                  // UnixNano of the last key frame request
	packets atomic.Uint64
}

func newForwarder(id, streamID string, t *webrtc.TrackRemote, pc *webrtc.PeerConnection, interval time.Duration) *forwarder {
	f := &forwarder{id: id, streamID: streamID, codec: t.Codec().RTPCodecCapability, track: t, pc: pc,
		ssrc: uint32(t.SSRC()), video: t.Kind() == webrtc.RTPCodecTypeVideo, interval: interval}
	f.subs.Store(&[]*webrtc.TrackLocalStaticRTP{})
	return f
}

func (f *forwarder) addSubscriber(t *webrtc.TrackLocalStaticRTP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.subs.Load()
	next := make([]*webrtc.TrackLocalStaticRTP, len(old), len(old)+1)
	copy(next, old)
	next = append(next, t)
	f.subs.Store(&next)
}

func (f *forwarder) removeSubscriber(t *webrtc.TrackLocalStaticRTP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.subs.Load()
	next := make([]*webrtc.TrackLocalStaticRTP, 0, len(old))
	for _, s := range old {
		if s != t {
			next = append(next, s)
		}
	}
	f.subs.Store(&next)
}

// forward reads the publisher's packets and writes each to every subscriber. The buffer
// and the packet are reused: a packet costs no allocation here.
func (f *forwarder) forward() {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := f.track.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		// The publisher's header extensions carry IDs negotiated with the publisher, not
		// with the subscriber; the subscriber's sender adds its own (transport-wide
		// sequence numbers).
		pkt.Header.Extension = false
		pkt.Header.ExtensionProfile = 0
		pkt.Header.Extensions = pkt.Header.Extensions[:0]
		for _, t := range *f.subs.Load() {
			// WriteRTP sets the subscriber's SSRC and payload type in pkt; an error means that
			// subscriber's connection is closing, which leave handles.
			_ = t.WriteRTP(&pkt)
		}
		f.packets.Add(1)
	}
}

// keyFrame asks the publisher for a key frame (PLI, RFC 4585 §6.3.1), at most once per
// interval.
func (f *forwarder) keyFrame() {
	if !f.video {
		return
	}
	now := time.Now().UnixNano()
	last := f.lastPLI.Load()
	if now-last < int64(f.interval) || !f.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = f.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: f.ssrc}})
}

// readSubscriberRTCP reads what one subscriber sends about this track until its sender
// stops. A PLI or FIR (RFC 5104 §4.3.1) becomes a key frame request to the publisher; a
// NACK, which Pion's responder has answered on the way, is counted.
func (f *forwarder) readSubscriberRTCP(sender *webrtc.RTPSender, nacks *nackCounts) {
	// A compound RTCP packet goes to every sender whose SSRC it names (in its receiver
	// reports too): a NACK counts on the sender it is about.
	var ssrc webrtc.SSRC
	if enc := sender.GetParameters().Encodings; len(enc) > 0 {
		ssrc = enc[0].SSRC
	}
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				f.keyFrame()
			case *rtcp.TransportLayerNack:
				if webrtc.SSRC(p.MediaSSRC) == ssrc {
					nacks.received.Add(1)
					nacks.nacked.Add(nackedPackets(p))
				}
			}
		}
	}
}
