package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// forwarder forwards one published track to its subscribers' local tracks: no decoding, no
// jitter buffer; audio as it comes, video a frame at a time (frame). A simulcast track (RFC
// 8853) arrives as several layers, one remote track per RID, each read by a goroutine of its
// own; each subscriber gets one layer at a time, rewritten into one continuous RTP stream
// (downTrack). A track without simulcast has one layer, forwarded as is. A layer's goroutine
// ends when its reads fail, which is when the publisher's peer connection closes.
type forwarder struct {
	id        string // the track ID subscribers see
	streamID  string // the publisher's user ID: subscribers group tracks by it
	codec     webrtc.RTPCodecCapability
	clockRate uint32
	pc        *webrtc.PeerConnection // the publisher's, for key frame requests
	video     bool
	simulcast bool
	interval  time.Duration // between key frame requests of one layer
	limit     trackLimit    // shared by the layers' goroutines (limit.go)

	mu      sync.Mutex                   // serialises changes to layers and subs
	layers  atomic.Pointer[[]*layer]     // by quality, lowest first; replaced on change
	subs    atomic.Pointer[[]*downTrack] // read once per packet, replaced on change
	packets atomic.Uint64
}

// layer is one RTP stream of a published track: the whole track, or one simulcast layer.
type layer struct {
	rid     string
	rank    int // quality order of the RID (ridRank)
	track   *webrtc.TrackRemote
	ssrc    uint32
	lastPLI atomic.Int64  // UnixNano of the last key frame request
	bytes   atomic.Uint64 // RTP bytes received
	packets atomic.Uint64 // RTP packets received, duplicates not counted
	cache   packetCache   // the last packets, to resend (video only; retransmit.go)
	dups    atomic.Uint64 // packets received again, not forwarded
	over    atomic.Uint64 // packets over the track's limit, not forwarded

	// Owned by the layer's forward goroutine.
	seen [1024]uint32 // sequence number + 1 of the last packet received in each slot

	frame frame // held packets of the frame arriving (video only)

	// Owned by the SFU's allocation goroutine (simulcast.go).
	meter rateMeter
}

// downTrack is what one subscriber receives of a forwarder: its local track, and for a
// simulcast track the layer it gets and the one it should get.
type downTrack struct {
	local  *localTrack
	out    *srtpOut              // the subscriber's SRTP write path; nil with Config.PionSRTP
	target atomic.Pointer[layer] // set by the allocation; the switch waits for its key frame
	cur    atomic.Pointer[layer] // current, for a lock-free look on the hot path

	mu       sync.Mutex // held while a packet is admitted and written, keeps writes in order
	current  *layer
	rw       rewriter
	switches atomic.Uint64
	// sent maps the subscriber's last sequence numbers to what they carried, for
	// retransmissions; simulcast only, as other tracks are forwarded unchanged.
	sent *[cacheSize]sentPacket

	sel layerSelector // owned by the allocation goroutine
}

func newDownTrack(local *localTrack, out *srtpOut, clockRate uint32, simulcast bool) *downTrack {
	d := &downTrack{local: local, out: out, rw: rewriter{clock: clockRate}, sel: newLayerSelector()}
	if simulcast {
		d.sent = &[cacheSize]sentPacket{}
	}
	return d
}

// ridRank orders the RIDs Parley's clients use, "q", "h", "f" (quarter, half, full
// resolution); other RIDs come after them in the order they arrive.
func ridRank(rid string, arrived int) int {
	switch rid {
	case "q":
		return 0
	case "h":
		return 1
	case "f":
		return 2
	}
	return 3 + arrived
}

func newForwarder(id, streamID string, t *webrtc.TrackRemote, pc *webrtc.PeerConnection, interval time.Duration, limit trackLimit) *forwarder {
	f := &forwarder{id: id, streamID: streamID, codec: t.Codec().RTPCodecCapability, clockRate: t.Codec().ClockRate, pc: pc,
		video: t.Kind() == webrtc.RTPCodecTypeVideo, simulcast: t.RID() != "", interval: interval, limit: limit}
	f.layers.Store(&[]*layer{})
	f.subs.Store(&[]*downTrack{})
	return f
}

