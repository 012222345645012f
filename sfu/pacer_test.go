package sfu

import (
	"errors"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
)

// The pacer writes each packet at once to its stream's writer and refuses unknown SSRCs;
// rtxAround sends retransmissions around it and gives it an attributes map it reuses.
func TestForwardPacerAndRTXAround(t *testing.T) {
	p := newForwardPacer()
	var got []uint32
	var attrs []interceptor.Attributes
	net := interceptor.RTPWriterFunc(func(h *rtp.Header, _ []byte, a interceptor.Attributes) (int, error) {
		got = append(got, h.SSRC)
		attrs = append(attrs, a)
		return 1, nil
	})
	p.AddStream(1, net)
	if _, err := p.Write(&rtp.Header{SSRC: 1}, nil, nil); err != nil || len(got) != 1 {
		t.Fatalf("write on SSRC 1: %v, %d written", err, len(got))
	}
	if _, err := p.Write(&rtp.Header{SSRC: 2}, nil, nil); !errors.Is(err, gcc.ErrUnknownStream) {
		t.Errorf("write on unknown SSRC 2: %v, want ErrUnknownStream", err)
	}

	// An estimator stand-in that, like gcc's, records the attributes it is given.
	est := &bindRecorder{pacer: p}
	i := &rtxAroundInterceptor{Interceptor: est}
	w := i.BindLocalStream(&interceptor.StreamInfo{SSRC: 3, SSRCRetransmission: 4}, net)
	got, attrs = nil, nil
	for _, ssrc := range []uint32{3, 4, 3} {
		if _, err := w.Write(&rtp.Header{SSRC: ssrc}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 3 || est.seen != 2 {
		t.Fatalf("wrote %v, the estimator saw %d packets; want 3 written, 2 (SSRC 3) through the estimator", got, est.seen)
	}
	if attrs[0] == nil || attrs[2] == nil || attrs[1] != nil {
		t.Errorf("attributes given %v; want a map with each media packet, none with the retransmission", attrs)
	}
}

type bindRecorder struct {
	interceptor.NoOp
	pacer *forwardPacer
	seen  int
}

func (b *bindRecorder) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	b.pacer.AddStream(info.SSRC, interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, a interceptor.Attributes) (int, error) {
		b.seen++
		a.Set(0, uint8(5)) // panics on a nil map, as gcc's would write into it
		return w.Write(h, p, a)
	}))
	return b.pacer
}
