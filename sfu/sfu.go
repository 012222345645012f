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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

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
	// PionSRTP leaves out the SFU's own SRTP write path (srtpout.go) and SRTCP read path
	// (rtcpin.go): every RTP packet to a participant then goes through Pion's SRTP session
	// and ICE connection, and every RTCP packet from one through Pion's. For comparison.
	PionSRTP bool
	// MediaPort is the UDP port that carries every participant's media (ICE host
	// candidates), on each local address; 0 means one the system picks at New.
	MediaPort int
	// KeyFrameInterval is the shortest time between two key frame requests (RTCP PLI,
	// RFC 4585 §6.3.1) the SFU sends for one published track; 0 means 500 ms.
	KeyFrameInterval time.Duration
	// MaxTracks is how many tracks one participant may publish (a simulcast track is one);
	// the SFU declines media sections beyond it. 0 means DefaultMaxTracks, < 0 no limit.
	MaxTracks int
	// MaxTrackBitrate (bit/s, RTP bytes) and MaxTrackPacketRate (packets/s) cap how fast
	// the SFU forwards one published track, all its simulcast layers together; packets over
	// either are dropped (LayerStats.OverLimit). Each may be used in a burst of one
	// second's worth. 0 means DefaultMaxTrackBitrate, DefaultMaxTrackPacketRate; < 0 no
	// limit.
	MaxTrackBitrate    int
	MaxTrackPacketRate int
	// MaxSections is the most media sections an SFU offer may hold, live and ended ones
	// (a new forwarded track takes over an ended one's section, sync, but the participant's
	// own ended sections stay); 0 means as many as fit in one signaling message
	// (fitsMessage). A participant whose offer would hold more gets no offer but an error
	// too_large, on which Parley's clients leave the session and join it again, with a new
	// peer connection.
	MaxSections int
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// SFU forwards the media of group sessions. Create it with New; Close ends it.
type SFU struct {
	cfg Config
	log *slog.Logger

	// Events from Handle and from Pion's callbacks wait in queue for the loop goroutine,
	// which hands each to its room's goroutine (runRoom). The queues are unbounded so that
	// no callback ever waits on a room while the room waits on Pion.
	events   eventQueue
	loopDone chan struct{}

	mu    sync.Mutex // guards rooms; held by the loop while it dispatches events, by Stats and allocate
	rooms map[string]*room
	// pcMu serialises making peer connections: the NACK responder of the one just made is
	// handed over through its interceptor factory (take).
	pcMu sync.Mutex

	wg sync.WaitGroup // forwarding and RTCP goroutines

	media *mediaMux // the one UDP port of every peer connection

	offersSent atomic.Int64
	overLimit  atomic.Uint64 // packets of published tracks over their rate limit
	nacks      nackCounts
	srtpDirect atomic.Uint64 // RTP packets sent by the SFU's own SRTP write path (srtpout.go)
	fwdDirect  atomic.Uint64 // of which those the forwarder wrote past Pion's track (srtpOut.forward)
	rtcpDirect atomic.Uint64 // RTCP packets taken by its SRTCP read path (rtcpin.go)
	resp       responders    // retransmit.go
}

// event is one input to a room: a signaling message, or news from a peer connection.
type event struct {
	msg       protocol.Message
	p         *participant
	track     *webrtc.TrackRemote // p published a track
	receiver  *webrtc.RTPReceiver
	connected bool // p's peer connection is connected
}

// room is one group session. Its own goroutine (runRoom) handles its events in order,
// holding mu, so that the rooms' negotiations run side by side: a busy or hostile group
// does not hold up the others' joins, leaves and offers.
type room struct {
	id string

	mu      sync.Mutex     // held by the room's goroutine while it handles events, and by Stats and allocate
	members []*participant // in the order they joined

	events eventQueue // closed when the SFU closes or the room is removed
}

// eventQueue is an unbounded queue of events for one goroutine, which ranges over wake and
// takes what is queued. After close, post drops events, and take reports closed.
type eventQueue struct {
	mu     sync.Mutex
	queue  []event
	closed bool
	wake   chan struct{} // capacity 1
}

func newEventQueue() eventQueue { return eventQueue{wake: make(chan struct{}, 1)} }

// post queues e; false if the queue is closed.
func (q *eventQueue) post(e event) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.queue = append(q.queue, e)
	q.mu.Unlock()
	q.signal()
	return true
}

// close makes the consumer take what is queued once more and end.
func (q *eventQueue) close() {
	q.mu.Lock()
	already := q.closed
	q.closed = true
	q.mu.Unlock()
	if !already {
		q.signal()
	}
}

func (q *eventQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued, and whether the queue is closed.
func (q *eventQueue) take() ([]event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	es := q.queue
	q.queue = nil
	return es, q.closed
}

func (q *eventQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue) == 0
}

