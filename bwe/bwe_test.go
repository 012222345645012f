package bwe_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"

	"github.com/parley-rtc/parley/bwe"
)

// link is a simulated path: a FIFO bottleneck of capacity bit/s with a queue of at most
// queue of delay, then a fixed one-way delay; random loss after the queue. The receiver
// records arrivals in Pion's transport-wide feedback recorder (what Pion's TWCC sender
// interceptor uses), whose feedback reaches the estimator after the same delay.
type link struct {
	capacity float64 // bit/s
	queue    time.Duration
	delay    time.Duration
	loss     float64
	rng      *rand.Rand

	freeAt   time.Time // when the bottleneck has sent what it holds
	rec      *twcc.Recorder
	arrivals []arrival // in flight, by arrival time
}

type arrival struct {
	seq uint16
	at  time.Time
}

func newLink(capacity float64, queue, delay time.Duration, loss float64) *link {
	return &link{capacity: capacity, queue: queue, delay: delay, loss: loss,
		rng: rand.New(rand.NewPCG(1, 2)), rec: twcc.NewRecorder(1)}
}

// send puts a packet of size bytes on the link at now.
func (l *link) send(seq uint16, size int, now time.Time) {
	start := now
	if l.freeAt.After(now) {
		start = l.freeAt
	}
	if start.Sub(now) > l.queue {
		return // the queue is full: dropped
	}
	l.freeAt = start.Add(time.Duration(float64(size*8) / l.capacity * float64(time.Second)))
	if l.rng.Float64() < l.loss {
		return
	}
	l.arrivals = append(l.arrivals, arrival{seq, l.freeAt.Add(l.delay)})
}

// deliver records the packets that have arrived by now.
func (l *link) deliver(now time.Time) {
	n := 0
	for _, a := range l.arrivals {
		if a.at.After(now) {
			l.arrivals[n] = a
			n++
			continue
		}
		l.rec.Record(2, a.seq, a.at.UnixMicro())
	}
	l.arrivals = l.arrivals[:n]
}

// run sends media at the estimate (at most most bit/s; 30 frames a second of 1200-byte
// packets) over l for d, with feedback every 100 ms, and returns the estimator and the
// estimate at each second.
func run(t *testing.T, e *bwe.Estimator, l *link, d time.Duration, most float64) []int {
	t.Helper()
	start := time.Unix(1_700_000_000, 0)
	var seq uint16
	var pending []*rtcp.TransportLayerCC
	var pendingAt []time.Time
	var bits float64
	var targets []int
	const step = time.Millisecond
	for at := time.Duration(0); at < d; at += step {
		now := start.Add(at)
		if at%(33*time.Millisecond) == 0 {
			bits += min(float64(e.Target()), most) / 30
			for bits >= 1200*8 {
				e.Sent(seq, 1200, now)
				l.send(seq, 1200, now)
				seq++
				bits -= 1200 * 8
			}
		}
		l.deliver(now)
		if at%(100*time.Millisecond) == 0 {
			for _, p := range l.rec.BuildFeedbackPacket() {
				// Through the wire format, as it would arrive.
				raw, err := p.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				pkts, err := rtcp.Unmarshal(raw)
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range pkts {
					if fb, ok := q.(*rtcp.TransportLayerCC); ok {
						pending = append(pending, fb)
						pendingAt = append(pendingAt, now.Add(l.delay))
					}
				}
			}
		}
		for len(pending) > 0 && !pendingAt[0].After(now) {
			e.Feedback(pending[0], now)
			pending, pendingAt = pending[1:], pendingAt[1:]
		}
		if at%time.Second == 0 {
			targets = append(targets, e.Target())
		}
	}
	return targets
}

// An open path: the estimate neither drops to what is sent nor stops growing, so that a
// sender limited by its media may try more.
func TestOpenPath(t *testing.T) {
	e := bwe.New(bwe.Config{Initial: 1_000_000})
	got := run(t, e, newLink(50e6, time.Second, 20*time.Millisecond, 0), 20*time.Second, 800_000)
	st := e.Stats()
	t.Logf("estimates %v; %+v", got, st)
	if st.Acked < 700_000 || st.Acked > 900_000 {
		t.Errorf("acknowledged bitrate %d bit/s, want about 800 kbit/s", st.Acked)
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Fatalf("estimates %v: down without loss or delay", got)
		}
	}
	if got[len(got)-1] < 2_000_000 {
		t.Errorf("estimate %d bit/s after 20 s, want it grown", got[len(got)-1])
	}
	if st.Usage != bwe.Normal || st.Loss != 0 {
		t.Errorf("usage %v, loss %.2f; want normal, no loss", st.Usage, st.Loss)
	}
}

// settles runs a sender on l, starting at initial bit/s, and checks that each estimate of
// the last 10 s is within lo and hi bit/s.
func settles(t *testing.T, initial int, l *link, d time.Duration, lo, hi int) {
	t.Helper()
	e := bwe.New(bwe.Config{Initial: initial})
	got := run(t, e, l, d, 5_000_000)
	t.Logf("estimates %v; %+v", got, e.Stats())
	last := got[len(got)-10:]
	for _, v := range last {
		if v < lo || v > hi {
			t.Fatalf("estimates of the last 10 s %v, want each within %d-%d kbit/s", last, lo/1000, hi/1000)
		}
	}
}

