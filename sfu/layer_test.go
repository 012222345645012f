package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestLayerSelector(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rates := []int{150_000, 500_000, 1_200_000} // q, h, f
	type step struct {
		at     float64 // s
		budget int     // bit/s
		rates  []int
		want   int
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"first choice: the best that fits", []step{{0, 2_000_000, rates, 2}}},
		{"first choice, nothing fits: the lowest", []step{{0, 100_000, rates, 0}}},
		{"first choice skips a stopped layer", []step{{0, 100_000, []int{0, 500_000, 1_200_000}, 1}}},
		{"nothing arrives yet", []step{{0, 2_000_000, []int{0, 0, 0}, -1}}},
		{"stays while the current layer fits, without the up margin", []step{
			{0, 2_000_000, rates, 2}, {1, 1_250_000, rates, 2}, {2, 1_200_000, rates, 2}}},
		{"down as soon as it does not fit", []step{
			{0, 2_000_000, rates, 2}, {1, 1_100_000, rates, 1}, {2, 400_000, rates, 0}}},
		{"up only with the margin", []step{
			{0, 400_000, rates, 0}, {10, 600_000, rates, 0}, {11, 625_000, rates, 1},
			{12, 1_400_000, rates, 1}, {13, 1_500_000, rates, 2}}},
		{"no move up within the hold after a move down", []step{
			{0, 2_000_000, rates, 2}, {1, 1_000_000, rates, 1}, {3, 2_000_000, rates, 1},
			{4.9, 2_000_000, rates, 1}, {5, 2_000_000, rates, 2}}},
		{"a failed move up doubles the hold", []step{
			{0, 2_000_000, rates, 2}, {1, 1_000_000, rates, 1}, // hold 4 s: up at 5
			{5, 2_000_000, rates, 2}, {6, 1_000_000, rates, 1}, // down 1 s after up: hold 8 s
			{13.9, 2_000_000, rates, 1}, {14, 2_000_000, rates, 2},
			{15, 1_000_000, rates, 1}, // again: 16 s
			{30.9, 2_000_000, rates, 1}, {31, 2_000_000, rates, 2}}},
		{"a lasting move up resets the hold", []step{
			{0, 2_000_000, rates, 2}, {1, 1_000_000, rates, 1},
			{5, 2_000_000, rates, 2}, {6, 1_000_000, rates, 1}, // hold 8 s
			{14, 2_000_000, rates, 2}, {50, 2_000_000, rates, 2}, // lasted: back to 4 s
			{51, 1_000_000, rates, 1}, {54.9, 2_000_000, rates, 1}, {55, 2_000_000, rates, 2}}},
		{"the current layer stops: the best that fits at once", []step{
			{0, 2_000_000, rates, 2}, {1, 2_000_000, []int{150_000, 500_000, 0}, 1}}},
		{"all stop: keep the choice", []step{
			{0, 2_000_000, rates, 2}, {1, 2_000_000, []int{0, 0, 0}, 2}}},
		{"one layer (no simulcast)", []step{{0, 10_000, []int{300_000}, 0}, {1, 1_000_000, []int{300_000}, 0}}},
	} {
		s := newLayerSelector()
		for i, st := range c.steps {
			if got := s.choose(at(st.at), st.budget, st.rates); got != st.want {
				t.Errorf("%s: step %d (t=%.1fs, budget %d, rates %v): layer %d, want %d",
					c.name, i, st.at, st.budget, st.rates, got, st.want)
				break
			}
		}
	}
}

func TestRewriterContinuousAcrossSwitches(t *testing.T) {
	const clock = 90000
	ms := func(v int64) int64 { return v * int64(time.Millisecond) }
	r := rewriter{clock: clock}
	type pkt struct {
		switchTo bool
		seq      uint16
		ts       uint32
		now      int64
		wantSeq  uint16
		wantTS   uint32
		wantOK   bool
	}
	for i, p := range []pkt{
		// Layer A from 65534: sequence numbers wrap, nothing changes.
		{true, 65534, 1000, ms(0), 65534, 1000, true},
		{false, 65535, 1000, ms(1), 65535, 1000, true},
		{false, 0, 4000, ms(33), 0, 4000, true},
		{false, 1, 4000, ms(34), 1, 4000, true},
		// A late packet of A (repaired) keeps its place.
		{false, 65535, 1000, ms(40), 65535, 1000, true},
		// Switch to layer B at its key frame, 60 ms after A's last newest packet (34 ms):
		// the sequence goes on at 2, the timestamp 26 ms (2340 ticks) after A's last one.
		{true, 30000, 777777, ms(60), 2, 4000 + 2340, true},
		{false, 30001, 777777, ms(61), 3, 4000 + 2340, true},
		{false, 30002, 780777, ms(93), 4, 4000 + 2340 + 3000, true},
		// A packet of B from before the switch is dropped.
		{false, 29999, 774777, ms(94), 0, 0, false},
		// Back to A, at a much later sequence number: continuous again.
		{true, 500, 90000, ms(100), 5, 4000 + 2340 + 3000 + 630, true},
		{false, 501, 90000, ms(101), 6, 4000 + 2340 + 3000 + 630, true},
	} {
		if p.switchTo {
			r.switchTo(p.seq, p.ts, p.now)
		}
		seq, ts, ok := r.rewrite(p.seq, p.ts, p.now)
		if ok != p.wantOK || (ok && (seq != p.wantSeq || ts != p.wantTS)) {
			t.Errorf("packet %d (seq %d ts %d): got %d %d %v, want %d %d %v", i, p.seq, p.ts, seq, ts, ok,
				p.wantSeq, p.wantTS, p.wantOK)
		}
	}
}

