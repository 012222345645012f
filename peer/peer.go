// Package peer is Parley's native call client on Pion: it joins a call through a signaling
// server, sends media from a clip, records what it receives and reports what happened. It is
// what `parley call` runs, and the driver of Parley's end-to-end tests and benchmarks.
package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/rtcapi"
	"github.com/parley-rtc/parley/sigclient"
)

// Config describes one call. Exactly one of Create and Join is set.
type Config struct {
	Server string // base URL of the signaling server, e.g. http://127.0.0.1:8080
	Create bool   // create a session and host it
	Join   string // join this session as a guest
	// Group, with Create, makes the session a group call through the server's SFU. Whether
	// a joined session is a group is the server's to say (protocol.Joined.Group).
	Group bool
	// Password protects a created session, or is the password of the session to join.
	Password string
	// Token is a signed join token for the session to join (see package jointoken).
	Token string
	// Name is this participant's display name for the others: trimmed, at most
	// protocol.MaxNameLen bytes, no control characters (protocol.CheckName); "" for none.
	Name string

	Video, Audio *media.Stream // what to send, looped; nil sends nothing of that kind
	// Simulcast, if set, is sent instead of Video: the layers of one video (RFC 8853), each
	// a VP8 stream with its RID, lowest quality first. For group sessions, where the SFU
	// forwards each subscriber one layer.
	Simulcast []SimulcastLayer
	RecordDir string // if set, received media goes to RecordDir/video.ivf and audio.ogg

	// Duration hangs up this long after the call connects (ICE and DTLS up, media
	// flowing); 0 waits for the peer to leave or ctx to end.
	Duration time.Duration
	// ConnectTimeout bounds the time from the offer/answer exchange to a connected call;
	// 0 means 30 s.
	ConnectTimeout time.Duration
	// LoopbackOnly gathers only loopback ICE candidates, for calls within one machine.
	LoopbackOnly bool
	// OnSession is called with the session ID once the session is ready (host) or joined
	// (guest).
	OnSession func(sessionID string)
	// OnConnected is called once, when the call first connects (media can flow).
	OnConnected func()
	Logger      *slog.Logger
}

// Report is what `parley call --report` writes: times in ms from the start of Run.
type Report struct {
	Session              string  `json:"session"`
	Role                 string  `json:"role"` // "host" or "guest"
	ConnectedMS          float64 `json:"connected_ms"`
	FirstVideoMS         float64 `json:"first_video_ms"`
	VideoFramesReceived  int64   `json:"video_frames_received"`
	AudioPacketsReceived int64   `json:"audio_packets_received"`
	VideoFramesSent      int64   `json:"video_frames_sent"`
	AudioPacketsSent     int64   `json:"audio_packets_sent"`
	BytesReceived        int64   `json:"bytes_received"`
	RemoteVideoWidth     int     `json:"remote_video_width,omitempty"`
	RemoteVideoHeight    int     `json:"remote_video_height,omitempty"`
	// RemoteTracks counts what arrived on each remote track, in the order they arrived; the
	// totals above are their sums.
	RemoteTracks []RemoteTrack `json:"remote_tracks,omitempty"`
	// Names are the display names of the remote participants who gave one, by user ID, as
	// the server told them (joined, peer_joined); kept after a participant leaves.
	Names map[string]string `json:"names,omitempty"`
	// LocalCandidateType and RemoteCandidateType are the types of the selected ICE
	// candidate pair (RFC 8445 §5.1.1): "host", "srflx", "prflx" or "relay".
	LocalCandidateType  string  `json:"local_candidate_type,omitempty"`
	RemoteCandidateType string  `json:"remote_candidate_type,omitempty"`
	DurationMS          float64 `json:"duration_ms"`
	// Rejoins counts the times a group call left its session and joined it again, with a
	// new peer connection, because the SFU could offer the old one no more (too_large).
	Rejoins int `json:"rejoins,omitempty"`
	// End says why the call ended: "duration", "peer_left", "interrupted",
	// "connection_lost", or "error".
	End   string `json:"end"`
	Error string `json:"error,omitempty"`
}

