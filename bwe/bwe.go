// Package bwe estimates the bandwidth towards one peer from what was sent to it and the
// transport-wide congestion control feedback it returns
// (draft-holmer-rmcat-transport-wide-cc-extensions-01): send-side estimation after GCC
// (draft-ietf-rmcat-gcc-02), a delay-based part and a loss-based part.
//
// An Estimator is a plain value (sans-I/O): hand it each packet sent and each feedback
// packet, with the time, and ask it for the estimate. It holds no clock, goroutine or lock,
// and a packet sent costs no allocation.
package bwe

import (
	"math"
	"time"

	"github.com/pion/rtcp"
)

// Defaults of Config.
const (
	DefaultInitial = 1_500_000 // bit/s
	DefaultMin     = 50_000
	DefaultMax     = 20_000_000
)

// Config bounds an estimate. Its zero value is the defaults above.
type Config struct {
	Initial int // bit/s, the estimate before any feedback
	Min     int // bit/s
	Max     int // bit/s
}

// Tuning, after draft-ietf-rmcat-gcc-02 and the trendline filter of its reference
// implementation.
const (
	// historySize is how many packets sent are remembered for their feedback: 2 s of a
	// 5 Mbit/s video stream. Feedback comes every 50-100 ms.
	historySize = 2048
	// burstTime: packets sent within this of a group's first are one group (§5.2).
	burstTime = 5 * time.Millisecond
	// The trendline filter: a linear regression over the last trendWindow groups of the
	// accumulated, smoothed delay variation against arrival time.
	trendWindow    = 20
	trendSmoothing = 0.9
	trendGain      = 4.0
	// The over-use detector's adaptive threshold (§5.4), in ms, and its gains.
	thresholdInitial = 12.5
	thresholdMin     = 6
	thresholdMax     = 600
	thresholdUp      = 0.0087
	thresholdDown    = 0.039
	overuseTime      = 10 * time.Millisecond // sustained over-use before it counts
	// The rate controller (§5.5): a decrease to beta times the acknowledged bitrate, an
	// increase by 8 % a second, or near the last decreases by about a packet per response
	// time, stopping at maxOverAcked times the acknowledged bitrate plus 10 kbit/s.
	beta          = 0.85
	increaseRate  = 1.08
	responseTime  = 200 * time.Millisecond
	maxOverAcked  = 1.5
	decreaseEvery = 200 * time.Millisecond
	// The acknowledged bitrate is measured over arrival windows of this length.
	ackedWindow = 500 * time.Millisecond
	// The loss-based controller (§6): up by lossIncrease below lossLow, down by half the
	// loss above lossHigh, at most once per lossEvery each way.
	lossLow      = 0.02
	lossHigh     = 0.10
	lossIncrease = 1.05
	lossEvery    = 200 * time.Millisecond
	lossAvgTime  = 200 * time.Millisecond
)

// Usage is the over-use detector's signal (§5.4).
type Usage int

const (
	Normal Usage = iota
	Overuse
	Underuse
)

func (u Usage) String() string {
	switch u {
	case Overuse:
		return "overuse"
	case Underuse:
		return "underuse"
	}
	return "normal"
}

type rateState int

const (
	stateIncrease rateState = iota
	stateHold
	stateDecrease
)

// sent is one packet of the history.
type sent struct {
	at       int64 // departure, ns since the Unix epoch
	size     uint16
	seq      uint16
	valid    bool
	reported bool // seen in feedback already
}

// group is a burst of packets sent within burstTime (§5.2).
type group struct {
	n           int
	firstSent   int64 // ns
	lastSent    int64
	lastArrival int64 // ns, the remote clock
}

// Estimator is the bandwidth estimate towards one peer.
type Estimator struct {
	cfg     Config
	history [historySize]sent

	// Loss-based.
	lossRate float64 // bit/s
	lossAvg  float64
	lossAt   time.Time
	lossUp   time.Time
	lossDown time.Time

	// Acknowledged bitrate.
	ackStart int64 // ns, arrival of the window's first packet; 0 for none
	ackBytes int
	acked    float64 // bit/s, 0 until measured

	// Arrival groups and the trendline filter.
	cur, prev    group
	numDeltas    int
	accDelay     float64 // ms
	smoothed     float64 // ms
	firstArrival int64   // ns
	trendX       [trendWindow]float64
	trendY       [trendWindow]float64
	trendNext    int
	prevSlope    float64
	threshold    float64 // ms
	thresholdAt  int64   // ns (arrival clock), 0 before the first update
	overTime     float64 // ms of sustained over-use, -1 when not over-using
	overCount    int
	usage        Usage

	// Delay-based rate control.
	state      rateState
	delayRate  float64 // bit/s
	rateAt     time.Time
	decreaseAt time.Time
	decAvg     float64 // kbit/s, average acknowledged bitrate at a decrease
	decVar     float64 // its variance, normalised (kbit/s)
}

