package sfu

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// The SFU's own SRTCP read path, the other half of srtpout.go. Through Pion, an RTCP
// packet from a subscriber passed pion/ice's UDP mux, the ICE connection, the DTLS/SRTP mux
// and the SRTCP session, each in a goroutine of its own, then went to the reader of every
// RTP sender it named, through the interceptors: at 200 subscribers sending transport-wide
// feedback ten times a second, that was a fifth of the server's CPU. Now the media port's
// reader (rtcpTap, mux.go) hands the SRTCP of a peer connection whose SRTP write path is on
// to its rtcpIn, found by the packet's source address (the selected ICE pair's, or one its
// STUN requests came from), which decrypts it with a context of its own and acts on it in
// place: transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01) to
// the connection's bandwidth estimator, a NACK to the forwarded layer's retransmission
// cache, a PLI or FIR (RFC 4585 §6.3.1, RFC 5104 §4.3.1) to the publisher; receiver reports
// and source descriptions are dropped, as nothing in the SFU reads them. A compound packet
// with anything else in it goes on to Pion whole, which acts on it as before: one led by a
// sender report (the participant publishes) goes undecrypted (readRTCP). Browsers send
// their transport-wide feedback on its own, so a publishing browser's feedback is taken too;
// its reports, NACKs and PLIs come after its sender reports (Pion negotiates no
// reduced-size RTCP, RFC 5506) and go to Pion.

// rtcpIn is one peer connection's SRTCP read path.
type rtcpIn struct {
	count *atomic.Uint64 // the SFU's total of RTCP packets taken this way
	taken atomic.Uint64  // this connection's

	// Set once the connection's estimator and NACK responder exist (setup).
	est   *outbound
	resp  *nackResponder
	nacks *nackCounts

	// subs maps the SSRC of each forwarded track's sender to its subscription; replaced,
	// never changed, so the read looks it up without a lock.
	subsMu sync.Mutex
	subs   atomic.Pointer[map[uint32]rtcpSub]

	mu  sync.Mutex // serialises reads: the context is not safe for concurrent use
	ctx *srtp.Context
	buf []byte
}

// rtcpSub is what the SFU forwards to a subscriber in one RTP sender.
type rtcpSub struct {
	f *forwarder
	d *downTrack
}

// setup hands the read path what it acts on; call it before the connection negotiates.
func (r *rtcpIn) setup(est *outbound, resp *nackResponder, nacks *nackCounts) {
	r.mu.Lock()
	r.est, r.resp, r.nacks = est, resp, nacks
	r.mu.Unlock()
}

// setContext sets the SRTCP context of what the other side sends.
func (r *rtcpIn) setContext(ctx *srtp.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
}

// add notes that the sender with ssrc carries forwarder f's track to the subscriber, as d;
// remove that it no longer does.
func (r *rtcpIn) add(ssrc uint32, f *forwarder, d *downTrack) {
	r.update(func(m map[uint32]rtcpSub) { m[ssrc] = rtcpSub{f, d} })
}

func (r *rtcpIn) remove(ssrc uint32) {
	r.update(func(m map[uint32]rtcpSub) { delete(m, ssrc) })
}

func (r *rtcpIn) update(change func(map[uint32]rtcpSub)) {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	next := map[uint32]rtcpSub{}
	if old := r.subs.Load(); old != nil {
		maps.Copy(next, *old)
	}
	change(next)
	r.subs.Store(&next)
}

// readRTCP takes one SRTCP packet from the media port, while the write path is on, and
// reports whether it did; one it does not take (it cannot decrypt or parse it, or it holds
// something besides what rtcpIn acts on) goes on to Pion.
func (o *srtpOut) readRTCP(pkt []byte) bool {
	// A compound packet led by a sender report (RFC 3550 §6.1), whose first header SRTCP
	// leaves in the clear, is from a participant that publishes: Pion's receiver reports
	// to it need its sender reports (their LSR and DLSR, RFC 3550 §6.4.1), so it goes to
	// Pion undecrypted.
	if !o.on.Load() || pkt[1] == uint8(rtcp.TypeSenderReport) {
		return false
	}
	return o.rtcp.read(pkt)
}

func (r *rtcpIn) read(pkt []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		return false
	}
	plain, err := r.ctx.DecryptRTCP(r.buf[:0], pkt, nil)
	if err != nil {
		return false
	}
	r.buf = plain[:0]
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil || !takes(pkts) {
		return false
	}
	r.count.Add(1)
	r.taken.Add(1)
	var subs map[uint32]rtcpSub
	if m := r.subs.Load(); m != nil {
		subs = *m
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerCC:
			if r.est != nil {
				r.est.feedback(p)
			}
		case *rtcp.TransportLayerNack:
			if s, ok := subs[p.MediaSSRC]; ok {
				s.f.nacked(s.d, p, r.nacks, r.resp)
			}
		case *rtcp.PictureLossIndication:
			if s, ok := subs[p.MediaSSRC]; ok {
				s.f.keyFrameWanted(s.d)
			}
		case *rtcp.FullIntraRequest:
			for _, e := range p.FIR {
				if s, ok := subs[e.SSRC]; ok {
					s.f.keyFrameWanted(s.d)
				}
			}
		}
	}
	return true
}

// takes reports whether every packet of a compound RTCP packet is one rtcpIn acts on, or
// one it may drop: what a subscriber sends about what it receives.
func takes(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.TransportLayerCC, *rtcp.TransportLayerNack, *rtcp.PictureLossIndication,
			*rtcp.FullIntraRequest, *rtcp.ReceiverReport, *rtcp.SourceDescription:
		default:
			return false
		}
	}
	return true
}