// RemoteTrack is what one remote track delivered.
type RemoteTrack struct {
	// Participant is the track's stream ID: in a group session, the user ID of the
	// participant who publishes it.
	Participant string `json:"participant"`
	// Name is that participant's display name, if it gave one.
	Name         string `json:"name,omitempty"`
	Kind         string `json:"kind"` // "video" or "audio"
	VideoFrames  int64  `json:"video_frames"`
	AudioPackets int64  `json:"audio_packets"`
	// Ended: the track stopped during the call (its sender removed it by renegotiation),
	// not because the call ended.
	Ended bool `json:"ended"`
	// Of a video track's RTP stream (RFC 3550 §A.1): VideoPackets received; MaxSeqJump,
	// the largest step forward of the sequence number from the highest one before (1 in a
	// stream without loss); TimestampBackwards, how many packets that advanced the
	// sequence number went back in RTP timestamp. Through the SFU, a simulcast layer
	// switch must show in neither. KeyFrameWidths are the widths of the key frames
	// received (RFC 6386 §9.1), in pixels, one entry per change.
	VideoPackets       int64 `json:"video_packets,omitempty"`
	MaxSeqJump         int   `json:"max_seq_jump,omitempty"`
	TimestampBackwards int64 `json:"timestamp_backwards,omitempty"`
	KeyFrameWidths     []int `json:"key_frame_widths,omitempty"`
}

// Errors callers may branch on.
var (
	ErrJoin       = errors.New("could not join session")
	ErrNotConnect = errors.New("call did not connect")
)

const (
	roleHost  = "host"
	roleGuest = "guest"
)

// call is the state of one Run; only Run's goroutine touches the unexported fields that
// are not atomics.
type call struct {
	cfg   Config
	log   *slog.Logger
	start time.Time
	sig   *sigclient.Conn
	ctx   context.Context // ends when the call ends

	session string
	role    string
	names   map[string]string // remote participants' display names, by user ID
	group   bool              // a group session: the one negotiation is with the SFU
	remote  string            // the other peer's user ID, or protocol.ServerPeer in a group
	pc      *webrtc.PeerConnection
	pending []webrtc.ICECandidateInit // remote candidates that came before the remote description
	// sfuOffers counts the SFU's offers this peer connection answered (a group).
	sfuOffers int
	rejoins   int // rejoinGroup calls

	// State changes, with the connection they are of: after a move to the SFU, the closed
	// peer-to-peer connection's are ignored.
	iceState  chan stateOf[webrtc.ICEConnectionState]
	pcState   chan stateOf[webrtc.PeerConnectionState]
	firstSeen chan struct{}

	connectedAt time.Time
	firstVideo  atomic.Int64 // ns since start, 0 until the first remote video frame
	videoRecv   atomic.Int64
	audioRecv   atomic.Int64
	videoSent   atomic.Int64
	audioSent   atomic.Int64
	bytesRecv   atomic.Int64
	remoteW     atomic.Int32
	remoteH     atomic.Int32
	pairTypes   [2]string // local, remote candidate type of the selected pair

	senders []sender

	// Pion calls back from its own goroutines (OnTrack) until Close returns, so starting a
	// goroutine and hanging up are ordered by mu: after hangUp sets done, nothing starts.
	mu       sync.Mutex
	done     bool
	wg       sync.WaitGroup // media, RTCP and signaling goroutines
	tracks   []*remoteTrack // guarded by mu
	rec      *recorder
	stopSend context.CancelFunc
	// recording[kind] is taken by the first remote track of that kind: in a group, only the
	// first participant's media is recorded.
	recording [2]atomic.Bool
}

// stateOf is a state change of one peer connection.
type stateOf[S any] struct {
	pc    *webrtc.PeerConnection
	state S
}

type remoteTrack struct {
	participant, kind string
	frames, packets   atomic.Int64
	ended             atomic.Bool

	mu     sync.Mutex // guards seq
	seq    seqCheck   // video
	widths []int      // video key frame widths, each change
}

