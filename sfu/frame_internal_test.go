package sfu

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// recorder is a subscriber's binding of a local track that notes the sequence numbers
// written to it.
type recorder struct {
	mu   sync.Mutex
	seqs []uint16
}

func (r *recorder) WriteRTP(h *rtp.Header, _ []byte) (int, error) {
	r.mu.Lock()
	r.seqs = append(r.seqs, h.SequenceNumber)
	r.mu.Unlock()
	return 0, nil
}
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

func (r *recorder) take() []uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seqs
	r.seqs = nil
	return s
}

// bindContext binds a local track to a recorder, as a peer connection binds it to its
// sender.
type bindContext struct {
	codec webrtc.RTPCodecParameters
	w     *recorder
}

func (c bindContext) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{c.codec}
}
func (c bindContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c bindContext) SSRC() webrtc.SSRC                                      { return 1 }
func (c bindContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c bindContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c bindContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c bindContext) ID() string                                             { return "test" }
func (c bindContext) RTCPReader() interceptor.RTCPReader                     { return nil }

// frameForwarder is a forwarder of one video or audio layer with one subscriber, whose
// packets a recorder notes.
func frameForwarder(t *testing.T, video bool) (*forwarder, *layer, *recorder) {
	t.Helper()
	codec := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	if !video {
		codec = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	}
	local, err := newLocalTrack(codec.RTPCodecCapability, "t", "s")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if _, err := local.Bind(bindContext{codec: codec, w: rec}); err != nil {
		t.Fatal(err)
	}
	f := &forwarder{codec: codec.RTPCodecCapability, clockRate: codec.ClockRate, video: video}
	f.layers.Store(&[]*layer{})
	f.subs.Store(&[]*downTrack{})
	f.addSubscriber(newDownTrack(local, nil, codec.ClockRate, false))
	l := &layer{}
	t.Cleanup(func() { f.flushFrame(l) })
	return f, l, rec
}

// A video frame's packets go together when its last (marker) comes; a packet out of
// sequence, a new timestamp, padding, a full frame, the end of the layer's reads or
// frameWait send what is held at once. Audio is never held.
func TestFrameHold(t *testing.T) {
	f, l, rec := frameForwarder(t, true)
	payload := []byte{0x10, 1, 2, 3}
	type step struct {
		seq    uint16
		ts     uint32
		marker bool
		pad    bool
		want   []uint16 // sent at this packet
	}
	steps := []step{
		{seq: 1, ts: 100},
		{seq: 2, ts: 100},
		{seq: 3, ts: 100, marker: true, want: []uint16{1, 2, 3}},
		{seq: 5, ts: 200, want: []uint16{5}}, // seq 4 lost: out of sequence
		{seq: 6, ts: 200},
		{seq: 7, ts: 300, want: []uint16{6}},    // a new frame: the last one's end was lost
		{seq: 4, ts: 150, want: []uint16{7, 4}}, // late: goes at once, after what is held
		{seq: 8, ts: 300},
		{seq: 9, ts: 300, pad: true, want: []uint16{8, 9}},
	}
	for i, s := range steps {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: s.seq, Timestamp: s.ts, Marker: s.marker}, Payload: payload}
		if s.pad {
			pkt.Payload, pkt.Padding = nil, true
		}
		f.hold(l, &pkt, s.pad)
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (seq %d): sent %v, want %v", i, s.seq, got, s.want)
		}
	}
	// A key frame of more than frameMax packets goes frameMax at a time.
	var want []uint16
	for i := range frameMax {
		seq := uint16(10 + i)
		want = append(want, seq)
		f.hold(l, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: 400}, Payload: payload}, false)
		if got := rec.take(); i < frameMax-1 && got != nil {
			t.Fatalf("packet %d of a key frame: sent %v, want nothing yet", i, got)
		} else if i == frameMax-1 && !slices.Equal(got, want) {
			t.Fatalf("at frameMax: sent %v, want %v", got, want)
		}
	}
	// What is held goes when the reads end.
	f.hold(l, &rtp.Packet{Header: rtp.Header{SequenceNumber: 10 + frameMax, Timestamp: 400}, Payload: payload}, false)
	f.flushFrame(l)
	if got := rec.take(); !slices.Equal(got, []uint16{10 + frameMax}) {
		t.Fatalf("at the end of reads: sent %v", got)
	}
	// Or after frameWait, when the frame's last does not come.
	f.hold(l, &rtp.Packet{Header: rtp.Header{SequenceNumber: 11 + frameMax, Timestamp: 500}, Payload: payload}, false)
	deadline := time.Now().Add(10 * time.Second)
	var got []uint16
	for got == nil && time.Now().Before(deadline) {
		time.Sleep(frameWait / 4)
		got = rec.take()
	}
	if !slices.Equal(got, []uint16{11 + frameMax}) {
		t.Fatalf("after frameWait: sent %v", got)
	}

	a, al, arec := frameForwarder(t, false)
	for seq := range uint16(3) {
		a.hold(al, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: payload}, false)
		if got := arec.take(); !slices.Equal(got, []uint16{seq}) {
			t.Fatalf("audio packet %d: sent %v", seq, got)
		}
	}
}

// Holding a packet copies it and allocates nothing; a held packet does not share the
// caller's buffers, which the next read reuses.
func TestFrameHoldCopies(t *testing.T) {
	f, l, rec := frameForwarder(t, true)
	buf := []byte{0x10, 1, 2, 3}
	pkt := rtp.Packet{Header: rtp.Header{SequenceNumber: 1, Timestamp: 100, CSRC: []uint32{7}}, Payload: buf}
	f.hold(l, &pkt, false)
	buf[1], pkt.CSRC[0] = 9, 8
	if h := &l.frame.pkts[0]; h.Payload[1] != 1 || h.CSRC[0] != 7 {
		t.Fatalf("held packet changed with the caller's buffers: payload %v, CSRC %v", h.Payload, h.CSRC)
	}
	f.flushFrame(l)
	rec.take()
	seq := uint16(2)
	allocs := testing.AllocsPerRun(200, func() {
		ts := uint32(seq) * 3000
		for range 3 {
			pkt := rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts}, Payload: buf}
			f.hold(l, &pkt, false)
			seq++
		}
		f.flushFrame(l)
	})
	if allocs > 0 {
		t.Errorf("%v allocations per frame held", allocs)
	}
}
