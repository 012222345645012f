// Package sfu is Parley's selective forwarding unit: one peer connection per participant,
// each published track forwarded to every other participant without decoding.
//
// The SFU is the server's media peer in group sessions (protocol.ServerPeer). The
// signaling server hands it each session's joins and leaves and its members' offers,
// answers and candidates (Handle); it talks back through Config.Send. When to offer is
// decided by a sans-I/O negotiator per participant (negotiation.go); this file is the Pion
// shell around it.
package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/rtcapi"
	"github.com/parley-rtc/parley/udpbatch"
)

// Config sets up an SFU. Its zero value, with Send set, is a working default that gathers
// ICE candidates on every interface.
type Config struct {
	// Send delivers a message to a participant through the signaling server (it is
	// signaling.Server.SendFromSFU). Required. The SFU calls it from its own goroutines.
	Send func(to string, m protocol.Message)
	// LoopbackOnly gathers only loopback ICE candidates, for tests on one machine.
	LoopbackOnly bool
	// MediaPort is the UDP port that carries every participant's media (ICE host
	// candidates), on each local address; 0 means one the system picks at New.
	MediaPort int
	// KeyFrameInterval is the shortest time between two key frame requests (RTCP PLI,
	// RFC 4585 §6.3.1) the SFU sends for one published track; 0 means 500 ms.
	KeyFrameInterval time.Duration
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// SFU forwards the media of group sessions. Create it with New; Close ends it.
type SFU struct {
	cfg Config
	log *slog.Logger
	api *webrtc.API

	// Events from Handle and from Pion's callbacks wait in queue for the loop goroutine,
	// which owns the rooms. The queue is unbounded so that no callback ever waits on the
	// loop while the loop waits on Pion.
	qmu      sync.Mutex
	queue    []event
	closing  bool
	wake     chan struct{} // capacity 1
	loopDone chan struct{}

	mu    sync.Mutex // guards rooms; held by the loop while it handles events, and by Stats
	rooms map[string]*room

	wg sync.WaitGroup // forwarding and RTCP goroutines

	media *mediaMux // the one UDP port of every peer connection

	offersSent atomic.Int64
	nacks      nackCounts
}

// event is one input to the loop: a signaling message, or news from a peer connection.
type event struct {
	msg       protocol.Message
	p         *participant
	track     *webrtc.TrackRemote // p published a track
	receiver  *webrtc.RTPReceiver
	connected bool // p's peer connection is connected
}

type room struct {
	id      string
	members []*participant // in the order they joined
}

type participant struct {
	id      string
	room    *room
	pc      *webrtc.PeerConnection
	neg     negotiator
	gone    bool
	pending []webrtc.ICECandidateInit // remote candidates before the remote description

	published []*forwarder
	// want is what the participant should receive; subs what its peer connection sends it
	// as of the last offer. An offer makes subs equal to want.
	want map[*forwarder]bool
	subs map[*forwarder]*subscription
}

type subscription struct {
	local      *webrtc.TrackLocalStaticRTP
	sender     *webrtc.RTPSender
	negotiated bool // an answer has covered it
}

// New returns a running SFU.
func New(cfg Config) (*SFU, error) {
	if cfg.Send == nil {
		return nil, errors.New("sfu: Config.Send is required")
	}
	if cfg.KeyFrameInterval <= 0 {
		cfg.KeyFrameInterval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &SFU{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "sfu"),
		wake:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),
		rooms:    make(map[string]*room),
	}
	media, err := listenMedia(cfg.MediaPort, cfg.LoopbackOnly, s.log)
	if err != nil {
		return nil, fmt.Errorf("sfu: %w", err)
	}
	s.media = media
	// Pion's default interceptors: the NACK responder answers a subscriber's NACK from its
	// cache of what the SFU sent; before them, the counter of NACKs and retransmissions
	// (nack.go), so that it is the closest to the network.
	api, err := rtcapi.New(rtcapi.Options{LoopbackOnly: cfg.LoopbackOnly, UDPMux: media.mux, NoStats: true,
		NACKCacheSize: nackCacheSize, Interceptors: []interceptor.Factory{nackCounter{&s.nacks}}})
	if err != nil {
		media.close()
		return nil, fmt.Errorf("sfu: %w", err)
	}
	s.api = api
	go s.loop()
	return s, nil
}

// Handle takes a message addressed to the SFU (see signaling.SFU). It does not block.
func (s *SFU) Handle(m protocol.Message) { s.post(event{msg: m}) }