// Run makes one call and returns its report. The error is non-nil when the call could not
// be made; a call that connected and then ended for any reason returns nil.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Create == (cfg.Join != "") {
		return Report{}, errors.New("peer: set exactly one of Create and Join")
	}
	if err := protocol.CheckName(cfg.Name); err != nil {
		return Report{}, fmt.Errorf("peer: name %q: %w", cfg.Name, err)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &call{
		cfg:       cfg,
		log:       cfg.Logger,
		start:     time.Now(),
		iceState:  make(chan stateOf[webrtc.ICEConnectionState], 8),
		pcState:   make(chan stateOf[webrtc.PeerConnectionState], 8),
		firstSeen: make(chan struct{}, 1),
	}
	if cfg.RecordDir != "" {
		r, err := newRecorder(cfg.RecordDir)
		if err != nil {
			return c.report("error", err), err
		}
		c.rec = r
	}
	end, err := c.run(ctx)
	c.hangUp()
	rep := c.report(end, err)
	if c.rec != nil {
		if cerr := c.rec.Close(); cerr != nil && err == nil {
			err = cerr
			rep.Error = err.Error()
		}
	}
	return rep, err
}

func (c *call) report(end string, err error) Report {
	r := Report{
		Session:              c.session,
		Role:                 c.role,
		VideoFramesReceived:  c.videoRecv.Load(),
		AudioPacketsReceived: c.audioRecv.Load(),
		VideoFramesSent:      c.videoSent.Load(),
		AudioPacketsSent:     c.audioSent.Load(),
		BytesReceived:        c.bytesRecv.Load(),
		RemoteVideoWidth:     int(c.remoteW.Load()),
		RemoteVideoHeight:    int(c.remoteH.Load()),
		LocalCandidateType:   c.pairTypes[0],
		RemoteCandidateType:  c.pairTypes[1],
		DurationMS:           ms(time.Since(c.start)),
		Rejoins:              c.rejoins,
		End:                  end,
	}
	if !c.connectedAt.IsZero() {
		r.ConnectedMS = ms(c.connectedAt.Sub(c.start))
	}
	if fv := c.firstVideo.Load(); fv > 0 {
		r.FirstVideoMS = ms(time.Duration(fv))
	}
	if err != nil {
		r.Error = err.Error()
	}
	c.mu.Lock()
	for _, t := range c.tracks {
		t.mu.Lock()
		r.RemoteTracks = append(r.RemoteTracks, RemoteTrack{Participant: t.participant, Name: c.names[t.participant], Kind: t.kind,
			VideoFrames: t.frames.Load(), AudioPackets: t.packets.Load(), Ended: t.ended.Load(),
			VideoPackets: t.seq.packets, MaxSeqJump: t.seq.maxJump, TimestampBackwards: t.seq.tsBack,
			KeyFrameWidths: slices.Clone(t.widths)})
		t.mu.Unlock()
	}
	c.mu.Unlock()
	if len(c.names) > 0 {
		r.Names = c.names
	}
	return r
}