func TestRewriterLongLayer(t *testing.T) {
	r := rewriter{clock: 90000}
	r.switchTo(100, 0, 0)
	// 200000 packets in order: every one goes through, one more each time.
	seq := uint16(100)
	for i := range 200000 {
		out, _, ok := r.rewrite(seq, uint32(i), int64(i))
		if !ok || out != seq {
			t.Fatalf("packet %d (seq %d): got %d %v", i, seq, out, ok)
		}
		seq++
	}
}

// TestAdmitSwitchesAtKeyFrame drives a subscriber's downTrack with the packets of two
// layers: it stays on the first until a key frame of the target arrives, and its output
// sequence numbers have no gap.
func TestAdmitSwitchesAtKeyFrame(t *testing.T) {
	lo, hi := &layer{rid: "q"}, &layer{rid: "f"}
	d := newDownTrack(nil, nil, 90000, true)
	d.target.Store(lo)
	key := []byte{0x10, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a}
	delta := []byte{0x10, 0x51}
	var out []uint16
	send := func(l *layer, seq uint16, payload []byte, now int64) {
		h := rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 3000}
		if d.admit(l, &h, vp8KeyFrameStart(payload), now) {
			out = append(out, h.SequenceNumber)
		}
	}
	send(lo, 10, delta, 0) // no key frame yet: nothing
	send(hi, 900, key, 0)  // not the target
	send(lo, 11, key, 1)
	send(lo, 12, delta, 2)
	d.target.Store(hi)
	send(hi, 901, delta, 3) // the target, but no key frame: still lo
	send(lo, 13, delta, 4)
	send(hi, 902, key, 5) // switch
	send(lo, 14, delta, 6)
	send(hi, 903, delta, 7)
	want := []uint16{11, 12, 13, 14, 15}
	if len(out) != len(want) {
		t.Fatalf("sequence numbers out: %v, want %v", out, want)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("sequence numbers out: %v, want %v", out, want)
		}
	}
	if d.cur.Load() != hi || d.switches.Load() != 2 {
		t.Errorf("current %v, switches %d; want f, 2", d.cur.Load().rid, d.switches.Load())
	}
}

// BenchmarkAdmit measures the per-packet, per-subscriber decision and rewrite of the
// simulcast forwarding path; it must not allocate.
func BenchmarkAdmit(b *testing.B) {
	l := &layer{rid: "f"}
	d := newDownTrack(nil, nil, 90000, true)
	d.target.Store(l)
	payload := []byte{0x90, 0x80, 0x81, 0x05, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a}
	h := rtp.Header{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.SequenceNumber, h.Timestamp = uint16(i), uint32(i/5)*3000
		d.mu.Lock()
		d.admit(l, &h, vp8KeyFrameStart(payload), int64(i))
		d.mu.Unlock()
	}
}

// A padding-only packet in order is left out without a gap in the subscriber's sequence
// numbers; one out of order is not, and older packets than a skipped one are dropped.
func TestRewriterSkipsPadding(t *testing.T) {
	var r rewriter
	r.clock = 90000
	r.switchTo(100, 5000, 0)
	out := func(seq uint16) uint16 {
		t.Helper()
		s, _, ok := r.rewrite(seq, 5000, 0)
		if !ok {
			t.Fatalf("packet %d dropped", seq)
		}
		return s
	}
	first := out(100)
	if out(101) != first+1 {
		t.Fatal("101 does not follow 100")
	}
	if !r.skip(102) {
		t.Fatal("padding 102, next in order, not skipped")
	}
	if got := out(103); got != first+2 {
		t.Errorf("103 after skipped 102 got %d, want %d (no gap)", got, first+2)
	}
	if r.skip(105) {
		t.Error("padding 105 skipped while 104 is missing: 104 would collide with it")
	}
	if _, _, ok := r.rewrite(102, 5000, 0); ok {
		t.Error("a late copy of skipped 102 was sent: it would reuse 103's sequence number")
	}
	if got := out(104); got != first+3 {
		t.Errorf("104 got %d, want %d", got, first+3)
	}
}

// A layer knows a packet it received before, and a new one, however old its sequence
// number, is not taken for one.
func TestLayerSeenBefore(t *testing.T) {
	var l layer
	for _, seq := range []uint16{65530, 65531, 65535, 0, 3} {
		if l.seenBefore(seq) {
			t.Errorf("new packet %d taken for a duplicate", seq)
		}
	}
	for _, seq := range []uint16{65531, 0, 3} {
		if !l.seenBefore(seq) {
			t.Errorf("copy of %d not seen as a duplicate", seq)
		}
	}
	if l.seenBefore(1) { // lost, then repaired: new here
		t.Error("a late first copy of 1 taken for a duplicate")
	}
	if l.seenBefore(3 + 1024) { // the same slot as 3, a newer packet
		t.Error("packet 1027 taken for a duplicate of 3")
	}
	if n := l.dups.Load(); n != 3 {
		t.Errorf("%d duplicates counted, want 3", n)
	}
}