func (s *SFU) post(e event) {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return
	}
	s.queue = append(s.queue, e)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close closes every peer connection and waits for every goroutine of the SFU.
func (s *SFU) Close() error {
	s.qmu.Lock()
	already := s.closing
	s.closing = true
	s.qmu.Unlock()
	if !already {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	<-s.loopDone
	s.wg.Wait()
	s.media.close()
	return nil
}

// MediaAddrs are the local addresses of the SFU's media port (Config.MediaPort).
func (s *SFU) MediaAddrs() []netip.AddrPort { return s.media.addrs() }

func (s *SFU) loop() {
	defer close(s.loopDone)
	for range s.wake {
		s.qmu.Lock()
		q, closing := s.queue, s.closing
		s.queue = nil
		s.qmu.Unlock()
		s.mu.Lock()
		for _, e := range q {
			s.handle(e)
		}
		if closing {
			for _, r := range s.rooms {
				for _, p := range r.members {
					s.closeParticipant(p)
				}
			}
			clear(s.rooms)
		}
		s.mu.Unlock()
		if closing {
			return
		}
	}
}

func (s *SFU) spawn(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *SFU) handle(e event) {
	switch {
	case e.track != nil:
		s.published(e.p, e.track, e.receiver)
		return
	case e.connected:
		if !e.p.gone {
			for f, sub := range e.p.subs {
				if sub.negotiated {
					f.keyFrame()
				}
			}
			s.act(e.p, e.p.neg.Connected())
		}
		return
	}
	switch m := e.msg.(type) {
	case protocol.PeerJoined:
		s.join(m.SessionID, m.PeerID)
	case protocol.PeerLeft:
		s.leave(m.SessionID, m.PeerID)
	case protocol.Offer:
		if p := s.member(m.SessionID, m.From); p != nil {
			s.clientOffer(p, m.SDP)
		}
	case protocol.Answer:
		if p := s.member(m.SessionID, m.From); p != nil {
			s.clientAnswer(p, m.SDP)
		}
	case protocol.Candidate:
		if p := s.member(m.SessionID, m.From); p != nil && m.Candidate != nil {
			s.candidate(p, webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid,
				SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment})
		}
	default:
		s.log.Warn("unexpected message", "type", e.msg.Type())
	}
}

func (s *SFU) member(sessionID, userID string) *participant {
	if r := s.rooms[sessionID]; r != nil {
		for _, p := range r.members {
			if p.id == userID {
				return p
			}
		}
	}
	s.log.Debug("message from no participant", "session", sessionID, "user", userID)
	return nil
}

// join gives a new member its peer connection and subscribes it to every published track;
// those are offered once its own first offer is answered.
func (s *SFU) join(sessionID, userID string) {
	r := s.rooms[sessionID]
	if r == nil {
		r = &room{id: sessionID}
		s.rooms[sessionID] = r
	}
	for _, p := range r.members {
		if p.id == userID {
			return
		}
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.log.Error("new peer connection", "session", sessionID, "user", userID, "err", err)
		s.cfg.Send(userID, protocol.Error{Code: protocol.CodeUnsupported,
			Message: fmt.Sprintf("the SFU could not make a peer connection for you: %v", err)})
		return
	}
	p := &participant{id: userID, room: r, pc: pc, want: map[*forwarder]bool{}, subs: map[*forwarder]*subscription{}}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		msg := protocol.Candidate{SessionID: sessionID}
		if c == nil {
			msg.EndOfCandidates = true
		} else {
			init := c.ToJSON()
			msg.Candidate = &protocol.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid,
				SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment}
		}
		s.cfg.Send(userID, msg)
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		s.post(event{p: p, track: t, receiver: rcv})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("peer connection state", "session", sessionID, "user", userID, "state", st)
		if st == webrtc.PeerConnectionStateConnected {
			s.post(event{p: p, connected: true})
		}
	})
	for _, q := range r.members {
		for _, f := range q.published {
			p.want[f] = true
		}
	}
	if len(p.want) > 0 {
		s.act(p, p.neg.Changed())
	}
	r.members = append(r.members, p)
	s.log.Debug("participant joined", "session", sessionID, "user", userID, "tracks", len(p.want))
}