// noteName remembers a remote participant's display name.
func (c *call) noteName(id, name string) {
	if name == "" {
		return
	}
	if c.names == nil {
		c.names = make(map[string]string)
	}
	c.names[id] = name
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// run drives the call until it ends and says why.
func (c *call) run(ctx context.Context) (string, error) {
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ctx = callCtx

	sig, err := sigclient.Dial(ctx, c.cfg.Server)
	if err != nil {
		return "error", err
	}
	c.sig = sig

	msgs := make(chan protocol.Message, 32)
	readErr := make(chan error, 1)
	c.spawn(func() {
		for {
			m, err := sig.Read(callCtx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-callCtx.Done():
				return
			}
		}
	})

	if c.cfg.Create {
		c.role = roleHost
		err = sig.Send(ctx, protocol.CreateSession{Password: c.cfg.Password, Group: c.cfg.Group, Name: c.cfg.Name})
	} else {
		c.role = roleGuest
		err = sig.Send(ctx, protocol.JoinSession{SessionID: c.cfg.Join, Password: c.cfg.Password, Token: c.cfg.Token,
			Name: c.cfg.Name})
	}
	if err != nil {
		return "error", err
	}

	var connectTimer, durationTimer, closedTimer <-chan time.Time
	mediaUp := false // the call has connected once
	for {
		select {
		case <-ctx.Done():
			if c.connectedAt.IsZero() {
				return "interrupted", fmt.Errorf("%w: interrupted", ErrNotConnect)
			}
			return "interrupted", nil
		case err := <-readErr:
			if c.connectedAt.IsZero() {
				return "error", fmt.Errorf("%w: signaling: %w", ErrNotConnect, err)
			}
			// Media flows peer to peer; the call goes on without the server.
			c.log.Warn("signaling connection lost; the call goes on", "err", err)
			readErr = nil
		case m := <-msgs:
			if ctx.Err() != nil {
				continue // hung up: the next round returns
			}
			end, err := c.handle(m)
			if ctx.Err() != nil {
				// Hung up while handling it: what failed then (a send on the cancelled
				// context, say) is part of hanging up, not a failure of the call.
				continue
			}
			if err != nil || end != "" {
				return end, err
			}
			if c.pc != nil && connectTimer == nil && c.connectedAt.IsZero() {
				connectTimer = time.After(c.cfg.ConnectTimeout)
			}
		case ev := <-c.iceState:
			if ev.pc != c.pc {
				continue
			}
			s := ev.state
			c.log.Debug("ICE connection state", "state", s)
			if s == webrtc.ICEConnectionStateConnected && c.connectedAt.IsZero() {
				c.connectedAt = time.Now()
			}
		case ev := <-c.pcState:
			if ev.pc != c.pc {
				continue
			}
			s := ev.state
			c.log.Debug("peer connection state", "state", s)
			switch s {
			case webrtc.PeerConnectionStateConnected:
				// ICE and DTLS are up: media can flow, and the call's duration starts.
				if c.connectedAt.IsZero() {
					c.connectedAt = time.Now()
				}
				connectTimer = nil
				if !mediaUp {
					mediaUp = true
					if c.cfg.Duration > 0 {
						durationTimer = time.After(c.cfg.Duration)
					}
					if c.cfg.OnConnected != nil {
						c.cfg.OnConnected()
					}
				}
				c.notePair()
				c.startSending()
			case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
				if c.connectedAt.IsZero() {
					return "error", fmt.Errorf("%w: peer connection %s", ErrNotConnect, s)
				}
				if s == webrtc.PeerConnectionStateClosed && !c.group && closedTimer == nil {
					// Closed, not failed: the peer ended DTLS (close_notify, RFC 5246
					// §7.2.1), which it does when it hangs up. Its leave_session, relayed
					// by the server, can arrive after that over loopback; wait a moment
					// for it, so that a hang-up is not taken for a lost connection.
					closedTimer = time.After(closedGrace)
					continue
				}
				return "connection_lost", nil
			}
		case <-closedTimer:
			return "connection_lost", nil
		case <-connectTimer:
			return "error", fmt.Errorf("%w: not connected %s after the offer/answer exchange began",
				ErrNotConnect, c.cfg.ConnectTimeout)
		case <-durationTimer:
			return "duration", nil
		}
	}
}

// handle acts on one signaling message; a non-empty end or an error ends the call.
func (c *call) handle(m protocol.Message) (string, error) {
	switch m := m.(type) {
	case protocol.SessionReady:
		c.session = m.SessionID
		if c.cfg.OnSession != nil {
			c.cfg.OnSession(m.SessionID)
		}
		if m.Group {
			return "", c.joinGroup()
		}
	case protocol.Joined:
		rejoined := c.session != "" // after rejoinGroup
		c.session = m.SessionID
		for id, name := range m.Names {
			c.noteName(id, name)
		}
		if c.cfg.OnSession != nil && !rejoined {
			c.cfg.OnSession(m.SessionID)
		}
		if m.Group {
			return "", c.joinGroup()
		}
	case protocol.GroupStarted:
		if c.group || m.SessionID != c.session {
			return "", nil
		}
		return "", c.moveToSFU()
	case protocol.JoinError:
		return "error", fmt.Errorf("%w %q: %s (%s)", ErrJoin, m.SessionID, m.Message, m.Code)
	case protocol.PeerJoined:
		c.noteName(m.PeerID, m.Name)
		if c.group {
			c.log.Debug("participant joined", "peer", m.PeerID, "name", m.Name)
			return "", nil
		}
		if c.pc != nil {
			c.log.Warn("another peer joined; this client takes one peer", "peer", m.PeerID)
			return "", nil
		}
		c.remote = m.PeerID
		return "", c.offer()
	case protocol.Offer:
		if c.group {
			return "", c.answerSFU(m)
		}
		return "", c.answer(m)
	case protocol.Answer:
		if c.pc == nil || m.From != c.remote {
			c.log.Warn("unexpected answer", "from", m.From)
			return "", nil
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return "error", fmt.Errorf("%w: set remote answer: %w", ErrNotConnect, err)
		}
		return "", c.flushCandidates()
	case protocol.Candidate:
		if m.Candidate == nil { // end-of-candidates: Pion needs no word of it
			return "", nil
		}
		if c.remote != "" && m.From != c.remote {
			return "", nil // from a connection that is gone (before a move to the SFU)
		}
		init := rtcapi.CandidateInit(m.Candidate)
		if c.pc == nil || c.pc.RemoteDescription() == nil {
			c.pending = append(c.pending, init)
			return "", nil
		}
		if err := c.pc.AddICECandidate(init); err != nil {
			c.log.Warn("bad remote ICE candidate", "err", err)
		}
	case protocol.PeerLeft:
		if c.group {
			// The SFU takes the participant's tracks away by renegotiation; the call goes on.
			c.log.Debug("participant left", "peer", m.PeerID)
			return "", nil
		}
		if m.PeerID == c.remote || c.remote == "" {
			if c.connectedAt.IsZero() && c.pc != nil {
				return "error", fmt.Errorf("%w: the peer left before the call connected", ErrNotConnect)
			}
			if c.pc != nil {
				return "peer_left", nil
			}
		}
	case protocol.Error:
		if c.group && c.pc != nil && m.Code == protocol.CodeTooLarge && m.Ref == protocol.TypeOffer && c.sfuOffers > 0 {
			// A new peer connection holds only the tracks there are now; one that never
			// took an SFU offer would be too large again.
			return "", c.rejoinGroup()
		}
		c.log.Warn("signaling server reported an error", "code", m.Code, "message", m.Message)
	}
	return "", nil
}

func (c *call) flushCandidates() error {
	for _, init := range c.pending {
		if err := c.pc.AddICECandidate(init); err != nil {
			c.log.Warn("bad remote ICE candidate", "err", err)
		}
	}
	c.pending = nil
	return nil
}

// joinGroup is every participant's first move in a group session: offer its tracks to the
// SFU, which answers and then offers the others' tracks as they come and go.
func (c *call) joinGroup() error {
	if c.pc != nil {
		return nil
	}
	c.group = true
	c.remote = protocol.ServerPeer
	return c.offer()
}

// moveToSFU follows a two-person call that became a group (a third participant joined):
// the peer-to-peer connection closes, its remote tracks end, and the call goes on through
// the SFU with the same media. The call's duration and its counts carry on.
func (c *call) moveToSFU() error {
	c.closePeerConnection()
	c.log.Debug("the call moves to the SFU")
	return c.joinGroup()
}

// closePeerConnection stops sending and closes the peer connection; its remote tracks end,
// and its state changes are ignored from now on.
func (c *call) closePeerConnection() {
	if c.stopSend != nil {
		c.stopSend()
		c.stopSend = nil
	}
	c.senders = nil
	if c.pc != nil {
		old := c.pc
		c.pc = nil
		if err := old.Close(); err != nil {
			c.log.Debug("close the peer connection", "err", err)
		}
	}
	c.pending = nil
}

// rejoinGroup starts the group call afresh when the SFU can offer no more (error
// too_large, docs/protocol.md "Offer size"): the peer connection holds media sections that
// no longer carry anything (the SFU reuses those it sent on for tracks of their kind, but
// not for another kind). The client leaves the session and joins it again; on joined it
// offers from a new peer connection, as at first.
func (c *call) rejoinGroup() error {
	c.closePeerConnection()
	c.sfuOffers = 0
	c.rejoins++
	c.log.Info("the SFU can offer this peer connection no more (too_large); rejoining the group with a new one")
	if err := c.sig.Send(c.ctx, protocol.LeaveSession{SessionID: c.session}); err != nil {
		return err
	}
	return c.sig.Send(c.ctx, protocol.JoinSession{SessionID: c.session, Password: c.cfg.Password, Token: c.cfg.Token,
		Name: c.cfg.Name})
}

// answerSFU answers the SFU's renegotiation offer: tracks of other participants added or
// removed.
func (c *call) answerSFU(m protocol.Offer) error {
	if c.pc == nil || m.From != protocol.ServerPeer {
		c.log.Warn("unexpected offer in a group session", "from", m.From)
		return nil
	}
	offer, ended, err := keepInactive(m.SDP)
	if err != nil {
		return fmt.Errorf("the SFU's offer: %w", err)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fmt.Errorf("set the SFU's offer: %w", err)
	}
	sdp, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("answer the SFU: %w", err)
	}
	if err := c.pc.SetLocalDescription(sdp); err != nil {
		return fmt.Errorf("set local answer to the SFU: %w", err)
	}
	answer, err := answerInactive(sdp.SDP, ended)
	if err != nil {
		return fmt.Errorf("answer the SFU: %w", err)
	}
	if err := c.sig.Send(c.ctx, protocol.Answer{SessionID: c.session, To: protocol.ServerPeer, SDP: answer}); err != nil {
		return err
	}
	c.sfuOffers++
	return c.flushCandidates()
}