// New returns an estimator at cfg.Initial.
func New(cfg Config) *Estimator {
	if cfg.Initial <= 0 {
		cfg.Initial = DefaultInitial
	}
	if cfg.Min <= 0 {
		cfg.Min = DefaultMin
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	cfg.Initial = min(max(cfg.Initial, cfg.Min), cfg.Max)
	return &Estimator{
		cfg:       cfg,
		lossRate:  float64(cfg.Initial),
		delayRate: float64(cfg.Initial),
		threshold: thresholdInitial,
		overTime:  -1,
		decVar:    0.4,
	}
}

// Sent records a packet sent with transport-wide sequence number seq: size bytes of RTP
// (header and payload), at departure time at.
func (e *Estimator) Sent(seq uint16, size int, at time.Time) {
	e.history[seq%historySize] = sent{at: at.UnixNano(), size: uint16(min(size, math.MaxUint16)), seq: seq, valid: true}
}

// Target is the estimate, bit/s.
func (e *Estimator) Target() int {
	return int(min(max(e.lossRate, float64(e.cfg.Min)), float64(e.cfg.Max)))
}

// Stats describes the estimator's state.
type Stats struct {
	Target    int     // bit/s
	DelayRate int     // bit/s, the delay-based estimate
	LossRate  int     // bit/s, the loss-based estimate
	Acked     int     // bit/s, the acknowledged bitrate; 0 until measured
	Loss      float64 // the average loss fraction
	Usage     Usage
	Threshold float64 // ms
}

// Stats returns the estimator's state.
func (e *Estimator) Stats() Stats {
	return Stats{Target: e.Target(), DelayRate: int(e.delayRate), LossRate: int(e.lossRate), Acked: int(e.acked),
		Loss: e.lossAvg, Usage: e.usage, Threshold: e.threshold}
}

// Feedback takes a transport-wide feedback packet received at now. Packets it reports
// that were not recorded with Sent (or are no longer remembered) are skipped; each packet
// counts once, the first time it is reported; statuses past the first historySize, or
// past the arrival deltas the packet carries, are ignored.
func (e *Estimator) Feedback(fb *rtcp.TransportLayerCC, now time.Time) {
	arrival := int64(fb.ReferenceTime) * int64(64*time.Millisecond)
	seq := fb.BaseSequenceNumber
	deltas := fb.RecvDeltas
	var lost, got int
	status := func(symbol uint16) {
		s := seq
		seq++
		if symbol == rtcp.TypeTCCPacketNotReceived {
			if h := e.lookup(s); h != nil && !h.reported {
				h.reported = true
				lost++
			}
			return
		}
		if len(deltas) == 0 {
			return // malformed: fewer deltas than received packets
		}
		arrival += deltas[0].Delta * int64(time.Microsecond)
		deltas = deltas[1:]
		if h := e.lookup(s); h != nil && !h.reported {
			h.reported = true
			got++
			e.acknowledged(h, arrival)
		}
	}
	// A feedback packet may claim up to 65,535 statuses in a few run-length chunks; more
	// than the history holds cannot all be known, and would only cost time.
	remaining := min(int(fb.PacketStatusCount), historySize)
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range min(int(c.RunLength), remaining) {
				status(c.PacketStatusSymbol)
			}
			remaining -= min(int(c.RunLength), remaining)
		case *rtcp.StatusVectorChunk:
			for _, symbol := range c.SymbolList[:min(len(c.SymbolList), remaining)] {
				status(symbol)
			}
			remaining -= min(len(c.SymbolList), remaining)
		}
	}
	if lost+got > 0 {
		e.updateLoss(float64(lost)/float64(lost+got), now)
	}
	if got > 0 {
		e.updateDelayRate(now)
	}
	e.lossRate = min(e.lossRate, e.delayRate)
}