// idle reports whether the room has no members and no events waiting; r.mu is held.
func (r *room) idle() bool { return len(r.members) == 0 && r.events.empty() }

type participant struct {
	id      string
	room    *room
	pc      *webrtc.PeerConnection
	api     *webrtc.API // pc's: new senders for reused media sections come from it
	neg     negotiator
	gone    bool
	pending []webrtc.ICECandidateInit // remote candidates before the remote description
	// outbound counts what the SFU sends it: the bandwidth estimate, sender reports
	// (outbound.go).
	outbound  *outbound
	responder *nackResponder // answers its NACKs (retransmit.go)
	out       *srtpOut       // the SFU's SRTP write path to it; nil with Config.PionSRTP

	published []*forwarder
	pubs      map[*forwarder]publication
	// accepted holds the mids of the media sections it may publish on, declined those the
	// SFU refused (limitTracks).
	accepted, declined map[string]bool
	// offerRate limits how many of its offers the SFU handles (offerRate, offerBurst);
	// offersLimited counts those ignored.
	offerRate     *rate.Limiter
	offersLimited int
	// primary holds the stream IDs of the participant's first offer (its camera and
	// microphone); streams maps each stream ID it publishes to the one subscribers see:
	// its user ID for a primary stream, "<user ID>~<n>" for the n-th other (a screen share).
	primary map[string]bool
	streams map[string]string
	// topMid is the highest numeric mid of any offer the participant sent, ignored ones too.
	topMid int
	// want is what the participant should receive; subs what its peer connection sends it
	// as of the last offer. An offer makes subs equal to want.
	want map[*forwarder]bool
	subs map[*forwarder]*subscription
	// ending holds the transceivers whose forwarded track the SFU's offer in flight removes
	// (their media sections go inactive); once the answer is in they are free, and a later
	// forwarded track of their kind takes one over (sync), so the peer connection does not
	// grow a media section for every track that ever came and went.
	ending, free []*webrtc.RTPTransceiver
	// noReuse: the participant is Firefox, which does not decode video in a media section
	// taken over this way (its receiver counts the packets, but assembles no frame: seen
	// with Firefox 153 ESR), so every track gets a section of its own.
	noReuse bool
}

// publication is where a published track comes from in the publisher's peer connection.
type publication struct {
	receiver *webrtc.RTPReceiver
	mid      string // its media section
}

type subscription struct {
	down       *downTrack
	tr         *webrtc.RTPTransceiver
	sender     *webrtc.RTPSender
	ssrc       uint32 // sender's
	negotiated bool   // an answer has covered it
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
	if cfg.MaxTracks == 0 {
		cfg.MaxTracks = DefaultMaxTracks
	}
	if cfg.MaxTrackBitrate == 0 {
		cfg.MaxTrackBitrate = DefaultMaxTrackBitrate
	}
	if cfg.MaxTrackPacketRate == 0 {
		cfg.MaxTrackPacketRate = DefaultMaxTrackPacketRate
	}
	s := &SFU{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "sfu"),
		events:   newEventQueue(),
		loopDone: make(chan struct{}),
		rooms:    make(map[string]*room),
	}
	media, err := listenMedia(cfg.MediaPort, cfg.LoopbackOnly, s.log)
	if err != nil {
		return nil, fmt.Errorf("sfu: %w", err)
	}
	s.media = media
	go s.loop()
	s.spawn(s.allocateLoop)
	return s, nil
}

// newAPI makes the API of one peer connection, over the media port's current addresses:
// Pion's default interceptors but its NACK responder and sender reports; before them,
// closest to the network, the SFU's SRTP write path out (srtpout.go; nil for none), the
// counter of the NACKs it sends (nack.go), what counts every packet sent to this
// participant (ob: transport-wide sequence numbers, the bandwidth estimate, sender reports;
// outbound.go), and the SFU's own NACK responder (retransmit.go), whose retransmissions
// pass ob and get numbers of their own. out learns the connection's DTLS handshake through
// the setting engine, so an API serves one peer connection.
func (s *SFU) newAPI(out *srtpOut, ob *outbound) (*webrtc.API, error) {
	ics := []interceptor.Factory{nackCounter{&s.nacks}, ob, &s.resp}
	o := rtcapi.Options{LoopbackOnly: s.cfg.LoopbackOnly, UDPMux: s.media.current(), NoStats: true,
		NoNACKResponder: true, NoSenderReports: true, Logger: s.log}
	if out != nil {
		ics = append([]interceptor.Factory{out}, ics...)
		o.Settings = out.settings
	}
	o.Interceptors = ics
	return rtcapi.New(o)
}