// leave closes a member's peer connection and takes its tracks from the others.
func (s *SFU) leave(sessionID, userID string) {
	r := s.rooms[sessionID]
	if r == nil {
		return
	}
	var p *participant
	for i, q := range r.members {
		if q.id == userID {
			p = q
			r.members = append(r.members[:i], r.members[i+1:]...)
			break
		}
	}
	if p == nil {
		return
	}
	s.closeParticipant(p)
	for _, q := range r.members {
		changed := false
		for _, f := range p.published {
			if q.want[f] {
				delete(q.want, f)
				changed = true
			}
		}
		if changed {
			s.act(q, q.neg.Changed())
		}
	}
	if len(r.members) == 0 {
		delete(s.rooms, sessionID)
	}
	s.log.Debug("participant left", "session", sessionID, "user", userID)
}

func (s *SFU) closeParticipant(p *participant) {
	p.gone = true
	for f, sub := range p.subs {
		f.removeSubscriber(sub.local)
	}
	if err := p.pc.Close(); err != nil {
		s.log.Debug("close peer connection", "user", p.id, "err", err)
	}
}

// published starts forwarding a participant's new track and subscribes every other
// member to it.
func (s *SFU) published(p *participant, t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	if p.gone {
		return
	}
	id := t.ID()
	if id == "" {
		id = fmt.Sprintf("%s%d", t.Kind(), len(p.published))
	}
	f := newForwarder(p.id+"-"+id, p.id, t, p.pc, s.cfg.KeyFrameInterval)
	p.published = append(p.published, f)
	s.spawn(f.forward)
	// Reading the receiver's RTCP lets the interceptors see the publisher's sender reports.
	s.spawn(func() {
		for {
			if _, _, err := rcv.ReadRTCP(); err != nil {
				return
			}
		}
	})
	s.log.Debug("track published", "session", p.room.id, "user", p.id, "track", f.id, "codec", t.Codec().MimeType)
	for _, q := range p.room.members {
		if q != p {
			q.want[f] = true
			s.act(q, q.neg.Changed())
		}
	}
}

func (s *SFU) act(p *participant, a action) {
	if a == offer {
		s.offer(p)
	}
}

// clientOffer answers a participant's first offer.
func (s *SFU) clientOffer(p *participant, sdp string) {
	if p.neg.ClientOffer() != answer {
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeUnsupported, Ref: protocol.TypeOffer,
			Message: "the SFU does not take a second offer; it offers itself when what you receive changes"})
		return
	}
	if err := s.answer(p, sdp); err != nil {
		s.log.Info("client offer", "session", p.room.id, "user", p.id, "err", err)
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeBadMessage, Ref: protocol.TypeOffer,
			Message: fmt.Sprintf("the SFU could not answer your offer: %v", err)})
		return
	}
	s.act(p, p.neg.Answered())
}

func (s *SFU) answer(p *participant, sdp string) error {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("set remote offer: %w", err)
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(ans); err != nil {
		return fmt.Errorf("set local answer: %w", err)
	}
	s.cfg.Send(p.id, protocol.Answer{SessionID: p.room.id, SDP: ans.SDP})
	s.flushCandidates(p)
	return nil
}

// clientAnswer applies the answer to the SFU's offer, and offers again if more changed.
func (s *SFU) clientAnswer(p *participant, sdp string) {
	a := p.neg.ClientAnswer()
	if a == ignore {
		s.log.Info("answer to no offer; ignored", "session", p.room.id, "user", p.id)
		return
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		s.log.Info("client answer", "session", p.room.id, "user", p.id, "err", err)
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeBadMessage, Ref: protocol.TypeAnswer,
			Message: fmt.Sprintf("the SFU could not apply your answer: %v", err)})
	} else {
		s.flushCandidates(p)
		// A new subscriber needs a key frame to start decoding.
		for f, sub := range p.subs {
			if !sub.negotiated {
				sub.negotiated = true
				f.keyFrame()
			}
		}
	}
	s.act(p, a)
}

func (s *SFU) candidate(p *participant, c webrtc.ICECandidateInit) {
	if p.pc.RemoteDescription() == nil {
		p.pending = append(p.pending, c)
		return
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		s.log.Debug("bad remote ICE candidate", "user", p.id, "err", err)
	}
}

func (s *SFU) flushCandidates(p *participant) {
	for _, c := range p.pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			s.log.Debug("bad remote ICE candidate", "user", p.id, "err", err)
		}
	}
	p.pending = nil
}

// offer brings the participant's senders in line with its subscriptions and offers.
func (s *SFU) offer(p *participant) {
	if err := s.sync(p); err != nil {
		s.log.Error("update subscriptions", "session", p.room.id, "user", p.id, "err", err)
	}
	o, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(o)
	}
	if err != nil {
		s.log.Error("offer", "session", p.room.id, "user", p.id, "err", err)
		p.neg.OfferFailed()
		return
	}
	s.offersSent.Add(1)
	s.cfg.Send(p.id, protocol.Offer{SessionID: p.room.id, SDP: o.SDP})
}