// addLayer adds a remote track of this forwarder's (the first, or another simulcast
// layer) and returns its layer, whose forward the caller runs.
func (f *forwarder) addLayer(t *webrtc.TrackRemote) *layer {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.layers.Load()
	l := &layer{rid: t.RID(), rank: ridRank(t.RID(), len(old)), track: t, ssrc: uint32(t.SSRC())}
	next := append(slices.Clone(old), l)
	slices.SortStableFunc(next, func(a, b *layer) int { return a.rank - b.rank })
	f.layers.Store(&next)
	return l
}

func (f *forwarder) addSubscriber(d *downTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := append(slices.Clone(*f.subs.Load()), d)
	f.subs.Store(&next)
}

func (f *forwarder) removeSubscriber(d *downTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.subs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, s := range old {
		if s != d {
			next = append(next, s)
		}
	}
	f.subs.Store(&next)
}

// forward reads one layer's packets and writes each to the subscribers that receive that
// layer. The buffer and the packet are reused: a packet costs no allocation here.
func (f *forwarder) forward(l *layer) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := l.track.Read(buf)
		if err != nil {
			f.flushFrame(l)
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if l.seenBefore(pkt.SequenceNumber) {
			continue
		}
		now := time.Now()
		if !f.limit.allow(now, n) {
			l.over.Add(1)
			continue
		}
		// A padding-only packet is the publisher probing its bandwidth: not part of the
		// layer's bitrate, which chooses layers for subscribers.
		padding := pkt.Padding && len(pkt.Payload) == 0
		if !padding {
			l.bytes.Add(uint64(n))
		}
		l.packets.Add(1)
		if f.video { // subscribers NACK video only (Pion's media engine, rtcapi)
			l.cache.add(&pkt.Header, pkt.Payload)
		}
		// The publisher's header extensions carry IDs negotiated with the publisher, not
		// with the subscriber; the subscriber's sender adds its own (transport-wide
		// sequence numbers).
		pkt.Header.Extension = false
		pkt.Header.ExtensionProfile = 0
		pkt.Header.Extensions = pkt.Header.Extensions[:0]
		f.hold(l, &pkt, padding)
	}
}

// frame is what a video layer holds of the frame that is arriving: its packets from the
// first that has not gone yet, to be sent to each subscriber together. One frame's packets
// to one subscriber then leave in one segmented message (udpbatch), which costs the kernel
// about half as much per packet for three of them as one message each. Only packets that
// cannot complete the frame wait, and they wait for the one that does, the frame's last
// (its RTP marker bit, RFC 7741 §4.1): subscribers can decode the frame no sooner.
type frame struct {
	mu    sync.Mutex
	pkts  [frameMax]rtp.Packet
	bufs  [frameMax][maxRTP]byte // the payloads
	n     int
	next  uint16 // the sequence number expected next
	began bool   // next is set
	timer *time.Timer
}

// frameMax is the most packets a frame holds: a key frame has more, which go in groups of
// this many. frameWait bounds how long the first waits, in case the last never comes.
const (
	frameMax  = 16
	frameWait = 20 * time.Millisecond
)

// hold sends a packet of layer l to the subscribers with the frame's packets held before
// it, or holds it too. A packet is held if it is video, in sequence, and neither the
// frame's last nor padding. One out of order (lost before, or reordered) goes at once, with
// those held: it may be what a subscriber waits for.
func (f *forwarder) hold(l *layer, pkt *rtp.Packet, padding bool) {
	fr := &l.frame
	fr.mu.Lock()
	defer fr.mu.Unlock()
	seq := pkt.SequenceNumber
	inOrder := !fr.began || seq == fr.next
	if !fr.began || int16(seq-fr.next) >= 0 {
		fr.next, fr.began = seq+1, true
	}
	if fr.n > 0 && (!inOrder || pkt.Timestamp != fr.pkts[0].Timestamp) {
		f.sendFrame(l) // a frame whose last did not come (yet)
	}
	dst := &fr.pkts[fr.n]
	csrc, ext := dst.CSRC[:0], dst.Extensions[:0] // its own: pkt's are reused by the next read
	*dst = *pkt
	dst.CSRC = append(csrc, pkt.CSRC...)
	dst.Extensions = ext
	dst.Payload = append(fr.bufs[fr.n][:0], pkt.Payload...)
	fr.n++
	if !f.video || padding || pkt.Marker || !inOrder || fr.n == frameMax {
		f.sendFrame(l)
		return
	}
	if fr.n == 1 {
		if fr.timer == nil {
			fr.timer = time.AfterFunc(frameWait, func() { f.flushFrame(l) })
		} else {
			fr.timer.Reset(frameWait)
		}
	}
}