// Handle takes a message addressed to the SFU (see signaling.SFU). It does not block.
func (s *SFU) Handle(m protocol.Message) { s.post(event{msg: m}) }

func (s *SFU) post(e event) { s.events.post(e) }

// Close closes every peer connection and waits for every goroutine of the SFU.
func (s *SFU) Close() error {
	s.events.close()
	<-s.loopDone
	s.wg.Wait()
	s.media.close()
	return nil
}

// MediaAddrs are the local addresses of the SFU's media port (Config.MediaPort).
func (s *SFU) MediaAddrs() []netip.AddrPort { return s.media.addrs() }

// loop hands each event to its room's goroutine, making the room on a join.
func (s *SFU) loop() {
	defer close(s.loopDone)
	for range s.events.wake {
		q, closing := s.events.take()
		s.mu.Lock()
		for _, e := range q {
			s.dispatch(e)
		}
		if closing {
			for _, r := range s.rooms {
				r.events.close()
			}
			clear(s.rooms)
		}
		s.mu.Unlock()
		if closing {
			return
		}
	}
}

// dispatch posts e to its room; s.mu is held.
func (s *SFU) dispatch(e event) {
	if e.p != nil {
		e.p.room.events.post(e) // a room that was removed drops it: its members are gone
		return
	}
	var sessionID string
	switch m := e.msg.(type) {
	case protocol.PeerJoined:
		sessionID = m.SessionID
		if s.rooms[sessionID] == nil {
			r := &room{id: sessionID, events: newEventQueue()}
			s.rooms[sessionID] = r
			s.spawn(func() { s.runRoom(r) })
		}
	case protocol.PeerLeft:
		sessionID = m.SessionID
	case protocol.Offer:
		sessionID = m.SessionID
	case protocol.Answer:
		sessionID = m.SessionID
	case protocol.Candidate:
		sessionID = m.SessionID
	default:
		s.log.Warn("unexpected message", "type", e.msg.Type())
		return
	}
	if r := s.rooms[sessionID]; r != nil {
		r.events.post(e)
	} else {
		s.log.Debug("message for no group", "session", sessionID, "type", e.msg.Type())
	}
}