func (s *SFU) sync(p *participant) error {
	var errs []error
	for f, sub := range p.subs {
		if p.want[f] {
			continue
		}
		f.removeSubscriber(sub.local)
		if err := p.pc.RemoveTrack(sub.sender); err != nil {
			errs = append(errs, fmt.Errorf("remove track %s: %w", f.id, err))
		}
		delete(p.subs, f)
	}
	for f := range p.want {
		if p.subs[f] != nil {
			continue
		}
		local, err := webrtc.NewTrackLocalStaticRTP(f.codec, f.id, f.streamID)
		if err != nil {
			errs = append(errs, fmt.Errorf("new track %s: %w", f.id, err))
			continue
		}
		tr, err := p.pc.AddTransceiverFromTrack(local,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			errs = append(errs, fmt.Errorf("add track %s: %w", f.id, err))
			continue
		}
		sender := tr.Sender()
		// The subscriber's RTCP: NACKs go to the responder interceptor on the way; PLI and
		// FIR become a key frame request to the publisher. Ends when the sender stops.
		s.spawn(func() { f.readSubscriberRTCP(sender, &s.nacks) })
		f.addSubscriber(local)
		p.subs[f] = &subscription{local: local, sender: sender}
	}
	return errors.Join(errs...)
}

// Stats is a snapshot of the SFU's state.
type Stats struct {
	Rooms        int                `json:"rooms"`
	Participants []ParticipantStats `json:"participants"`
	OffersSent   int64              `json:"offers_sent"` // in total, since New

	// Loss repair by generic NACK (RFC 4585 §6.2.1), in total since New. Subscribers NACK
	// what they miss of the forwarded tracks: NACKsReceived messages naming NACKedPackets
	// sequence numbers, answered with Retransmissions packets from the SFU's cache (on the
	// RTX stream, RFC 4588, when negotiated); a NACKed packet no longer in the cache is not
	// resent. The SFU NACKs what it misses of the published tracks: NACKsSent messages
	// naming NACKsSentPackets sequence numbers.
	NACKsReceived    uint64 `json:"nacks_received"`
	NACKedPackets    uint64 `json:"nacked_packets"`
	Retransmissions  uint64 `json:"retransmissions"`
	NACKsSent        uint64 `json:"nacks_sent"`
	NACKsSentPackets uint64 `json:"nacks_sent_packets"`

	// Written is how many RTP packets the SFU wrote to subscribers, in total since New:
	// each forwarded packet once per subscriber, retransmissions not included.
	Written uint64 `json:"written"`
	// Media counts the datagrams of the media port (every participant's RTP, RTCP, DTLS
	// and STUN) and the system calls that sent them; Dropped ones found the send queue
	// full.
	Media udpbatch.Stats `json:"media"`
}

// ParticipantStats describes one participant.
type ParticipantStats struct {
	ID         string `json:"id"`
	Session    string `json:"session"`
	OffersSent int    `json:"offers_sent"` // SFU offers made to it
	Published  int    `json:"published"`   // tracks it publishes
	Subscribed int    `json:"subscribed"`  // tracks forwarded to it, as of the last offer
	// Stable: no offer is in flight or waiting, so Subscribed is what it receives.
	Stable bool `json:"stable"`
	// Forwarded is how many RTP packets of its tracks were forwarded (once per packet,
	// whatever the number of subscribers).
	Forwarded uint64 `json:"forwarded"`
}

// Stats returns the current state.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Rooms: len(s.rooms), OffersSent: s.offersSent.Load(),
		NACKsReceived: s.nacks.received.Load(), NACKedPackets: s.nacks.nacked.Load(),
		Retransmissions: s.nacks.retransmitted.Load(),
		NACKsSent:       s.nacks.sent.Load(), NACKsSentPackets: s.nacks.sentPackets.Load(),
		Written: s.nacks.written.Load(), Media: s.media.stats()}
	for _, r := range s.rooms {
		for _, p := range r.members {
			ps := ParticipantStats{ID: p.id, Session: r.id, OffersSent: p.neg.offers, Published: len(p.published),
				Subscribed: len(p.subs), Stable: p.neg.Stable()}
			for _, f := range p.published {
				ps.Forwarded += f.packets.Load()
			}
			st.Participants = append(st.Participants, ps)
		}
	}
	return st
}