// offer is the host's move when a guest joins (and everyone's in a group): add the tracks
// and send an offer.
func (c *call) offer() error {
	if err := c.newPeerConnection(); err != nil {
		return err
	}
	if err := c.addTracks(); err != nil {
		return err
	}
	// Receive both kinds even when sending neither. In a group the SFU sends in media
	// sections of its own, so one is needed only to have any: a recvonly section would
	// stay empty for the whole call.
	sendsVideo, sendsAudio := c.cfg.Video != nil || len(c.cfg.Simulcast) > 0, c.cfg.Audio != nil
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if c.group && (sendsVideo || sendsAudio || kind == webrtc.RTPCodecTypeVideo) {
			continue
		}
		if (kind == webrtc.RTPCodecTypeVideo && !sendsVideo) || (kind == webrtc.RTPCodecTypeAudio && !sendsAudio) {
			if _, err := c.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fmt.Errorf("add %s transceiver: %w", kind, err)
			}
		}
	}
	sdp, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := c.pc.SetLocalDescription(sdp); err != nil {
		return fmt.Errorf("set local offer: %w", err)
	}
	return c.sig.Send(c.ctx, protocol.Offer{SessionID: c.session, To: c.remote, SDP: sdp.SDP})
}

// answer is the guest's move on an offer.
func (c *call) answer(m protocol.Offer) error {
	if c.pc != nil {
		c.log.Warn("renegotiation is not supported by this client; offer ignored", "from", m.From)
		return nil
	}
	c.remote = m.From
	if err := c.newPeerConnection(); err != nil {
		return err
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		return fmt.Errorf("%w: set remote offer: %w", ErrNotConnect, err)
	}
	// Added after the offer, the tracks take the offered transceivers, so each media
	// section is sendrecv.
	if err := c.addTracks(); err != nil {
		return err
	}
	sdp, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := c.pc.SetLocalDescription(sdp); err != nil {
		return fmt.Errorf("set local answer: %w", err)
	}
	if err := c.sig.Send(c.ctx, protocol.Answer{SessionID: c.session, To: c.remote, SDP: sdp.SDP}); err != nil {
		return err
	}
	return c.flushCandidates()
}