// runRoom handles a room's events in order until the room stops.
func (s *SFU) runRoom(r *room) {
	for range r.events.wake {
		// The queue is taken under mu, so that allocate, which removes a room that is idle
		// (under mu), never removes one whose events are taken but not yet handled.
		r.mu.Lock()
		q, closing := r.events.take()
		for _, e := range q {
			s.handle(r, e)
		}
		if closing {
			for _, p := range r.members {
				s.closeParticipant(p)
			}
			r.members = nil
		}
		r.mu.Unlock()
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

// handle acts on one of r's events; r.mu is held.
func (s *SFU) handle(r *room, e event) {
	switch {
	case e.track != nil:
		s.published(e.p, e.track, e.receiver)
		return
	case e.connected:
		if !e.p.gone {
			if e.p.out != nil && !e.p.out.active() {
				if err := e.p.out.activate(e.p.pc); err != nil {
					s.log.Info("SRTP through Pion for this participant", "session", r.id, "user", e.p.id, "reason", err)
				}
			}
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
		s.join(r, m.PeerID)
	case protocol.PeerLeft:
		s.leave(r, m.PeerID)
	case protocol.Offer:
		if p := s.member(r, m.From); p != nil {
			s.clientOffer(p, m.SDP)
		}
	case protocol.Answer:
		if p := s.member(r, m.From); p != nil {
			s.clientAnswer(p, m.SDP)
		}
	case protocol.Candidate:
		if p := s.member(r, m.From); p != nil && m.Candidate != nil {
			s.candidate(p, rtcapi.CandidateInit(m.Candidate))
		}
	}
}

func (s *SFU) member(r *room, userID string) *participant {
	for _, p := range r.members {
		if p.id == userID {
			return p
		}
	}
	s.log.Debug("message from no participant", "session", r.id, "user", userID)
	return nil
}

// join gives a new member its peer connection and subscribes it to every published track;
// those are offered once its own first offer is answered.
func (s *SFU) join(r *room, userID string) {
	sessionID := r.id
	for _, p := range r.members {
		if p.id == userID {
			return
		}
	}
	p := &participant{id: userID, room: r, want: map[*forwarder]bool{}, subs: map[*forwarder]*subscription{},
		offerRate: rate.NewLimiter(offerRate, offerBurst),
		pubs:      map[*forwarder]publication{}, streams: map[string]string{}, topMid: -1}
	if err := s.newPeerConnection(p); err != nil {
		s.log.Error("new peer connection", "session", sessionID, "user", userID, "err", err)
		s.cfg.Send(userID, protocol.Error{Code: protocol.CodeUnsupported,
			Message: fmt.Sprintf("the SFU could not make a peer connection for you: %v", err)})
		return
	}
	pc, out := p.pc, p.out
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		s.cfg.Send(userID, rtcapi.CandidateMessage(sessionID, "", c))
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		s.post(event{p: p, track: t, receiver: rcv})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("peer connection state", "session", sessionID, "user", userID, "state", st)
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.post(event{p: p, connected: true})
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			if out != nil {
				out.close() // no more packets to an address that stopped answering
			}
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

// newPeerConnection makes a participant's peer connection and API, with its bandwidth
// estimator, NACK responder and SRTP write path (nil with Config.PionSRTP), over the media
// port's addresses as they are now: an address that appeared since the last one is
// offered from this one on.
func (s *SFU) newPeerConnection(p *participant) error {
	s.pcMu.Lock()
	defer s.pcMu.Unlock()
	if changed, err := s.media.refresh(); err != nil {
		s.log.Warn("media port addresses", "err", err)
	} else if changed {
		s.log.Info("SFU media", "udp", fmt.Sprint(s.media.addrs()))
	}
	ob := newOutbound(&s.nacks)
	var out *srtpOut
	if !s.cfg.PionSRTP {
		out = newSRTPOut(s.media, ob, &s.srtpDirect, &s.fwdDirect, &s.rtcpDirect)
	}
	api, err := s.newAPI(out, ob)
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	if out != nil {
		out.watch(pc)
	}
	p.pc, p.api, p.out = pc, api, out
	p.outbound, p.responder = ob, s.resp.take()
	if out != nil {
		out.rtcp.setup(p.outbound, p.responder, &s.nacks)
	}
	return nil
}

// leave closes a member's peer connection and takes its tracks from the others.
func (s *SFU) leave(r *room, userID string) {
	sessionID := r.id
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
	s.log.Debug("participant left", "session", sessionID, "user", userID)
}

func (s *SFU) closeParticipant(p *participant) {
	p.gone = true
	for f, sub := range p.subs {
		f.removeSubscriber(sub.down)
		// Stopping the sender ends its RTCP reader. Closing the peer connection stops the
		// senders it has, but not one set after Pion closed it itself (on the other side's
		// DTLS close_notify), which reuse guards against but could race.
		_ = sub.sender.Stop()
	}
	if p.out != nil {
		p.out.close()
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
	mid := ""
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			mid = tr.Mid()
		}
	}
	if !sendingMids(p.pc.RemoteDescription())[mid] {
		// A re-offer stopped the track before its first packet was handled here.
		_ = rcv.Stop()
		return
	}
	id := t.ID()
	if id == "" {
		id = fmt.Sprintf("%s%d", t.Kind(), len(p.published))
	}
	id = p.id + "-" + id
	// Pion reports each simulcast layer as a track of its own (one RID each): the later
	// layers join the forwarder of the first.
	if rid := t.RID(); rid != "" {
		for _, f := range p.published {
			if f.simulcast && f.id == id {
				l := f.addLayer(t)
				s.spawn(func() { f.forward(l) })
				s.spawn(func() { readPublisherRTCP(rcv, rid) })
				s.log.Debug("simulcast layer published", "session", p.room.id, "user", p.id, "track", f.id, "rid", rid)
				return
			}
		}
	}
	f := newForwarder(id, s.streamID(p, t.StreamID()), t, p.pc, s.cfg.KeyFrameInterval,
		newTrackLimit(s.cfg.MaxTrackBitrate, s.cfg.MaxTrackPacketRate, &s.overLimit))
	l := f.addLayer(t)
	p.published = append(p.published, f)
	p.pubs[f] = publication{receiver: rcv, mid: mid}
	s.spawn(func() { f.forward(l) })
	s.spawn(func() { readPublisherRTCP(rcv, t.RID()) })
	s.log.Debug("track published", "session", p.room.id, "user", p.id, "track", f.id, "rid", t.RID(), "codec", t.Codec().MimeType)
	for _, q := range p.room.members {
		if q != p {
			q.want[f] = true
			s.act(q, q.neg.Changed())
		}
	}
}

// readPublisherRTCP reads a receiver's RTCP (of one simulcast layer, when rid is set), so
// that the interceptors see the publisher's sender reports, until the receiver stops.
func readPublisherRTCP(rcv *webrtc.RTPReceiver, rid string) {
	for {
		var err error
		if rid != "" {
			_, _, err = rcv.ReadSimulcastRTCP(rid)
		} else {
			_, _, err = rcv.ReadRTCP()
		}
		if err != nil {
			return
		}
	}
}

// streamID is the stream ID subscribers see for a track of p's stream sid
// (docs/protocol.md, "Group sessions"): p's user ID for a stream of its first offer (or a
// track in no stream), "<user ID>~<n>" for the n-th stream it adds later.
func (s *SFU) streamID(p *participant, sid string) string {
	if fwd, ok := p.streams[sid]; ok {
		return fwd
	}
	fwd := p.id
	if sid != "" && sid != "-" && !p.primary[sid] {
		n := 1
		for _, v := range p.streams {
			if v != p.id {
				n++
			}
		}
		fwd = fmt.Sprintf("%s~%d", p.id, n)
	}
	p.streams[sid] = fwd
	return fwd
}

// unpublishStopped takes from the others the tracks p no longer sends, as its current
// remote description says: their media sections are gone, rejected (port 0), inactive or
// receive-only on p's side. Pion has stopped their receivers, which ends their forwarders;
// stopping them here too makes sure of it.
func (s *SFU) unpublishStopped(p *participant) {
	sending := sendingMids(p.pc.RemoteDescription())
	kept := p.published[:0]
	var gone []*forwarder
	for _, f := range p.published {
		if sending[p.pubs[f].mid] {
			kept = append(kept, f)
		} else {
			gone = append(gone, f)
		}
	}
	p.published = kept
	for _, f := range gone {
		_ = p.pubs[f].receiver.Stop()
		delete(p.pubs, f)
		s.log.Debug("track unpublished", "session", p.room.id, "user", p.id, "track", f.id)
		for _, q := range p.room.members {
			if q.want[f] {
				delete(q.want, f)
				s.act(q, q.neg.Changed())
			}
		}
	}
}

// sendingMids returns the mids of the media sections in which the remote side of desc
// sends media: not rejected, and sendrecv or sendonly (RFC 8866 §6.7; no direction
// attribute means sendrecv).
func sendingMids(desc *webrtc.SessionDescription) map[string]bool {
	out := map[string]bool{}
	forSending(desc, func(_ *sdp.MediaDescription, mid string) { out[mid] = true })
	return out
}

// forSending calls f, in order, for each media section of desc in which its side sends.
func forSending(desc *webrtc.SessionDescription, f func(m *sdp.MediaDescription, mid string)) {
	if desc == nil {
		return
	}
	// Parsed afresh: desc is Pion's own, which its goroutines read.
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		return
	}
	for _, m := range parsed.MediaDescriptions {
		mid, ok := m.Attribute(sdp.AttrKeyMID)
		if !ok || m.MediaName.Port.Value == 0 {
			continue
		}
		if _, ok := m.Attribute(sdp.AttrKeyRecvOnly); ok {
			continue
		}
		if _, ok := m.Attribute(sdp.AttrKeyInactive); ok {
			continue
		}
		f(m, mid)
	}
}

// topMid returns the highest numeric mid in an SDP, or -1.
func topMid(sdpText string) int {
	top := -1
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(sdpText); err != nil {
		return top
	}
	for _, m := range parsed.MediaDescriptions {
		if v, ok := m.Attribute(sdp.AttrKeyMID); ok {
			if n, err := strconv.Atoi(v); err == nil {
				top = max(top, n)
			}
		}
	}
	return top
}

// freeMid returns a mid no media section of p's peer connection, nor any offer p sent, has
// used.
func (p *participant) freeMid() string {
	top := p.topMid
	for _, tr := range p.pc.GetTransceivers() {
		if n, err := strconv.Atoi(tr.Mid()); err == nil {
			top = max(top, n)
		}
	}
	return strconv.Itoa(top + 1)
}

// fromFirefox reports whether an offer comes from Firefox, whose SDP origin (RFC 8866 §5.2)
// has the user name "mozilla...THIS_IS_SDPARTA-<version>".
func fromFirefox(sdpText string) bool {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(sdpText); err != nil {
		return false
	}
	return strings.HasPrefix(parsed.Origin.Username, "mozilla...THIS_IS_SDPARTA")
}

// msidStreams returns the stream IDs an SDP's a=msid lines name (RFC 8830 §2).
func msidStreams(sdpText string) map[string]bool {
	out := map[string]bool{}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(sdpText); err != nil {
		return out
	}
	for _, m := range parsed.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key == "msid" {
				if stream, _, _ := strings.Cut(a.Value, " "); stream != "" && stream != "-" {
					out[stream] = true
				}
			}
		}
	}
	return out
}