func (e *Estimator) lookup(seq uint16) *sent {
	h := &e.history[seq%historySize]
	if !h.valid || h.seq != seq {
		return nil
	}
	return h
}

// acknowledged takes a packet that arrived (remote clock, ns).
func (e *Estimator) acknowledged(h *sent, arrival int64) {
	// The acknowledged bitrate.
	if e.ackStart == 0 || arrival < e.ackStart {
		e.ackStart, e.ackBytes = arrival, 0
	}
	if span := arrival - e.ackStart; span >= int64(ackedWindow) {
		e.acked = float64(e.ackBytes) * 8 / (float64(span) / 1e9)
		e.ackStart, e.ackBytes = arrival, 0
	}
	e.ackBytes += int(h.size)

	// Arrival groups (§5.2): a packet sent before the current group began arrived out of
	// order and is left out.
	switch {
	case e.cur.n == 0:
		e.cur = group{n: 1, firstSent: h.at, lastSent: h.at, lastArrival: arrival}
	case h.at < e.cur.firstSent:
	case h.at-e.cur.firstSent > int64(burstTime):
		if e.prev.n > 0 {
			e.groupDelta(e.cur.lastSent-e.prev.lastSent, e.cur.lastArrival-e.prev.lastArrival, e.cur.lastArrival)
		}
		e.prev = e.cur
		e.cur = group{n: 1, firstSent: h.at, lastSent: h.at, lastArrival: arrival}
	default:
		e.cur.n++
		e.cur.lastSent = max(e.cur.lastSent, h.at)
		e.cur.lastArrival = max(e.cur.lastArrival, arrival)
	}
}

// groupDelta takes the send and arrival time differences (ns) of two consecutive groups,
// the second of which completed arriving at arrival (ns): the trendline filter and the
// over-use detector (§5.3, §5.4).
func (e *Estimator) groupDelta(sendDelta, arrivalDelta, arrival int64) {
	delta := float64(arrivalDelta-sendDelta) / 1e6 // ms
	e.numDeltas = min(e.numDeltas+1, 1000)
	e.accDelay += delta
	e.smoothed = trendSmoothing*e.smoothed + (1-trendSmoothing)*e.accDelay
	if e.firstArrival == 0 {
		e.firstArrival = arrival
	}
	e.trendX[e.trendNext] = float64(arrival-e.firstArrival) / 1e6
	e.trendY[e.trendNext] = e.smoothed
	e.trendNext = (e.trendNext + 1) % trendWindow
	slope := e.prevSlope
	if e.numDeltas >= trendWindow { // the window is full
		if s, ok := linearSlope(e.trendX[:], e.trendY[:]); ok {
			slope = s
		}
	}
	e.detect(slope, float64(sendDelta)/1e6, arrival)
}

