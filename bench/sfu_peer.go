package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/rtcapi"
	"github.com/parley-rtc/parley/sigclient"
)

// The SFU benchmark's members are minimal Pion peers rather than package peer's client:
// the publisher packetizes the sample media itself, so that it knows each RTP packet's
// sequence number and when it wrote it, and a subscriber looks up, for every packet it
// receives, when that packet was written. Everything runs in this process, so one
// monotonic clock serves both ends.

const (
	kindVideo = 0
	kindAudio = 1
)

// outboundMTU is the RTP packet size Pion's sample tracks packetize to, so the publisher
// sends the packets a browser or package peer would.
const outboundMTU = 1200

// sendClock records when the publisher wrote each RTP packet, by kind and sequence number
// (the SFU keeps sequence numbers; it rewrites only SSRC and payload type). Sequence
// numbers wrap after 65,536 packets, 14 minutes of the sample video, far longer than a run.
type sendClock struct {
	base time.Time
	at   [2][1 << 16]atomic.Int64 // ns since base; 0: never written
	// from is when subscribers start keeping what they receive, in ns since base;
	// math.MaxInt64 until the measurement begins.
	from atomic.Int64
}

func newSendClock() *sendClock { return newSendClockAt(time.Now()) }

// newSendClockAt returns a clock whose times count from base: the clocks of a group's
// publishers share one base, so that one publisher's send time and another peer's receive
// time compare.
func newSendClockAt(base time.Time) *sendClock {
	c := &sendClock{base: base}
	c.from.Store(math.MaxInt64)
	return c
}

// now is the time in ns since base; it is always positive.
func (c *sendClock) now() int64 { return int64(time.Since(c.base)) + 1 }

// arrival is one packet a subscriber received: when it was written and when it arrived.
type arrival struct{ sent, recv int64 }

// recvTrack is what a subscriber keeps of one remote track. Only its reader goroutine
// touches it until that goroutine ends.
type recvTrack struct {
	kind     int
	stream   string               // the remote stream ID: the publisher's user ID
	seen     [1 << 16 / 64]uint64 // sequence numbers received since clock.from
	arrivals []arrival            // first receipt of each packet written since clock.from
	dups     int64                // receipts of a sequence number already seen
}

// sfuPeer is one member of the benchmark's group session.
type sfuPeer struct {
	log   *slog.Logger
	clock *sendClock // when this peer wrote its packets; for a subscriber, when the publisher did
	// clockOf, if set, gives the clock of the publisher of a received track from its stream
	// ID (the SFU sets it to the publisher's user ID): in a group every member publishes.
	clockOf func(streamID string) *sendClock
	sig     *sigclient.Conn
	pc      *webrtc.PeerConnection
	session string

	// The publisher's tracks, and when it wrote each packet, by kind; sent is owned by the
	// kind's Play goroutine until it ends.
	pub  [2]*webrtc.TrackLocalStaticRTP
	play [2]*media.Stream
	sent [2][]int64

	connected  chan struct{} // closed when the peer connection is connected
	failed     chan struct{} // closed when it failed or closed
	firstVideo chan struct{} // closed at the first video packet received
	onceConn   sync.Once
	onceFail   sync.Once
	onceVideo  sync.Once
	// videoFrom counts the remote video tracks on which a packet arrived.
	videoFrom atomic.Int32

	cancel context.CancelFunc // ends the signaling loop and the publisher's Play
	ctx    context.Context

	// Pion calls back from its own goroutines until pc.Close returns; after close sets
	// done, nothing starts.
	mu     sync.Mutex
	done   bool
	wg     sync.WaitGroup
	tracks []*recvTrack
}

// startSFUPeer connects to server, creates a group session (join == "") or joins one, and
// offers to the SFU: the publisher (video set) its two tracks, a subscriber two receive-only
// transceivers. It returns once the offer is sent; connected and firstVideo say how it
// goes on. Close it in any case.
func startSFUPeer(ctx context.Context, api *webrtc.API, server, join string, video, audio *media.Stream,
	clock *sendClock, log *slog.Logger) (*sfuPeer, error) {
	return startPeer(ctx, api, peerSetup{server: server, join: join, video: video, audio: audio, clock: clock, log: log})
}

// peerSetup says how startPeer sets up a member of the benchmark's session.
type peerSetup struct {
	server, join string
	video, audio *media.Stream // what it publishes; nil: nothing
	clock        *sendClock    // see sfuPeer.clock
	clockOf      func(streamID string) *sendClock
	// welcomed, if set, is told the peer's user ID before it enters the session, and
	// returns the clock of its packets (instead of clock).
	welcomed func(userID string) *sendClock
	log      *slog.Logger
}