func (s *SFU) act(p *participant, a action) {
	if a == offer {
		s.offer(p)
	}
}

// clientOffer answers a participant's offer: its first, or a later one that changes what
// it publishes. An offer that crosses the SFU's own is ignored (the SFU is the impolite
// peer of perfect negotiation, W3C webrtc-pc §10.7): the participant rolls back, answers,
// and offers again.
func (s *SFU) clientOffer(p *participant, offerSDP string) {
	first := p.pc.RemoteDescription() == nil
	p.topMid = max(p.topMid, topMid(offerSDP))
	if !p.offerRate.Allow() {
		p.offersLimited++
		s.log.Info("client offer over the rate; ignored", "session", p.room.id, "user", p.id)
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeRateLimited, Ref: protocol.TypeOffer,
			Message: fmt.Sprintf("more than %d offers to the SFU at once, or %g per second; this one was ignored: offer again later",
				offerBurst, float64(offerRate))})
		return
	}
	if p.neg.ClientOffer() == glare {
		s.log.Debug("client offer crossed the SFU's; ignored", "session", p.room.id, "user", p.id)
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeGlare, Ref: protocol.TypeOffer,
			Message: "your offer crossed the SFU's offer and was ignored; answer the SFU's offer, then offer again"})
		return
	}
	if first {
		p.primary = msidStreams(offerSDP)
		p.noReuse = fromFirefox(offerSDP)
	}
	if err := s.answer(p, offerSDP); err != nil {
		s.log.Info("client offer", "session", p.room.id, "user", p.id, "err", err)
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeBadMessage, Ref: protocol.TypeOffer,
			Message: fmt.Sprintf("the SFU could not answer your offer: %v", err)})
		if first {
			return
		}
		if p.pc.SignalingState() != webrtc.SignalingStateStable {
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
				s.log.Error("roll back client offer", "session", p.room.id, "user", p.id, "err", err)
			}
		}
	}
	if !first {
		s.unpublishStopped(p)
	}
	s.act(p, p.neg.Answered())
}