// flushFrame sends what a layer holds: the frame's last packet has not come within
// frameWait of its first, or the layer's reads have ended. (Its timer runs only while
// something is held: sendFrame stops it.)
func (f *forwarder) flushFrame(l *layer) {
	l.frame.mu.Lock()
	defer l.frame.mu.Unlock()
	if l.frame.n > 0 {
		f.sendFrame(l)
	}
}

// sendFrame writes what layer l holds to each subscriber in turn and empties it;
// l.frame.mu is held.
func (f *forwarder) sendFrame(l *layer) {
	fr := &l.frame
	pkts := fr.pkts[:fr.n]
	fr.n = 0
	if fr.timer != nil {
		fr.timer.Stop()
	}
	now := time.Now()
	switch {
	case !f.simulcast:
		for _, d := range *f.subs.Load() {
			for i := range pkts {
				d.write(&pkts[i], now)
			}
		}
	case len(pkts) == 1 && pkts[0].Padding && len(pkts[0].Payload) == 0:
		f.skipPadding(l, &pkts[0], now)
	default:
		f.forwardSimulcast(l, pkts, now)
	}
	f.packets.Add(uint64(len(pkts)))
}

// seenBefore records a packet's sequence number and reports whether the layer had it
// already. Browsers probe their bandwidth by sending recent packets again on the RTX stream
// (RFC 4588), which Pion hands to the track as the packet itself: Firefox sent its lowest
// layer about ten times over, which measured that layer as the costliest, and every copy
// went to its subscribers. A retransmission of a packet the SFU did not get is new here,
// and is forwarded.
func (l *layer) seenBefore(seq uint16) bool {
	slot := &l.seen[seq%uint16(len(l.seen))]
	if *slot == uint32(seq)+1 {
		l.dups.Add(1)
		return true
	}
	*slot = uint32(seq) + 1
	return false
}

// write sends one packet to the subscriber, with its SSRC and payload type: past Pion's
// track where the SFU's SRTP write path is on (srtpOut.forward), through it otherwise.
// An error means that subscriber's connection is closing, which leave handles.
func (d *downTrack) write(p *rtp.Packet, now time.Time) {
	if b := d.local.bound.Load(); b != nil && d.out != nil && d.out.forward(b, p, now) {
		return
	}
	_ = d.local.WriteRTP(p)
}

// forwardSimulcast writes packets of layer l, in order, to the subscribers that receive
// l, or that switch to l at one of them.
func (f *forwarder) forwardSimulcast(l *layer, pkts []rtp.Packet, now time.Time) {
	nanos := now.UnixNano()
	var key [frameMax]int8 // whether each packet starts a key frame, once asked: 1 no, 2 yes
	for _, d := range *f.subs.Load() {
		if d.cur.Load() != l && d.target.Load() != l {
			continue
		}
		d.mu.Lock()
		for i := range pkts {
			p := &pkts[i]
			start := false
			if d.current != l {
				if key[i] == 0 {
					key[i] = 1
					if vp8KeyFrameStart(p.Payload) {
						key[i] = 2
					}
				}
				start = key[i] == 2
			}
			seq, ts := p.SequenceNumber, p.Timestamp
			if d.admit(l, &p.Header, start, nanos) {
				if d.sent != nil {
					d.sent[p.SequenceNumber%cacheSize] = sentPacket{layer: l, seq: p.SequenceNumber, origin: seq, ts: p.Timestamp}
				}
				d.write(p, now)
			}
			p.SequenceNumber, p.Timestamp = seq, ts // as received, for the next subscriber
		}
		d.mu.Unlock()
	}
}