func startPeer(ctx context.Context, api *webrtc.API, ps peerSetup) (*sfuPeer, error) {
	loopCtx, cancel := context.WithCancel(context.Background())
	p := &sfuPeer{log: ps.log, clock: ps.clock, clockOf: ps.clockOf, ctx: loopCtx, cancel: cancel,
		play:      [2]*media.Stream{ps.video, ps.audio},
		connected: make(chan struct{}), failed: make(chan struct{}), firstVideo: make(chan struct{})}
	sig, err := sigclient.Dial(ctx, ps.server)
	if err != nil {
		cancel()
		return nil, err
	}
	p.sig = sig
	if ps.welcomed != nil {
		p.clock = ps.welcomed(sig.Welcome.UserID)
	}
	if err := p.enter(ctx, ps.join); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.offer(ctx, api); err != nil {
		p.Close()
		return nil, err
	}
	p.spawn(p.signalLoop)
	return p, nil
}

// enter creates or joins the group session and waits for the server's word.
func (p *sfuPeer) enter(ctx context.Context, join string) error {
	var err error
	if join == "" {
		err = p.sig.Send(ctx, protocol.CreateSession{Group: true})
	} else {
		err = p.sig.Send(ctx, protocol.JoinSession{SessionID: join})
	}
	if err != nil {
		return err
	}
	for {
		m, err := p.sig.Read(ctx)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case protocol.SessionReady:
			if !m.Group {
				return fmt.Errorf("session %q is not a group session: does the server run an SFU?", m.SessionID)
			}
			p.session = m.SessionID
			return nil
		case protocol.Joined:
			if !m.Group {
				return fmt.Errorf("joined session %q is not a group session", m.SessionID)
			}
			p.session = m.SessionID
			return nil
		case protocol.JoinError:
			return fmt.Errorf("join session %q: %s (%s)", m.SessionID, m.Message, m.Code)
		case protocol.Error:
			return fmt.Errorf("signaling server: %s (%s)", m.Message, m.Code)
		}
	}
}

func (p *sfuPeer) offer(ctx context.Context, api *webrtc.API) error {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("new peer connection: %w", err)
	}
	p.pc = pc
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if err := p.sig.Send(p.ctx, rtcapi.CandidateMessage(p.session, protocol.ServerPeer, c)); err != nil {
			p.log.Debug("send ICE candidate", "err", err)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.onceConn.Do(func() {
				close(p.connected)
				p.startPlaying() // a subscriber has nothing to play
			})
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			p.onceFail.Do(func() { close(p.failed) })
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.spawn(func() { p.receive(t) })
	})
	for kind, s := range p.play {
		if s == nil {
			// A subscriber offers to receive each kind and sends nothing.
			k := webrtc.RTPCodecTypeVideo
			if kind == kindAudio {
				k = webrtc.RTPCodecTypeAudio
			}
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fmt.Errorf("add receive-only %s transceiver: %w", k, err)
			}
			continue
		}
		id := [2]string{"video", "audio"}[kind]
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: s.MimeType,
			ClockRate: s.ClockRate, Channels: s.Channels}, id, "bench-publisher")
		if err != nil {
			return fmt.Errorf("new %s track: %w", id, err)
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			return fmt.Errorf("add %s track: %w", id, err)
		}
		p.pub[kind] = track
		// Reading RTCP lets the interceptors answer NACKs; it ends when pc closes.
		p.spawn(func() {
			for {
				if _, _, err := sender.ReadRTCP(); err != nil {
					return
				}
			}
		})
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := pc.SetLocalDescription(o); err != nil {
		return fmt.Errorf("set local offer: %w", err)
	}
	return p.sig.Send(ctx, protocol.Offer{SessionID: p.session, To: protocol.ServerPeer, SDP: o.SDP})
}

// signalLoop answers the SFU's answers, offers and candidates until the connection or
// p.ctx ends.
func (p *sfuPeer) signalLoop() {
	var pending []webrtc.ICECandidateInit
	flush := func() {
		for _, c := range pending {
			if err := p.pc.AddICECandidate(c); err != nil {
				p.log.Debug("bad remote ICE candidate", "err", err)
			}
		}
		pending = nil
	}
	for {
		m, err := p.sig.Read(p.ctx)
		if err != nil {
			// The media goes on without it; at the end of a run the server closes it first.
			p.log.Debug("signaling connection ended", "session", p.session, "err", err)
			return
		}
		switch m := m.(type) {
		case protocol.Answer:
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
				p.log.Warn("set the SFU's answer", "err", err)
				continue
			}
			flush()
		case protocol.Offer:
			if err := p.answer(m.SDP); err != nil {
				p.log.Warn("answer the SFU's offer", "err", err)
				continue
			}
			flush()
		case protocol.Candidate:
			if m.Candidate == nil {
				continue
			}
			c := rtcapi.CandidateInit(m.Candidate)
			if p.pc.RemoteDescription() == nil {
				pending = append(pending, c)
			} else if err := p.pc.AddICECandidate(c); err != nil {
				p.log.Debug("bad remote ICE candidate", "err", err)
			}
		case protocol.Error:
			level := slog.LevelWarn
			if m.Code == protocol.CodeShuttingDown {
				level = slog.LevelDebug
			}
			p.log.Log(p.ctx, level, "signaling server reported an error", "code", m.Code, "message", m.Message)
		}
	}
}