func (s *SFU) answer(p *participant, sdp string) error {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("set remote offer: %w", err)
	}
	declined := s.limitTracks(p)
	narrowCodecs(p.pc)
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(ans); err != nil {
		return fmt.Errorf("set local answer: %w", err)
	}
	s.cfg.Send(p.id, protocol.Answer{SessionID: p.room.id, SDP: ans.SDP})
	s.flushCandidates(p)
	if len(declined) > 0 {
		s.log.Info("tracks over the limit declined", "session", p.room.id, "user", p.id, "mids", declined)
		s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeTooManyTracks, Ref: protocol.TypeOffer,
			Message: fmt.Sprintf("the server forwards at most %d tracks of each participant; it declined media sections %s "+
				"(a declined section stays declined: send that track in a new one)",
				s.cfg.MaxTracks, strings.Join(declined, ", "))})
	}
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
		// The media sections the offer ended are inactive now, free for new tracks.
		p.free = append(p.free, p.ending...)
		p.ending = nil
		// An answer can stop tracks too: one the participant removed before it got the
		// offer this answers (its offer saying so crossed ours and was ignored).
		s.unpublishStopped(p)
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
	deferred, err := s.sync(p)
	if err != nil {
		s.log.Error("update subscriptions", "session", p.room.id, "user", p.id, "err", err)
	}
	o, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = fitsMessage(p.room.id, o.SDP)
		if n := strings.Count(o.SDP, "\r\nm="); err == nil && s.cfg.MaxSections > 0 && n > s.cfg.MaxSections {
			err = fmt.Errorf("%w: %d media sections, more than %d", errOfferTooLarge, n, s.cfg.MaxSections)
		}
		if errors.Is(err, errOfferTooLarge) {
			s.cfg.Send(p.id, protocol.Error{Code: protocol.CodeTooLarge, Ref: protocol.TypeOffer,
				Message: fmt.Sprintf("the SFU cannot offer you this group's tracks: %v; you keep receiving what you do "+
					"until you leave the session and join it again, with a new peer connection", err)})
		}
	}
	if err == nil {
		err = p.pc.SetLocalDescription(o)
	}
	if err != nil {
		s.log.Error("offer", "session", p.room.id, "user", p.id, "err", err)
		p.neg.OfferFailed()
		return
	}
	s.offersSent.Add(1)
	s.log.Debug("offer", "session", p.room.id, "user", p.id, "tracks", len(p.subs), "bytes", len(o.SDP))
	s.cfg.Send(p.id, protocol.Offer{SessionID: p.room.id, SDP: o.SDP})
	if deferred {
		p.neg.Deferred()
	}
}

