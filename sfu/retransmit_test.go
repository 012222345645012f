package sfu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

type written struct {
	h       rtp.Header
	payload []byte
}

func recordingStream(ssrc, rtxSSRC uint32, pt, rtxPT uint8) (*localStream, *[]written) {
	var out []written
	st := &localStream{ssrc: ssrc, rtxSSRC: rtxSSRC, pt: pt, rtxPT: rtxPT,
		w: interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
			out = append(out, written{*h, append([]byte(nil), p...)})
			return len(p), nil
		})}
	st.rtxSeq.Store(100)
	return st, &out
}

// A NACK on a track forwarded as is is answered from the layer's cache: on RTX with the
// original sequence number first (RFC 4588 §4), else on the media stream as it was.
// Packets the cache no longer holds are not resent.
func TestRetransmitFromCache(t *testing.T) {
	f := &forwarder{video: true}
	l := &layer{}
	f.layers.Store(&[]*layer{l})
	for seq := uint16(1000); seq < 1000+cacheSize+10; seq++ {
		l.cache.add(&rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 10, Marker: seq%3 == 0}, []byte{byte(seq), 0xAB})
	}
	nack := &rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{1005, 1400, 1401})}

	st, out := recordingStream(7, 8, 96, 97)
	f.retransmit(&downTrack{}, st, nack, time.Now())
	if len(*out) != 2 {
		t.Fatalf("%d packets resent, want 2 (1005 is no longer cached)", len(*out))
	}
	for i, seq := range []uint16{1400, 1401} {
		w := (*out)[i]
		if w.h.SSRC != 8 || w.h.PayloadType != 97 || w.h.SequenceNumber != uint16(101+i) || w.h.Timestamp != uint32(seq)*10 ||
			w.h.Marker != (seq%3 == 0) || binary.BigEndian.Uint16(w.payload) != seq || w.payload[2] != byte(seq) || len(w.payload) != 4 {
			t.Errorf("retransmission of %d: %+v %x", seq, w.h, w.payload)
		}
	}

	st, out = recordingStream(7, 0, 96, 0)
	f.retransmit(&downTrack{}, st, nack, time.Now())
	if len(*out) != 2 || (*out)[0].h.SSRC != 7 || (*out)[0].h.SequenceNumber != 1400 || (*out)[0].h.PayloadType != 96 ||
		len((*out)[0].payload) != 2 {
		t.Errorf("without RTX: %+v", *out)
	}
}

// For a simulcast subscriber, a NACK names the subscriber's rewritten sequence numbers:
// the packet is found in the layer it came from and resent with the subscriber's
// timestamp.
func TestRetransmitSimulcast(t *testing.T) {
	f := &forwarder{video: true, simulcast: true}
	q, h := &layer{rid: "q"}, &layer{rid: "h"}
	f.layers.Store(&[]*layer{q, h})
	d := newDownTrack(nil, nil, 90000, true)
	q.cache.add(&rtp.Header{SequenceNumber: 50, Timestamp: 5000}, []byte{1})
	h.cache.add(&rtp.Header{SequenceNumber: 900, Timestamp: 9000}, []byte{2})
	d.sent[10%cacheSize] = sentPacket{layer: q, seq: 10, origin: 50, ts: 123}
	d.sent[11%cacheSize] = sentPacket{layer: h, seq: 11, origin: 900, ts: 456}

	st, out := recordingStream(7, 8, 96, 97)
	f.retransmit(d, st, &rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{10, 11, 12})}, time.Now())
	if len(*out) != 2 {
		t.Fatalf("%d packets resent, want 2 (12 was never sent)", len(*out))
	}
	for i, want := range []struct {
		seq     uint16
		ts      uint32
		payload byte
	}{{10, 123, 1}, {11, 456, 2}} {
		w := (*out)[i]
		if binary.BigEndian.Uint16(w.payload) != want.seq || w.h.Timestamp != want.ts || w.payload[2] != want.payload {
			t.Errorf("retransmission of %d: %+v %x", want.seq, w.h, w.payload)
		}
	}
}

// A flood of NACKs gets at most the budget resent: retransmitBurst at once, then
// retransmitRate per second.
func TestRetransmitBudget(t *testing.T) {
	f := &forwarder{video: true}
	l := &layer{}
	f.layers.Store(&[]*layer{l})
	var all []uint16
	for seq := uint16(0); seq < cacheSize; seq++ {
		l.cache.add(&rtp.Header{SequenceNumber: seq}, []byte{1})
		all = append(all, seq)
	}
	// One NACK naming every cached packet, sent again and again.
	nack := &rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers(all)}
	st, out := recordingStream(7, 8, 96, 97)
	t0 := time.Now()
	for range 10 {
		f.retransmit(&downTrack{}, st, nack, t0)
	}
	if len(*out) != retransmitBurst {
		t.Fatalf("%d packets resent for 10 NACKs of %d packets at once, want the burst, %d", len(*out), len(all), retransmitBurst)
	}
	f.retransmit(&downTrack{}, st, nack, t0.Add(100*time.Millisecond))
	if want := retransmitBurst + retransmitRate/10; len(*out) != want {
		t.Errorf("%d packets resent after 100 ms more, want %d", len(*out), want)
	}
}
