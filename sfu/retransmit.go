package sfu

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Loss repair towards subscribers (generic NACK, RFC 4585 §6.2.1): each layer of a
// published track keeps its last cacheSize packets once, in a packetCache, for all its
// subscribers. A subscriber's NACK, read in readSubscriberRTCP, is answered from it: on the
// subscriber's RTX stream (RFC 4588) when negotiated, else on the media stream. Pion's NACK
// responder, which the SFU leaves out, kept a copy of every packet for every subscriber.

// cacheSize is how many packets of each layer the SFU keeps to resend: at 100 to 250
// video packets/s, 2 to 5 s, far more than a NACK's round trip needs. A power of two.
const cacheSize = 512

// A subscriber's NACKs can name thousands of packets per RTCP packet (a pair names 17): a
// token bucket per stream bounds what it gets resent, so that a hostile or broken one
// costs the SFU no more than a few streams' worth. 300 packets/s is twice a 1.5 Mbit/s
// video stream's whole rate; lossy links need a few percent of it.
const (
	retransmitRate  = 300 // packets/s
	retransmitBurst = 300 // packets
)

// maxRTP is the largest RTP packet the SFU caches (a UDP payload under a 1500-byte MTU).
const maxRTP = 1500

// packetCache holds the last cacheSize packets of one layer, as the publisher sent them.
type packetCache struct {
	mu    sync.Mutex
	slots [cacheSize]cachedPacket
}

type cachedPacket struct {
	seq    uint16
	valid  bool
	marker bool
	ts     uint32
	n      int // payload length
	buf    [maxRTP]byte
}

// add keeps a packet, in the slot of its sequence number.
func (c *packetCache) add(h *rtp.Header, payload []byte) {
	if len(payload) > maxRTP {
		return
	}
	c.mu.Lock()
	s := &c.slots[h.SequenceNumber%cacheSize]
	s.seq, s.valid, s.marker, s.ts, s.n = h.SequenceNumber, true, h.Marker, h.Timestamp, len(payload)
	copy(s.buf[:], payload)
	c.mu.Unlock()
}

// get copies the payload of packet seq to dst, which has room for maxRTP bytes, and
// returns its length, timestamp and marker; ok is false if the packet is not kept.
func (c *packetCache) get(seq uint16, dst []byte) (n int, ts uint32, marker, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[seq%cacheSize]
	if !s.valid || s.seq != seq {
		return 0, 0, false, false
	}
	return copy(dst, s.buf[:s.n]), s.ts, s.marker, true
}

// sentPacket records, for a subscriber of a simulcast track, which packet of which layer
// went out under a sequence number of the subscriber's stream (downTrack.sent).
type sentPacket struct {
	layer  *layer
	seq    uint16 // in the subscriber's stream
	origin uint16 // in the layer
	ts     uint32 // in the subscriber's stream
}

// source finds what a subscriber got as sequence number seq: the layer and its sequence
// number there, and the timestamp the subscriber saw.
func (f *forwarder) source(d *downTrack, seq uint16) (l *layer, origin uint16, ts uint32, rewritten, ok bool) {
	if !f.simulcast {
		// Forwarded as is: the subscriber's sequence numbers and timestamps are the
		// publisher's.
		layers := *f.layers.Load()
		if len(layers) == 0 {
			return nil, 0, 0, false, false
		}
		return layers[0], seq, 0, false, true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sent[seq%cacheSize]
	if s.layer == nil || s.seq != seq {
		return nil, 0, 0, false, false
	}
	return s.layer, s.origin, s.ts, true, true
}

// retransmit answers a subscriber's NACK: every packet it names that the layer's cache
// still holds is sent again on the subscriber's stream st, within the stream's budget.
func (f *forwarder) retransmit(d *downTrack, st *localStream, n *rtcp.TransportLayerNack, now time.Time) {
	var buf [maxRTP + 2]byte
	for _, pair := range n.Nacks {
		pair.Range(func(seq uint16) bool {
			if !st.allow(now) {
				return false
			}
			l, origin, ts, rewritten, ok := f.source(d, seq)
			if !ok {
				return true
			}
			// With RTX the payload starts with the original sequence number (RFC 4588 §4).
			off := 0
			if st.rtxSSRC != 0 {
				off = 2
			}
			size, cachedTS, marker, ok := l.cache.get(origin, buf[off:])
			if !ok {
				return true
			}
			if !rewritten {
				ts = cachedTS
			}
			h := rtp.Header{Version: 2, Marker: marker, Timestamp: ts, SSRC: st.ssrc, PayloadType: st.pt, SequenceNumber: seq}
			if off > 0 {
				binary.BigEndian.PutUint16(buf[:2], seq)
				h.SSRC, h.PayloadType = st.rtxSSRC, st.rtxPT
				h.SequenceNumber = uint16(st.rtxSeq.Add(1))
			}
			_, _ = st.w.Write(&h, buf[:off+size], nil)
			return true
		})
	}
}

// responders hands the SFU the NACK responder of each new peer connection. Pion makes a
// connection's interceptors inside NewPeerConnection, which the SFU calls under pcMu, so
// the responder made last is the one of the connection just made.
type responders struct {
	mu   sync.Mutex
	last *nackResponder
}

func (r *responders) NewInterceptor(string) (interceptor.Interceptor, error) {
	n := &nackResponder{streams: map[uint32]*localStream{}}
	r.mu.Lock()
	r.last = n
	r.mu.Unlock()
	return n, nil
}

// take returns the responder of the peer connection just made.
func (r *responders) take() *nackResponder {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.last
	r.last = nil
	return n
}

// nackResponder knows, for one subscriber's peer connection, how to write to each stream
// the SFU sends it: the writer below it (towards the network) and the RTX stream's SSRC
// and payload type. It adds nothing to the path of a forwarded packet.
type nackResponder struct {
	interceptor.NoOp
	mu      sync.Mutex
	streams map[uint32]*localStream // by media SSRC
}

type localStream struct {
	ssrc, rtxSSRC uint32
	pt, rtxPT     uint8
	rtxSeq        atomic.Uint32
	w             interceptor.RTPWriter

	mu     sync.Mutex // guards the retransmission budget
	tokens float64
	last   time.Time
}

// allow takes a token of the retransmission budget, if one is left at now.
func (st *localStream) allow(now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.last.IsZero() {
		st.tokens = retransmitBurst
	} else if dt := now.Sub(st.last).Seconds(); dt > 0 {
		st.tokens = min(retransmitBurst, st.tokens+dt*retransmitRate)
	}
	st.last = now
	if st.tokens < 1 {
		return false
	}
	st.tokens--
	return true
}

func (r *nackResponder) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	st := &localStream{ssrc: info.SSRC, pt: info.PayloadType, w: w}
	if info.SSRCRetransmission != 0 && info.PayloadTypeRetransmission != 0 {
		st.rtxSSRC, st.rtxPT = info.SSRCRetransmission, info.PayloadTypeRetransmission
		st.rtxSeq.Store(rand.Uint32N(1 << 16)) // a random start, as for any RTP stream (RFC 3550 §5.1)
	}
	r.mu.Lock()
	r.streams[info.SSRC] = st
	r.mu.Unlock()
	return w
}

func (r *nackResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
}

// stream returns the stream with media SSRC ssrc, or nil.
func (r *nackResponder) stream(ssrc uint32) *localStream {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[ssrc]
}