// sync brings p's senders in line with what it should receive (want), for the offer about
// to be made. A new track takes over the media section of one that ended, of its kind, once
// the client has answered the offer that ended it (W3C webrtc-pc §4.4.1.6: the section went
// inactive, so the track it carried ended; the new track in it is a new remote track). A new
// track of a kind this same offer ends a track of waits for the next offer, to take over that
// section then: deferred says so.
func (s *SFU) sync(p *participant) (deferred bool, err error) {
	var errs []error
	ending := map[webrtc.RTPCodecType]bool{}
	for f, sub := range p.subs {
		if p.want[f] {
			continue
		}
		f.removeSubscriber(sub.down)
		if p.out != nil {
			p.out.rtcp.remove(sub.ssrc)
		}
		if err := p.pc.RemoveTrack(sub.sender); err != nil {
			errs = append(errs, fmt.Errorf("remove track %s: %w", f.id, err))
		} else {
			p.ending = append(p.ending, sub.tr)
			ending[sub.tr.Kind()] = true
		}
		delete(p.subs, f)
	}
	for f := range p.want {
		if p.subs[f] != nil {
			continue
		}
		local, err := newLocalTrack(f.codec, f.id, f.streamID)
		if err != nil {
			errs = append(errs, fmt.Errorf("new track %s: %w", f.id, err))
			continue
		}
		tr, err := p.reuse(local)
		if err != nil {
			errs = append(errs, fmt.Errorf("reuse a media section for track %s: %w", f.id, err))
		}
		if tr == nil && ending[local.Kind()] {
			deferred = true
			continue
		}
		if tr == nil {
			if tr, err = p.addTransceiver(local); err != nil {
				errs = append(errs, fmt.Errorf("add track %s: %w", f.id, err))
				continue
			}
		}
		if cs := forwardedCodecs(tr.Sender().GetParameters().Codecs, f.codec); cs != nil {
			if err := tr.SetCodecPreferences(cs); err != nil {
				errs = append(errs, fmt.Errorf("codecs of track %s: %w", f.id, err))
			}
		}
		sender := tr.Sender()
		down := newDownTrack(local, p.out, f.clockRate, f.simulcast)
		// The subscriber's RTCP: NACKs are answered from the forwarder's cache; PLI and FIR
		// become a key frame request to the publisher. The SFU's SRTCP read path takes what
		// it can (rtcpin.go), this reader the rest; it ends when the sender stops.
		s.spawn(func() { f.readSubscriberRTCP(sender, down, &s.nacks, p.responder) })
		var ssrc uint32
		if enc := sender.GetParameters().Encodings; len(enc) > 0 {
			ssrc = uint32(enc[0].SSRC)
		}
		if p.out != nil {
			p.out.rtcp.add(ssrc, f, down)
		}
		f.addSubscriber(down)
		p.subs[f] = &subscription{down: down, tr: tr, sender: sender, ssrc: ssrc}
	}
	return deferred, errors.Join(errs...)
}

// reuse puts track in a free media section of its kind, with a new sender, or returns nil
// if there is none.
func (p *participant) reuse(track *localTrack) (*webrtc.RTPTransceiver, error) {
	if p.noReuse {
		return nil, nil
	}
	i := slices.IndexFunc(p.free, func(tr *webrtc.RTPTransceiver) bool { return tr.Kind() == track.Kind() })
	if i < 0 {
		return nil, nil
	}
	if p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		// Closed by the other side (DTLS close_notify) before its leave is handled: a
		// sender set now would never be stopped, nor would its RTCP reader end.
		return nil, errors.New("the peer connection is closed")
	}
	// Pion's AddTrack does not take over a section the remote side answered inactive, so
	// the sender is set by hand; the transceiver goes from inactive to sendonly.
	sender, err := p.api.NewRTPSender(track, p.pc.SCTP().Transport())
	if err != nil {
		return nil, err
	}
	tr := p.free[i]
	p.free = slices.Delete(p.free, i, i+1) // taken, or unusable if what follows fails
	if err := tr.SetSender(sender, track); err != nil {
		_ = sender.Stop()
		return nil, err
	}
	return tr, nil
}