func (c *call) newPeerConnection() error {
	api, err := rtcapi.New(rtcapi.Options{LoopbackOnly: c.cfg.LoopbackOnly, Logger: c.log})
	if err != nil {
		return err
	}
	var servers []webrtc.ICEServer
	for _, s := range c.sig.Welcome.ICEServers {
		servers = append(servers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
	if err != nil {
		return fmt.Errorf("new peer connection: %w", err)
	}
	c.pc = pc
	// The web client chats on a pre-negotiated data channel, id 0, and says hello on it
	// when it opens. Holding that channel lets Pion take the hello quietly instead of
	// logging an error; this client never answers, so the page shows chat as unavailable.
	// The SFU carries no chat (yet), so a group call has no data channel.
	if !c.group {
		negotiated, chatID := true, uint16(0)
		if _, err := pc.CreateDataChannel("chat", &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &chatID}); err != nil {
			return fmt.Errorf("create chat data channel: %w", err)
		}
	}
	session, remote := c.session, c.remote // this connection's, whatever comes after it
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if err := c.sig.Send(c.ctx, rtcapi.CandidateMessage(session, remote, cand)); err != nil {
			c.log.Debug("send ICE candidate", "err", err)
		}
	})
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		select {
		case c.iceState <- stateOf[webrtc.ICEConnectionState]{pc, s}:
		default:
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case c.pcState <- stateOf[webrtc.PeerConnectionState]{pc, s}:
		default:
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.spawn(func() { c.receive(t) })
	})
	return nil
}