// skipPadding keeps a padding-only packet of layer l from the subscribers that receive l:
// it carries nothing for them, and each subscriber's own stream has its own bandwidth
// estimate. One that arrives out of order is sent, so that no sequence number is reused.
func (f *forwarder) skipPadding(l *layer, pkt *rtp.Packet, now time.Time) {
	seq, ts := pkt.SequenceNumber, pkt.Timestamp
	for _, d := range *f.subs.Load() {
		if d.cur.Load() != l {
			continue
		}
		d.mu.Lock()
		if d.current == l && !d.rw.skip(seq) {
			pkt.SequenceNumber, pkt.Timestamp = seq, ts
			if d.admit(l, &pkt.Header, false, now.UnixNano()) {
				d.write(pkt, now)
			}
		}
		d.mu.Unlock()
	}
}

// admit decides whether a packet of layer l goes to this subscriber, switching to l if it
// is the target and the packet starts a key frame, and rewrites its sequence number and
// timestamp into the subscriber's stream. d.mu is held.
func (d *downTrack) admit(l *layer, h *rtp.Header, keyFrameStart bool, now int64) bool {
	if d.current != l {
		if d.target.Load() != l || !keyFrameStart {
			return false
		}
		d.rw.switchTo(h.SequenceNumber, h.Timestamp, now)
		d.current = l
		d.cur.Store(l)
		d.switches.Add(1)
	}
	seq, ts, ok := d.rw.rewrite(h.SequenceNumber, h.Timestamp, now)
	if !ok {
		return false
	}
	h.SequenceNumber, h.Timestamp = seq, ts
	return true
}

// keyFrame asks the publisher for a key frame of every layer a subscriber receives or
// waits for (of the only layer without simulcast).
func (f *forwarder) keyFrame() {
	if !f.simulcast {
		for _, l := range *f.layers.Load() {
			f.keyFrameOf(l)
		}
		return
	}
	for _, d := range *f.subs.Load() {
		f.keyFrameFor(d)
	}
}

// keyFrameFor asks for a key frame of the layer subscriber d waits for, or else the one it
// receives.
func (f *forwarder) keyFrameFor(d *downTrack) {
	if t, c := d.target.Load(), d.cur.Load(); t != nil && t != c {
		f.keyFrameOf(t)
	} else if c != nil {
		f.keyFrameOf(c)
	}
}

// keyFrameOf asks the publisher for a key frame of one layer (PLI, RFC 4585 §6.3.1), at
// most once per interval.
func (f *forwarder) keyFrameOf(l *layer) {
	if !f.video {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if now-last < int64(f.interval) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = f.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}})
}

// readSubscriberRTCP reads what one subscriber sends about this track through Pion until
// its sender stops: all of it where the SFU's SRTP path is off, and otherwise what that
// path does not take (rtcpin.go).
func (f *forwarder) readSubscriberRTCP(sender *webrtc.RTPSender, d *downTrack, nacks *nackCounts, resp *nackResponder) {
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
				f.keyFrameWanted(d)
			case *rtcp.TransportLayerNack:
				if webrtc.SSRC(p.MediaSSRC) == ssrc {
					f.nacked(d, p, nacks, resp)
				}
			}
		}
	}
}

// keyFrameWanted acts on a subscriber's PLI or FIR (RFC 5104 §4.3.1): a key frame request
// to the publisher.
func (f *forwarder) keyFrameWanted(d *downTrack) {
	if f.simulcast {
		f.keyFrameFor(d)
	} else {
		f.keyFrame()
	}
}

// nacked acts on a subscriber's NACK of this track: counted, and answered from the
// layer's cache (retransmit).
func (f *forwarder) nacked(d *downTrack, n *rtcp.TransportLayerNack, nacks *nackCounts, resp *nackResponder) {
	nacks.received.Add(1)
	nacks.nacked.Add(nackedPackets(n))
	if st := resp.stream(n.MediaSSRC); st != nil && f.video {
		f.retransmit(d, st, n, time.Now())
	}
}
