package bwe_test

import (
	"math"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"

	"github.com/parley-rtc/parley/bwe"
)

// FuzzFeedback hands an estimator arbitrary transport-wide feedback, as a hostile
// subscriber can send it (the SFU decrypts a subscriber's SRTCP and passes each feedback
// packet pion/rtcp parses to the subscriber's estimator): after 300 packets sent, each
// feedback packet in data, arriving step ms apart. The estimator must not panic, its
// estimate must stay within its bounds, and its state must stay finite: a NaN or an
// infinity there would stick. The seeds are feedback from Pion's own recorder: every
// packet arrived, some lost, and arrivals out of order.
func FuzzFeedback(f *testing.F) {
	for _, lost := range []int{0, 3, 7} {
		rec := twcc.NewRecorder(1)
		at := int64(0)
		for i := range 300 {
			if lost > 0 && i%lost == 0 {
				continue
			}
			seq := uint16(i)
			if lost == 7 && i%10 == 1 { // swapped with the next
				seq++
			} else if lost == 7 && i%10 == 2 {
				seq--
			}
			at += int64(i%5) * 1000 // µs
			rec.Record(1, seq, at)
		}
		var data []byte
		for _, p := range rec.BuildFeedbackPacket() {
			b, err := p.Marshal()
			if err != nil {
				f.Fatal(err)
			}
			data = append(data, b...)
		}
		f.Add(data, uint16(100))
	}
	cfg := bwe.Config{Initial: 1_000_000, Min: 30_000, Max: 5_000_000}
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		pkts, err := rtcp.Unmarshal(data)
		if err != nil {
			return // dropped before the estimator, as the SFU drops it
		}
		e := bwe.New(cfg)
		now := time.Unix(1_700_000_000, 0)
		for i := range uint16(300) {
			e.Sent(i, 1200, now)
			now = now.Add(time.Millisecond)
		}
		for _, p := range pkts {
			fb, ok := p.(*rtcp.TransportLayerCC)
			if !ok {
				continue
			}
			now = now.Add(time.Duration(step) * time.Millisecond)
			e.Feedback(fb, now)
			st := e.Stats()
			if st.Target < cfg.Min || st.Target > cfg.Max {
				t.Fatalf("estimate %d bit/s, outside [%d, %d]", st.Target, cfg.Min, cfg.Max)
			}
			if st.DelayRate < cfg.Min || st.DelayRate > cfg.Max || st.LossRate < 0 || st.Acked < 0 {
				t.Fatalf("state out of range: %+v", st)
			}
			if math.IsNaN(st.Loss) || st.Loss < 0 || st.Loss > 1 {
				t.Fatalf("loss fraction %v", st.Loss)
			}
			if math.IsNaN(st.Threshold) || math.IsInf(st.Threshold, 0) {
				t.Fatalf("over-use threshold %v", st.Threshold)
			}
		}
	})
}