// addTransceiver adds a media section that sends track.
func (p *participant) addTransceiver(track *localTrack) (*webrtc.RTPTransceiver, error) {
	tr, err := p.pc.AddTransceiverFromTrack(track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	// The SFU picks the mid: above every mid the participant has used, in offers the SFU
	// ignored too. A client that keeps a rolled-back transceiver's mid (Pion does; the
	// spec, W3C webrtc-pc §4.4.1.5, clears it) would otherwise find that mid on an SFU
	// media section.
	if err := tr.SetMid(p.freeMid()); err != nil {
		return tr, fmt.Errorf("mid: %w", err)
	}
	return tr, nil
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
	// SRTPDirect is how many RTP packets, in total since New, the SFU encrypted and queued
	// on the media port itself rather than through Pion's SRTP session (srtpout.go).
	SRTPDirect uint64 `json:"srtp_direct"`
	// ForwardedDirect is how many of those the forwarder wrote there itself, past Pion's
	// track and interceptors (srtpOut.forward); the others (retransmissions, and packets
	// written before a subscriber's stream was bound) came through them.
	ForwardedDirect uint64 `json:"forwarded_direct"`
	// RTCPDirect is how many SRTCP packets, in total since New, the SFU took off the media
	// port and acted on itself rather than through Pion's SRTCP session (rtcpin.go).
	RTCPDirect uint64 `json:"rtcp_direct"`
	// OverLimit is how many RTP packets of published tracks the SFU dropped, in total
	// since New, because they were over their track's rate limit (Config.MaxTrackBitrate,
	// MaxTrackPacketRate).
	OverLimit uint64 `json:"over_limit"`
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
	// Glares: its offers the SFU ignored because they crossed an SFU offer.
	Glares int `json:"glares"`
	// OffersRateLimited: its offers the SFU ignored because they came too fast
	// (error rate_limited).
	OffersRateLimited int `json:"offers_rate_limited"`
	Published         int `json:"published"`  // tracks it publishes
	Subscribed        int `json:"subscribed"` // tracks forwarded to it, as of the last offer
	// Stable: no offer is in flight or waiting, so Subscribed is what it receives.
	Stable bool `json:"stable"`
	// Sections is how many media sections its peer connection has: its own, those of the
	// tracks forwarded to it, and ended ones not yet taken over by a new track.
	Sections int `json:"sections"`
	// SRTPDirect: the SFU's own SRTP write path carries what it sends this participant
	// (srtpout.go); false until its peer connection is connected, and where that path
	// cannot be used (the SFU is not the DTLS server, or the ICE pair is not on the media
	// port).
	SRTPDirect bool `json:"srtp_direct"`
	// RTCPDirect: RTCP packets from it the SFU took off the media port and acted on itself
	// (rtcpin.go), since it joined.
	RTCPDirect uint64 `json:"rtcp_direct"`
	// Forwarded is how many RTP packets of its tracks were forwarded (once per packet,
	// whatever the number of subscribers).
	Forwarded uint64 `json:"forwarded"`
	// EstimateKbps is the SFU's bandwidth estimate towards it (package bwe, from TWCC
	// feedback), kbit/s; Subscriptions what it receives, with simulcast layers; Layers the
	// layers of what it publishes (simulcast.go).
	EstimateKbps  int                 `json:"estimate_kbps"`
	Subscriptions []SubscriptionStats `json:"subscriptions,omitempty"`
	Layers        []LayerStats        `json:"layers,omitempty"`
}

// Stats returns the current state.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{OffersSent: s.offersSent.Load(),
		NACKsReceived: s.nacks.received.Load(), NACKedPackets: s.nacks.nacked.Load(),
		Retransmissions: s.nacks.retransmitted.Load(),
		NACKsSent:       s.nacks.sent.Load(), NACKsSentPackets: s.nacks.sentPackets.Load(),
		Written: s.nacks.written.Load(), SRTPDirect: s.srtpDirect.Load(), ForwardedDirect: s.fwdDirect.Load(), RTCPDirect: s.rtcpDirect.Load(), OverLimit: s.overLimit.Load(), Media: s.media.stats()}
	for _, r := range s.rooms {
		r.mu.Lock()
		if len(r.members) > 0 {
			st.Rooms++
		}
		for _, p := range r.members {
			ps := ParticipantStats{ID: p.id, Session: r.id, OffersSent: p.neg.offers, Glares: p.neg.glares,
				OffersRateLimited: p.offersLimited, Published: len(p.published),
				Subscribed: len(p.subs), Stable: p.neg.Stable(), Sections: len(p.pc.GetTransceivers()),
				SRTPDirect: p.out != nil && p.out.active()}
			if p.out != nil {
				ps.RTCPDirect = p.out.rtcp.taken.Load()
			}
			for _, f := range p.published {
				ps.Forwarded += f.packets.Load()
			}
			if p.outbound != nil {
				ps.EstimateKbps = p.outbound.target() / 1000
			}
			ps.Subscriptions, ps.Layers = s.subscriptionStats(p), layerStats(p)
			st.Participants = append(st.Participants, ps)
		}
		r.mu.Unlock()
	}
	return st
}

// errOfferTooLarge says an SFU offer would not fit in one signaling message.
var errOfferTooLarge = errors.New("offer too large")

// fitsMessage checks that an offer fits in one signaling message (protocol.MaxMessageSize)
// as the server relays it. Every media section of the participant's peer connection
// counts, ended ones too: about 1.1 KB each (narrowCodecs), so some 55 sections fit, its own
// and forwarded ones.
func fitsMessage(sessionID, sdp string) error {
	b, err := protocol.Encode(protocol.Offer{SessionID: sessionID, From: protocol.ServerPeer, SDP: sdp})
	if err != nil {
		return err
	}
	if len(b) > protocol.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, more than the %d of a signaling message", errOfferTooLarge, len(b), protocol.MaxMessageSize)
	}
	return nil
}
