package sfu

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
)

// The I/O shell of simulcast: a bandwidth estimate per subscriber peer connection, and a
// goroutine that, every allocationInterval, measures each layer's bitrate and lets each
// subscriber's layerSelector choose.

const (
	allocationInterval = 250 * time.Millisecond
	// Send-side bandwidth estimation (GCC, draft-ietf-rmcat-gcc-02) starts from
	// initialEstimate, so that a new subscriber is soon offered the top layer; loss and
	// delay in the TWCC feedback bring it down where the link is narrower.
	initialEstimate = 1_500_000 // bit/s
	minEstimate     = 50_000
	maxEstimate     = 20_000_000
	// stoppedAfter: a layer that brought no packet for this many allocation intervals is
	// taken as stopped (the publisher's encoder paused it).
	stoppedAfter = 4
)

// estimators hands the SFU the bandwidth estimator of each new peer connection. Pion
// builds a connection's interceptors inside NewPeerConnection, which only the SFU's loop
// calls, so the estimator the callback last saw is the one of the connection just made.
type estimators struct {
	mu   sync.Mutex
	last cc.BandwidthEstimator
}

// interceptors returns the factories that estimate the bandwidth to each peer: transport-
// wide sequence numbers on what the SFU sends (draft-holmer-rmcat-transport-wide-cc-
// extensions-01), and GCC on the feedback. In that order they are closest to the network,
// so the estimator sees each packet with its sequence number, and the SFU's NACK
// responder, further up, resends packets without one: a retransmission gets a number of
// its own.
func (e *estimators) interceptors() ([]interceptor.Factory, error) {
	bwe, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		// The no-op pacer sends every packet at once: the SFU forwards, it does not pace.
		return gcc.NewSendSideBWE(gcc.SendSideBWEPacer(newForwardPacer()),
			gcc.SendSideBWEInitialBitrate(initialEstimate),
			gcc.SendSideBWEMinBitrate(minEstimate), gcc.SendSideBWEMaxBitrate(maxEstimate))
	})
	if err != nil {
		return nil, err
	}
	bwe.OnNewPeerConnection(func(_ string, est cc.BandwidthEstimator) {
		e.mu.Lock()
		e.last = est
		e.mu.Unlock()
	})
	seq, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		return nil, err
	}
	return []interceptor.Factory{rtxAround{bwe}, seq}, nil
}

// rtxAround passes a stream's retransmissions (RTX, RFC 4588) and FEC around the bandwidth
// estimator: its pacer knows a stream by its media SSRC only and refuses packets of any
// other, so the NACK responder's RTX packets, written through the estimator, were all
// dropped. Around it they still get transport-wide sequence numbers (the header extension
// interceptor is below); the estimator ignores feedback on numbers it did not see.
//
// It also hands the estimator a pooled attributes map with each packet: given none, the
// estimator makes one per packet to note the extension's ID in, which at 200 subscribers
// was a map allocation for every packet written.
type rtxAround struct{ interceptor.Factory }

func (f rtxAround) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.Factory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &rtxAroundInterceptor{Interceptor: i}, nil
}

type rtxAroundInterceptor struct{ interceptor.Interceptor }

var attributesPool = sync.Pool{New: func() any { return interceptor.Attributes{} }}

func (i *rtxAroundInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	est := i.Interceptor.BindLocalStream(info, w)
	media := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC != media {
			return w.Write(h, payload, a)
		}
		if a != nil {
			return est.Write(h, payload, a)
		}
		a = attributesPool.Get().(interceptor.Attributes)
		n, err := est.Write(h, payload, a)
		clear(a)
		attributesPool.Put(a)
		return n, err
	})
}

// forwardPacer is the estimator's pacer. Like Pion's NoOpPacer it sends every packet at
// once, as the SFU forwards and does not pace; but NoOpPacer holds one lock per peer
// connection across the whole write below it (SRTP, the queue to the socket), so the
// forwarders writing to one subscriber waited on each other. Here the writers are looked
// up without a lock.
type forwardPacer struct {
	mu      sync.Mutex // serialises AddStream
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
}

func newForwardPacer() *forwardPacer {
	p := &forwardPacer{}
	p.writers.Store(&map[uint32]interceptor.RTPWriter{})
	return p
}

func (p *forwardPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := maps.Clone(*p.writers.Load())
	next[ssrc] = w
	p.writers.Store(&next)
}

func (p *forwardPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if w, ok := (*p.writers.Load())[h.SSRC]; ok {
		return w.Write(h, payload, a)
	}
	return 0, fmt.Errorf("%w: %d", gcc.ErrUnknownStream, h.SSRC)
}

func (p *forwardPacer) SetTargetBitrate(int) {}

func (p *forwardPacer) Close() error { return nil }

// take returns the estimator of the peer connection just made.
func (e *estimators) take() cc.BandwidthEstimator {
	e.mu.Lock()
	defer e.mu.Unlock()
	est := e.last
	e.last = nil
	return est
}

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
		if p.gone || p.estimator == nil {
			continue
		}
		budget, n := p.estimator.GetTargetBitrate(), 0
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
