package sfu

import (
	"time"
)

// The I/O shell of simulcast: a bandwidth estimate per subscriber peer connection, and a
// goroutine that, every allocationInterval, measures each layer's bitrate and lets each
// subscriber's layerSelector choose.

const (
	allocationInterval = 250 * time.Millisecond
	// The bandwidth estimate (package bwe) starts from initialEstimate, so that a new
	// subscriber is soon offered the top layer; loss and delay in the transport-wide
	// feedback bring it down where the link is narrower.
	initialEstimate = 1_500_000 // bit/s
	minEstimate     = 50_000
	maxEstimate     = 20_000_000
	// stoppedAfter: a layer that brought no packet for this many allocation intervals is
	// taken as stopped (the publisher's encoder paused it).
	stoppedAfter = 4
)

// rateMeter measures a layer's bitrate from its byte counter, smoothed over about a second.
type rateMeter struct {
	lastBytes uint64
	lastAt    time.Time
	idle      int // intervals without a packet
	bitrate   float64
}

// update takes the byte counter at now and returns the bitrate in bit/s, 0 when the layer
// has stopped.
func (m *rateMeter) update(now time.Time, bytes uint64) int {
	if m.lastAt.IsZero() {
		m.lastBytes, m.lastAt = bytes, now
		return 0
	}
	dt := now.Sub(m.lastAt).Seconds()
	if dt <= 0 {
		return int(m.bitrate)
	}
	delta := bytes - m.lastBytes
	m.lastBytes, m.lastAt = bytes, now
	if delta == 0 {
		m.idle++
	} else {
		m.idle = 0
	}
	r := float64(delta) * 8 / dt
	if m.bitrate == 0 {
		m.bitrate = r
	} else {
		m.bitrate += 0.25 * (r - m.bitrate)
	}
	if m.idle >= stoppedAfter {
		m.bitrate = 0
	}
	return int(m.bitrate)
}

func (s *SFU) allocateLoop() {
	t := time.NewTicker(allocationInterval)
	defer t.Stop()
	for {
		select {
		case <-s.loopDone:
			return
		case now := <-t.C:
			s.allocate(now)
		}
	}
}

// allocate measures every layer and chooses each subscriber's layers: its estimate, less
// what its tracks without simulcast take, split evenly among its simulcast tracks.
func (s *SFU) allocate(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.rooms {
		r.mu.Lock()
		if r.idle() { // everyone left: the room goes
			delete(s.rooms, id)
			r.events.close()
		} else {
			allocateRoom(r, now)
		}
		r.mu.Unlock()
	}
}

// allocateRoom is allocate for one room; r.mu is held.
func allocateRoom(r *room, now time.Time) {
	for _, p := range r.members {
		for _, f := range p.published {
			for _, l := range *f.layers.Load() {
				l.meter.update(now, l.bytes.Load())
			}
		}
	}
	var rates [4]int
	for _, p := range r.members {
		if p.gone || p.outbound == nil {
			continue
		}
		budget, n := p.outbound.target(), 0
		for f := range p.subs {
			if f.simulcast {
				n++
			} else {
				for _, l := range *f.layers.Load() {
					budget -= int(l.meter.bitrate)
				}
			}
		}
		if n == 0 {
			continue
		}
		budget /= n
		for f, sub := range p.subs {
			if !f.simulcast || !sub.negotiated {
				continue
			}
			layers := *f.layers.Load()
			br := rates[:0]
			for _, l := range layers {
				br = append(br, int(l.meter.bitrate))
			}
			i := sub.down.sel.choose(now, budget, br)
			if i < 0 {
				continue
			}
			sub.down.target.Store(layers[i])
			if sub.down.cur.Load() != layers[i] {
				f.keyFrameOf(layers[i])
			}
		}
	}
}

// SubscriptionStats describes one track a participant receives.
type SubscriptionStats struct {
	Track     string `json:"track"`     // the forwarded track's ID
	Publisher string `json:"publisher"` // the user ID of who publishes it
	// Layer is the RID of the simulcast layer it receives ("" for a track without
	// simulcast, or before the first key frame); TargetLayer the one chosen for it, which
	// it gets from the next key frame of that layer.
	Layer       string `json:"layer"`
	TargetLayer string `json:"target_layer"`
	Switches    uint64 `json:"switches"` // layer switches so far
}

// LayerStats describes one layer of a published track.
type LayerStats struct {
	Track   string `json:"track"`
	RID     string `json:"rid"`     // "" without simulcast
	Kbps    int    `json:"kbps"`    // measured incoming bitrate, kbit/s, 0 when stopped
	Packets uint64 `json:"packets"` // packets received
	// Duplicates: packets received again (a browser probing its bandwidth with copies of
	// recent packets, RFC 4588 RTX), neither counted in Kbps nor forwarded.
	Duplicates uint64 `json:"duplicates"`
	// OverLimit: packets over the track's rate limit (Config.MaxTrackBitrate,
	// MaxTrackPacketRate), neither forwarded nor counted in Packets and Kbps.
	OverLimit uint64 `json:"over_limit"`
}

func (s *SFU) subscriptionStats(p *participant) []SubscriptionStats {
	var out []SubscriptionStats
	for f, sub := range p.subs {
		st := SubscriptionStats{Track: f.id, Publisher: f.streamID, Switches: sub.down.switches.Load()}
		if l := sub.down.cur.Load(); l != nil {
			st.Layer = l.rid
		}
		if l := sub.down.target.Load(); l != nil {
			st.TargetLayer = l.rid
		}
		out = append(out, st)
	}
	return out
}

func layerStats(p *participant) []LayerStats {
	var out []LayerStats
	for _, f := range p.published {
		for _, l := range *f.layers.Load() {
			out = append(out, LayerStats{Track: f.id, RID: l.rid, Kbps: int(l.meter.bitrate / 1000),
				Packets: l.packets.Load(), Duplicates: l.dups.Load(), OverLimit: l.over.Load()})
		}
	}
	return out
}
