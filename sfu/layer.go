package sfu

import "time"

// Simulcast layer choice (sans-I/O). A publisher sends up to three layers of one video
// (RFC 8853 simulcast, told apart by RID, RFC 8852); each subscriber gets one of them, the
// best that its bandwidth estimate allows. The choice is a plain value driven by the
// estimate and the measured bitrates: no clock, no locks.

const (
	// upMargin: a layer is chosen on the way up only if the budget is at least this many
	// times its bitrate, so that a layer that barely fits is not taken.
	upMargin = 1.25
	// firstHold is how long, after a move down, the selector waits before it moves up
	// again; each move down soon after a move up (the higher layer did not fit after all)
	// doubles it, up to maxHold.
	firstHold = 4 * time.Second
	maxHold   = 64 * time.Second
	// calmAfter: a move up that lasted this long was right; the hold goes back to firstHold.
	calmAfter = 30 * time.Second
)

// layerSelector chooses the layer one subscriber receives of one simulcast track.
type layerSelector struct {
	current int       // the chosen layer's index, -1 before the first choice
	upAfter time.Time // no move up before
	hold    time.Duration
	lastUp  time.Time
}

func newLayerSelector() layerSelector { return layerSelector{current: -1, hold: firstHold} }

// choose takes the subscriber's budget for this track (bit/s) and each layer's measured
// bitrate (bit/s, from the lowest quality to the highest; 0 for a layer that is not
// arriving) and returns the index of the layer to receive, or -1 when no layer arrives.
//
// The rule: stay on the current layer while it fits in the budget; move down to the best
// layer that fits when it does not (or to the lowest arriving one, when none fits); move up
// to the best layer whose bitrate times upMargin fits, but not within the hold time after a
// move down.
func (s *layerSelector) choose(now time.Time, budget int, bitrates []int) int {
	lowest, fits, fitsUp := -1, -1, -1
	for i, r := range bitrates {
		if r <= 0 {
			continue
		}
		if lowest < 0 {
			lowest = i
		}
		if r <= budget {
			fits = i
		}
		if float64(r)*upMargin <= float64(budget) {
			fitsUp = i
		}
	}
	if lowest < 0 {
		return s.current // nothing arrives: keep what was chosen until something does
	}
	next := s.current
	switch {
	case s.current < 0 || s.current >= len(bitrates) || bitrates[s.current] <= 0:
		// The first choice, or the current layer stopped: the best that fits.
		next = max(fits, lowest)
	case fits < s.current:
		next = max(fits, lowest)
	case fitsUp > s.current && !now.Before(s.upAfter):
		next = fitsUp
	}
	if s.current >= 0 && next < s.current {
		if !s.lastUp.IsZero() && now.Sub(s.lastUp) < calmAfter {
			s.hold = min(2*s.hold, maxHold)
		}
		s.upAfter = now.Add(s.hold)
	} else if next > s.current && s.current >= 0 {
		s.lastUp = now
	}
	if !s.lastUp.IsZero() && now.Sub(s.lastUp) >= calmAfter && now.After(s.upAfter) {
		s.hold = firstHold
	}
	s.current = next
	return next
}

// rewriter makes the packets of the layers a subscriber receives one RTP stream: sequence
// numbers continue by one across a layer switch, so that the switch does not look like
// loss (RFC 3550 §A.1), and timestamps keep increasing by the wall-clock time between the
// last packet of the old layer and the first of the new one. Layers have their own random
// sequence and timestamp bases (RFC 3550 §5.1), so each switch sets new offsets.
type rewriter struct {
	started bool
	seqOff  uint16
	tsOff   uint32
	base    uint16 // the layer's first sequence number since the switch: older ones are dropped
	lastSeq uint16 // the highest sequence number sent
	lastTS  uint32 // the timestamp sent with it
	lastAt  int64  // when it was sent, ns
	clock   uint32 // RTP clock rate, Hz
}

// switchTo starts the stream of a new layer at its packet seq/ts, at time now (ns).
func (r *rewriter) switchTo(seq uint16, ts uint32, now int64) {
	if !r.started {
		r.started = true
		r.seqOff, r.tsOff = 0, 0
		r.lastSeq, r.lastTS, r.lastAt = seq-1, ts, now
	} else {
		r.seqOff = r.lastSeq + 1 - seq
		gap := uint32(1)
		if d := now - r.lastAt; d > 0 {
			gap = max(1, uint32(d*int64(r.clock)/int64(time.Second)))
		}
		r.tsOff = r.lastTS + gap - ts
	}
	r.base = seq
}

// skip leaves a packet of the current layer out of the subscriber's stream (a padding-only
// packet, which a publisher's bandwidth probing sends, RFC 3550 §5.1): the packets after it
// take its sequence number on, so the subscriber sees no gap. Only the next packet in order
// can be left out; ok is false for any other, which must then be sent as it is. Packets
// older than it are dropped from then on, as after a switch: with the offset changed, they
// would take sequence numbers already sent.
func (r *rewriter) skip(seq uint16) (ok bool) {
	if !r.started || seq+r.seqOff != r.lastSeq+1 || int16(seq-r.base) < 0 {
		return false
	}
	r.seqOff--
	r.base = seq + 1
	return true
}

// rewrite maps a packet of the current layer to the subscriber's stream; ok is false for a
// packet from before the switch, which the subscriber must not get.
func (r *rewriter) rewrite(seq uint16, ts uint32, now int64) (outSeq uint16, outTS uint32, ok bool) {
	d := int16(seq - r.base)
	if d < 0 {
		return 0, 0, false
	}
	if d > 1<<14 {
		// Keep base within half the sequence space of the newest packets, so that the
		// comparison above stays right however long the layer lasts.
		r.base = seq - 1<<14
	}
	outSeq, outTS = seq+r.seqOff, ts+r.tsOff
	if int16(outSeq-r.lastSeq) > 0 {
		r.lastSeq, r.lastTS, r.lastAt = outSeq, outTS, now
	}
	return outSeq, outTS, true
}