// A bottleneck of 600 kbit/s with a deep queue and no loss: only delay tells, and the
// estimate must come down to about the capacity and stay near it.
func TestQueueingBottleneck(t *testing.T) {
	settles(t, 2_000_000, newLink(600_000, 2*time.Second, 20*time.Millisecond, 0), 40*time.Second, 300_000, 900_000)
}

// Random loss of 20 %, whatever the rate: the loss-based part brings the estimate down.
func TestRandomLoss(t *testing.T) {
	e := bwe.New(bwe.Config{Initial: 1_500_000})
	got := run(t, e, newLink(50e6, time.Second, 20*time.Millisecond, 0.2), 5*time.Second, 5_000_000)
	t.Logf("estimates %v; %+v", got, e.Stats())
	if e.Target() > 500_000 {
		t.Errorf("estimate %d bit/s after 5 s at 20 %% loss, want it brought down from 1.5 Mbit/s", e.Target())
	}
}

// A policer (a bottleneck of 640 kbit/s that holds 20 ms at most, and drops what does not
// fit), as in the simulcast test: the estimate comes down to about the policed rate and
// stays near it.
func TestPolicer(t *testing.T) {
	settles(t, 1_500_000, newLink(640_000, 20*time.Millisecond, 20*time.Millisecond, 0), 30*time.Second, 250_000, 1_000_000)
}

// Loss below 2 % lets the estimate grow, up to what the delay-based part allows.
func TestLightLossGrows(t *testing.T) {
	e := bwe.New(bwe.Config{Initial: 300_000})
	got := run(t, e, newLink(50e6, time.Second, 20*time.Millisecond, 0.01), 20*time.Second, 5_000_000)
	t.Logf("estimates %v; %+v", got, e.Stats())
	if e.Target() < 1_000_000 {
		t.Errorf("estimate %d bit/s after 20 s from 300 kbit/s on an open path, want it grown", e.Target())
	}
}

// Without feedback the estimate stays where it started, within the bounds.
func TestBounds(t *testing.T) {
	if got := bwe.New(bwe.Config{}).Target(); got != bwe.DefaultInitial {
		t.Errorf("zero Config: %d bit/s, want %d", got, bwe.DefaultInitial)
	}
	if got := bwe.New(bwe.Config{Initial: 10, Min: 100_000, Max: 200_000}).Target(); got != 100_000 {
		t.Errorf("initial below Min: %d bit/s, want Min", got)
	}
	e := bwe.New(bwe.Config{Initial: 1_000_000, Min: 400_000})
	run(t, e, newLink(50e6, time.Second, 20*time.Millisecond, 0.5), 10*time.Second, 5_000_000)
	if got := e.Target(); got != 400_000 {
		t.Errorf("at 50 %% loss: %d bit/s, want Min (400 kbit/s)", got)
	}
}

// Feedback about packets never sent, or with fewer arrival deltas than packets it says
// arrived, changes nothing and does not fail.
func TestHostileFeedback(t *testing.T) {
	e := bwe.New(bwe.Config{})
	now := time.Unix(1_700_000_000, 0)
	for i := range uint16(10) {
		e.Sent(i, 1200, now.Add(time.Duration(i)*time.Millisecond))
	}
	before := e.Stats()
	e.Feedback(&rtcp.TransportLayerCC{BaseSequenceNumber: 5000, PacketStatusCount: 10,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 10}}}, now)
	e.Feedback(&rtcp.TransportLayerCC{BaseSequenceNumber: 0, PacketStatusCount: 10,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 60000}}}, now)
	if st := e.Stats(); st != before {
		t.Errorf("after hostile feedback %+v, want as before %+v", st, before)
	}
	// The same packets, reported lost with a status count beyond the chunks: they count,
	// once.
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: 0, PacketStatusCount: 60000,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 10}}}
	e.Feedback(fb, now)
	e.Feedback(fb, now.Add(time.Second))
	if st := e.Stats(); st.Loss != 1 || st.Target >= before.Target {
		t.Errorf("after 10 packets reported lost: %+v, want loss 1 and the estimate down", st)
	}
}

// BenchmarkHostileFeedback: a feedback packet claiming 65,535 statuses in eight run-length
// chunks costs no more than one about the packets the history holds.
func BenchmarkHostileFeedback(b *testing.B) {
	e := bwe.New(bwe.Config{})
	chunks := make([]rtcp.PacketStatusChunk, 8)
	for i := range chunks {
		chunks[i] = &rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 8191}
	}
	fb := &rtcp.TransportLayerCC{PacketStatusCount: 65535, PacketChunks: chunks}
	now := time.Now()
	for b.Loop() {
		e.Feedback(fb, now)
	}
}

// Sent, per packet, costs no allocation.
func TestSentAllocs(t *testing.T) {
	e := bwe.New(bwe.Config{})
	now := time.Now()
	var seq uint16
	if n := testing.AllocsPerRun(1000, func() { e.Sent(seq, 1200, now); seq++ }); n != 0 {
		t.Errorf("%v allocations per packet sent", n)
	}
}

func BenchmarkSent(b *testing.B) {
	e := bwe.New(bwe.Config{})
	now := time.Now()
	var seq uint16
	for b.Loop() {
		e.Sent(seq, 1200, now)
		seq++
	}
}