// linearSlope is the least-squares slope of y against x.
func linearSlope(x, y []float64) (float64, bool) {
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/float64(len(x)), sy/float64(len(y))
	var num, den float64
	for i := range x {
		num += (x[i] - mx) * (y[i] - my)
		den += (x[i] - mx) * (x[i] - mx)
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

// detect compares the trend with the adaptive threshold (§5.4).
func (e *Estimator) detect(slope, sendDeltaMs float64, arrival int64) {
	trend := float64(min(e.numDeltas, 60)) * slope * trendGain
	switch {
	case trend > e.threshold:
		if e.overTime < 0 {
			e.overTime = sendDeltaMs / 2
		} else {
			e.overTime += sendDeltaMs
		}
		e.overCount++
		if e.overTime > float64(overuseTime/time.Millisecond) && e.overCount > 1 && slope >= e.prevSlope {
			e.overTime, e.overCount = 0, 0
			e.usage = Overuse
		}
	case trend < -e.threshold:
		e.overTime, e.overCount = -1, 0
		e.usage = Underuse
	default:
		e.overTime, e.overCount = -1, 0
		e.usage = Normal
	}
	e.prevSlope = slope
	e.adaptThreshold(trend, arrival)
}

// adaptThreshold moves the threshold towards the trend's magnitude, faster down than up,
// so that it follows the delay variation of the path but not a sudden jump (§5.4).
func (e *Estimator) adaptThreshold(trend float64, arrival int64) {
	if e.thresholdAt == 0 {
		e.thresholdAt = arrival
	}
	m := math.Abs(trend)
	if m > e.threshold+15 {
		e.thresholdAt = arrival
		return
	}
	k := thresholdUp
	if m < e.threshold {
		k = thresholdDown
	}
	dt := min(float64(arrival-e.thresholdAt)/1e6, 100)
	e.threshold = min(max(e.threshold+k*(m-e.threshold)*dt, thresholdMin), thresholdMax)
	e.thresholdAt = arrival
}

// updateDelayRate is the delay-based rate controller (§5.5): its state follows the
// detector's signal, and its rate the state.
func (e *Estimator) updateDelayRate(now time.Time) {
	switch e.usage {
	case Overuse:
		e.state = stateDecrease
	case Underuse:
		e.state = stateHold
	default:
		if e.state == stateHold {
			e.state = stateIncrease
		}
	}
	dt := time.Second
	if !e.rateAt.IsZero() {
		dt = min(now.Sub(e.rateAt), time.Second)
	}
	e.rateAt = now
	switch e.state {
	case stateIncrease:
		r := e.delayRate
		if e.acked > 0 && e.nearConvergence() {
			// About one packet more per response time.
			bitsPerFrame := r / 30
			packets := math.Ceil(bitsPerFrame / (1200 * 8))
			r += max(1000, dt.Seconds()/responseTime.Seconds()*bitsPerFrame/packets)
		} else {
			r *= math.Pow(increaseRate, dt.Seconds())
		}
		// Up to maxOverAcked times the acknowledged bitrate, and no further while that is
		// above the rate. Once the rate is above it (the sender sends less than the
		// estimate), the rate grows on, as Pion's GCC lets it: an SFU sends no probes, so
		// this is what lets a subscriber try a higher layer again.
		if limit := maxOverAcked*e.acked + 10_000; e.acked > 0 && r > limit && limit > e.delayRate {
			r = limit
		}
		e.delayRate = r
	case stateDecrease:
		if e.decreaseAt.IsZero() || now.Sub(e.decreaseAt) >= decreaseEvery {
			e.decreaseAt = now
			if e.acked > 0 {
				e.delayRate = min(e.delayRate, beta*e.acked)
				e.noteDecrease(e.acked / 1000)
			} else {
				e.delayRate *= beta
			}
		}
		e.state = stateHold
	}
	e.delayRate = min(max(e.delayRate, float64(e.cfg.Min)), float64(e.cfg.Max))
}

// noteDecrease averages the acknowledged bitrate (kbit/s) at decreases: near it, the rate
// grows additively, as the link's capacity is likely there.
func (e *Estimator) noteDecrease(kbps float64) {
	const alpha = 0.05
	if e.decAvg == 0 {
		e.decAvg = kbps
	} else {
		e.decAvg = (1-alpha)*e.decAvg + alpha*kbps
	}
	norm := max(e.decAvg, 1)
	e.decVar = min(max((1-alpha)*e.decVar+alpha*(e.decAvg-kbps)*(e.decAvg-kbps)/norm, 0.4), 2.5)
}

func (e *Estimator) nearConvergence() bool {
	if e.decAvg == 0 {
		return false
	}
	sd := math.Sqrt(e.decVar * e.decAvg)
	kbps := e.acked / 1000
	return kbps > e.decAvg-3*sd && kbps < e.decAvg+3*sd
}

// updateLoss is the loss-based controller (§6), given the fraction of the packets a
// feedback reported for the first time that were lost.
func (e *Estimator) updateLoss(frac float64, now time.Time) {
	if e.lossAt.IsZero() {
		e.lossAvg = frac
	} else {
		w := math.Exp(-float64(now.Sub(e.lossAt)) / float64(lossAvgTime))
		e.lossAvg = frac + w*(e.lossAvg-frac)
	}
	e.lossAt = now
	up, down := max(e.lossAvg, frac), min(e.lossAvg, frac)
	switch {
	case up < lossLow && now.Sub(e.lossUp) >= lossEvery:
		e.lossUp = now
		e.lossRate *= lossIncrease
	case down > lossHigh && now.Sub(e.lossDown) >= lossEvery:
		e.lossDown = now
		e.lossRate *= 1 - 0.5*down
	}
	e.lossRate = min(max(e.lossRate, float64(e.cfg.Min)), float64(e.cfg.Max))
}