// sender is one local track (or simulcast layer) and the stream it plays.
type sender struct {
	kind   string
	write  func(media.Frame) error
	stream *media.Stream
	count  *atomic.Int64 // nil: not counted
}

func (c *call) addTracks() error {
	add := func(s *media.Stream, kind string, count *atomic.Int64) error {
		if s == nil {
			return nil
		}
		codec := webrtc.RTPCodecCapability{MimeType: s.MimeType, ClockRate: s.ClockRate, Channels: s.Channels}
		track, err := webrtc.NewTrackLocalStaticSample(codec, kind, "parley")
		if err != nil {
			return fmt.Errorf("new %s track: %w", kind, err)
		}
		rtpSender, err := c.pc.AddTrack(track)
		if err != nil {
			return fmt.Errorf("add %s track: %w", kind, err)
		}
		// Reading RTCP lets the interceptors see NACKs and receiver reports; it ends
		// when the peer connection closes.
		c.spawn(func() {
			for {
				if _, _, err := rtpSender.ReadRTCP(); err != nil {
					return
				}
			}
		})
		write := func(f media.Frame) error {
			return track.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration})
		}
		c.senders = append(c.senders, sender{kind: kind, write: write, stream: s, count: count})
		return nil
	}
	if len(c.cfg.Simulcast) > 0 {
		if err := c.addSimulcast(); err != nil {
			return err
		}
	} else if err := add(c.cfg.Video, "video", &c.videoSent); err != nil {
		return err
	}
	return add(c.cfg.Audio, "audio", &c.audioSent)
}

// startSending plays each stream into its track from the start, once the connection is up
// so that the first video frame sent is the clip's key frame.
func (c *call) startSending() {
	if c.stopSend != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.stopSend = cancel
	for _, s := range c.senders {
		c.spawn(func() {
			err := media.Play(ctx, s.stream, true, func(f media.Frame) error {
				if err := s.write(f); err != nil {
					return err
				}
				if s.count != nil {
					s.count.Add(1)
				}
				return nil
			})
			if err != nil && ctx.Err() == nil {
				c.log.Debug("sending stopped", "kind", s.kind, "err", err)
			}
		})
	}
}

// notePair records the types of the selected ICE candidate pair for the report.
func (c *call) notePair() {
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return
	}
	c.pairTypes = [2]string{pair.Local.Typ.String(), pair.Remote.Typ.String()}
}

// spawn runs f in a goroutine that hangUp waits for, unless the call is already over.
func (c *call) spawn(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// closedGrace is how long a two-person call whose peer connection the peer closed waits
// for the server's peer_left before it ends as lost.
const closedGrace = 2 * time.Second

// hangUp tells the server, closes the peer connection and waits for every goroutine.
func (c *call) hangUp() {
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	if c.stopSend != nil {
		c.stopSend()
	}
	if c.sig != nil {
		if c.session != "" {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.sig.Send(ctx, protocol.LeaveSession{SessionID: c.session})
			cancel()
		}
		_ = c.sig.CloseNow()
	}
	if c.pc != nil {
		if err := c.pc.Close(); err != nil {
			c.log.Debug("close peer connection", "err", err)
		}
	}
	c.wg.Wait()
}