// state describes the peer connection, for errors.
func (p *sfuPeer) state() string {
	if p.pc == nil {
		return "no peer connection"
	}
	return fmt.Sprintf("peer connection %s, ICE %s, signaling %s", p.pc.ConnectionState(),
		p.pc.ICEConnectionState(), p.pc.SignalingState())
}

func (p *sfuPeer) answer(sdp string) error {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("set remote offer: %w", err)
	}
	a, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(a); err != nil {
		return fmt.Errorf("set local answer: %w", err)
	}
	return p.sig.Send(p.ctx, protocol.Answer{SessionID: p.session, To: protocol.ServerPeer, SDP: a.SDP})
}

// startPlaying plays each stream into its track, looped, packetizing as Pion's sample
// track does and noting when each packet was written.
func (p *sfuPeer) startPlaying() {
	for kind, s := range p.play {
		if s == nil {
			continue
		}
		var payloader rtp.Payloader = &codecs.OpusPayloader{}
		if kind == kindVideo {
			payloader = &codecs.VP8Payloader{EnablePictureID: true}
		}
		// The track sets SSRC and payload type as negotiated.
		pz := rtp.NewPacketizer(outboundMTU, 0, 0, payloader, rtp.NewRandomSequencer(), s.ClockRate)
		track, clock := p.pub[kind], p.clock
		p.spawn(func() {
			err := media.Play(p.ctx, s, true, func(f media.Frame) error {
				for _, pkt := range pz.Packetize(f.Data, uint32(f.Duration.Seconds()*float64(s.ClockRate))) {
					now := clock.now()
					clock.at[kind][pkt.SequenceNumber].Store(now)
					p.sent[kind] = append(p.sent[kind], now)
					if err := track.WriteRTP(pkt); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil && p.ctx.Err() == nil {
				p.log.Warn("publisher stopped sending", "kind", track.Kind(), "err", err)
			}
		})
	}
}

// receive reads one remote track until the peer connection closes, keeping the first
// receipt of each packet written since clock.from.
func (p *sfuPeer) receive(t *webrtc.TrackRemote) {
	rt := &recvTrack{kind: kindAudio, stream: t.StreamID()}
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		rt.kind = kindVideo
	}
	p.mu.Lock()
	p.tracks = append(p.tracks, rt)
	p.mu.Unlock()
	clock := p.clock
	if p.clockOf != nil {
		if clock = p.clockOf(t.StreamID()); clock == nil {
			p.log.Warn("a track from no known publisher", "stream", t.StreamID())
			return
		}
	}
	at := &clock.at[rt.kind]
	first := true
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if n < 12 { // shorter than an RTP header (RFC 3550 §5.1)
			continue
		}
		now := clock.now()
		if rt.kind == kindVideo && first {
			first = false
			p.videoFrom.Add(1)
			p.onceVideo.Do(func() { close(p.firstVideo) })
		}
		seq := binary.BigEndian.Uint16(buf[2:4])
		sent := at[seq].Load()
		if sent == 0 || sent < clock.from.Load() {
			continue
		}
		if bit := uint64(1) << (seq & 63); rt.seen[seq>>6]&bit != 0 {
			rt.dups++
			continue
		} else {
			rt.seen[seq>>6] |= bit
		}
		rt.arrivals = append(rt.arrivals, arrival{sent: sent, recv: now})
	}
}

func (p *sfuPeer) spawn(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// Close leaves the session, closes the peer connection and waits for every goroutine of
// the peer. Its tracks may be read afterwards.
func (p *sfuPeer) Close() {
	p.mu.Lock()
	already := p.done
	p.done = true
	p.mu.Unlock()
	if already {
		p.wg.Wait()
		return
	}
	p.cancel()
	if p.sig != nil {
		_ = p.sig.CloseNow()
	}
	if p.pc != nil {
		if err := p.pc.Close(); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
			p.log.Debug("close peer connection", "err", err)
		}
	}
	p.wg.Wait()
}
