package sfu_test

// Client renegotiation through the SFU with real Pion peer connections over loopback UDP
// and real VP8 from the sample media: a participant adds a second video track (a screen
// share) mid-call and removes it, and a participant's offer crosses the SFU's (glare).
// The clients here are minimal polite peers of perfect negotiation (W3C webrtc-pc §10.7)
// talking to the SFU through Handle and Config.Send, without the signaling server.
//
// Pion v4.2.20 cannot roll back a local offer (its signaling state machine has no
// have-local-offer → stable transition for rollback), so a client that must cross the
// SFU's offer sends an offer it has created but not applied: when the SFU's offer comes,
// there is nothing to roll back. On the wire that is what a polite browser does.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley-rtc/parley/internal/leakcheck"
	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/rtcapi"
	"github.com/parley-rtc/parley/sfu"
)

const session = "screen-test-session"

func mediaDir() string {
	if d := os.Getenv("PARLEY_MEDIA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "media")
}

func loadVideo(t *testing.T, name string) *media.Stream {
	t.Helper()
	clip, err := media.Load(filepath.Join(mediaDir(), name))
	if err != nil || clip.Video == nil {
		t.Fatalf("load sample media %s: %v", name, err)
	}
	return clip.Video
}

// remoteTrack is what a client receives of one forwarded stream.
type remoteTrack struct {
	packets atomic.Int64
	octets  atomic.Int64 // payload bytes
	ended   atomic.Bool
	ssrc    uint32        // set before the track is seen
	lastSeq atomic.Uint32 // of the last packet read
	lastTS  atomic.Uint32 // RTP timestamp of the last packet read
	report  atomic.Pointer[seenReport]
}

// seenReport is a sender report about a track, and what had been read of the track when
// it came.
type seenReport struct {
	sr      rtcp.SenderReport
	packets int64
	octets  int64
	lastTS  uint32
	at      time.Time
}

// client is one participant: a Pion peer connection, and one goroutine (run) that owns
// the negotiation and handles the SFU's messages and the test's requests in order.
type client struct {
	t   *testing.T
	id  string
	sfu *sfu.SFU
	api *webrtc.API
	pc  *webrtc.PeerConnection

	inbox chan protocol.Message
	ops   chan func()
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}
	wg    sync.WaitGroup // media goroutines
	once  sync.Once

	// Owned by run.
	needOffer bool // what we send changed since our last offer
	hold      bool // keep the SFU's offers in held instead of answering them
	held      []string
	unapplied bool // our offer in flight was not applied locally (sent while holding)
	pending   []webrtc.ICECandidateInit

	glares    atomic.Int32 // glare errors from the SFU
	tooMany   atomic.Int32 // too_many_tracks errors from the SFU
	rollbacks atomic.Int32 // our offers rolled back for the SFU's
	plis      atomic.Int32 // key frame requests (PLI) the SFU sent about what we publish
	mu        sync.Mutex
	remote    map[string]*remoteTrack // by stream ID
	lastOffer string                  // the SFU's
	problems  []string
}

func newClient(t *testing.T, s *sfu.SFU, api *webrtc.API, id string) *client {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &client{t: t, id: id, sfu: s, api: api, pc: pc, inbox: make(chan protocol.Message, 4096),
		ops: make(chan func()), ctx: ctx, stop: stop, done: make(chan struct{}), remote: map[string]*remoteTrack{}}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		msg := rtcapi.CandidateMessage(session, protocol.ServerPeer, cand)
		msg.From = id
		s.Handle(msg)
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		rt := &remoteTrack{ssrc: uint32(tr.SSRC())}
		c.mu.Lock()
		c.remote[tr.StreamID()] = rt
		c.mu.Unlock()
		c.wg.Add(2)
		go func() { // the track's RTCP: ends with the track
			defer c.wg.Done()
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == rt.ssrc {
						rt.report.Store(&seenReport{sr: *sr, packets: rt.packets.Load(), octets: rt.octets.Load(),
							lastTS: rt.lastTS.Load(), at: time.Now()})
					}
				}
			}
		}()
		go func() { // ends when the SFU stops the track or the peer connection closes
			defer c.wg.Done()
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					rt.ended.Store(true)
					return
				}
				rt.lastSeq.Store(uint32(pkt.SequenceNumber))
				rt.lastTS.Store(pkt.Timestamp)
				rt.octets.Add(int64(len(pkt.Payload)))
				rt.packets.Add(1)
			}
		}()
	})
	go c.run()
	t.Cleanup(c.close)
	return c
}

func (c *client) run() {
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.ops:
			f()
		case m := <-c.inbox:
			c.handle(m)
		}
	}
}

// do runs f on the client's goroutine and waits for it.
func (c *client) do(f func()) {
	ran := make(chan struct{})
	c.ops <- func() { f(); close(ran) }
	<-ran
}

func (c *client) problem(format string, args ...any) {
	c.mu.Lock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *client) handle(m protocol.Message) {
	switch m := m.(type) {
	case protocol.Offer:
		c.mu.Lock()
		c.lastOffer = m.SDP
		c.mu.Unlock()
		if c.hold {
			c.held = append(c.held, m.SDP)
			return
		}
		c.answer(m.SDP)
	case protocol.Answer:
		if c.unapplied || c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			c.problem("an answer with no offer of ours in flight")
			return
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			c.problem("set answer: %v", err)
			return
		}
		c.flush()
		c.maybeOffer()
	case protocol.Candidate:
		if m.Candidate == nil {
			return
		}
		init := rtcapi.CandidateInit(m.Candidate)
		if c.pc.RemoteDescription() == nil {
			c.pending = append(c.pending, init)
		} else if err := c.pc.AddICECandidate(init); err != nil {
			c.problem("add candidate: %v", err)
		}
	case protocol.Error:
		if m.Code == protocol.CodeGlare && m.Ref == protocol.TypeOffer {
			c.glares.Add(1)
			return
		}
		if m.Code == protocol.CodeTooManyTracks && m.Ref == protocol.TypeOffer {
			c.tooMany.Add(1)
			return
		}
		c.problem("error from the SFU: %s: %s", m.Code, m.Message)
	}
}

// answer is the polite peer's move on the SFU's offer: roll back an offer of ours that
// crossed it, answer, and offer again afterwards.
func (c *client) answer(sdp string) {
	if c.unapplied { // our offer crossed this one: withdraw it, offer again after
		c.unapplied = false
		c.rollbacks.Add(1)
		c.needOffer = true
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		c.problem("set offer: %v", err)
		return
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(ans)
	}
	if err != nil {
		c.problem("answer: %v", err)
		return
	}
	c.sfu.Handle(protocol.Answer{SessionID: session, From: c.id, To: protocol.ServerPeer, SDP: ans.SDP})
	c.flush()
	c.maybeOffer()
}

func (c *client) flush() {
	for _, init := range c.pending {
		if err := c.pc.AddICECandidate(init); err != nil {
			c.problem("add candidate: %v", err)
		}
	}
	c.pending = nil
}

// maybeOffer offers if what we send changed and no negotiation is under way (what
// negotiationneeded does in a browser).
func (c *client) maybeOffer() {
	if !c.needOffer || c.unapplied || c.pc.SignalingState() != webrtc.SignalingStateStable {
		return
	}
	c.needOffer = false
	o, err := c.pc.CreateOffer(nil)
	if err == nil && c.hold {
		c.unapplied = true // see the file's comment
	} else if err == nil {
		err = c.pc.SetLocalDescription(o)
	}
	if err != nil {
		c.problem("offer: %v", err)
		return
	}
	c.sfu.Handle(protocol.Offer{SessionID: session, From: c.id, To: protocol.ServerPeer, SDP: o.SDP})
}

// addTrack adds track and renegotiates, and reads the SFU's RTCP for the sender's
// interceptors until the sender stops.
func (c *client) addTrack(track webrtc.TrackLocal) *webrtc.RTPSender {
	c.t.Helper()
	var sender *webrtc.RTPSender
	var err error
	c.do(func() {
		if sender, err = c.pc.AddTrack(track); err == nil {
			c.needOffer = true
			c.maybeOffer()
		}
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					c.plis.Add(1)
				}
			}
		}
	}()
	return sender
}

// publish adds a looped VP8 track in stream streamID and renegotiates; stop removes it
// and renegotiates again.
func (c *client) publish(v *media.Stream, trackID, streamID string) (stop func()) {
	c.t.Helper()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: v.MimeType, ClockRate: v.ClockRate},
		trackID, streamID)
	if err != nil {
		c.t.Fatal(err)
	}
	sender := c.addTrack(track)
	ctx, cancel := context.WithCancel(c.ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = media.Play(ctx, v, true, func(f media.Frame) error {
			return track.WriteSample(pmedia.Sample{Data: f.Data, Duration: f.Duration})
		})
	}()
	return func() {
		cancel()
		c.do(func() {
			if err := c.pc.RemoveTrack(sender); err != nil {
				c.problem("remove track: %v", err)
			}
			c.needOffer = true
			c.maybeOffer()
		})
	}
}

func (c *client) track(streamID string) *remoteTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote[streamID]
}

func (c *client) close() { c.once.Do(c.closeOnce) }

func (c *client) closeOnce() {
	c.stop()
	<-c.done
	if err := c.pc.Close(); err != nil {
		c.t.Errorf("%s: close: %v", c.id, err)
	}
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		c.t.Errorf("%s: %s", c.id, p)
	}
}

// startSFU starts an SFU configured as cfg, on loopback, that delivers its messages to the
// clients join makes: join(id) makes a client and has it join the session. The test closes
// the SFU itself (TestScreenShare checks what is left after Close).
func startSFU(t *testing.T, cfg sfu.Config) (s *sfu.SFU, join func(id string) *client) {
	t.Helper()
	var clients sync.Map // user ID → *client
	cfg.LoopbackOnly, cfg.Logger = true, slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Send = func(to string, m protocol.Message) {
		if c, ok := clients.Load(to); ok {
			select {
			case c.(*client).inbox <- m:
			case <-c.(*client).ctx.Done():
			}
		}
	}
	s, err := sfu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api, err := rtcapi.New(rtcapi.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, func(id string) *client {
		c := newClient(t, s, api, id)
		clients.Store(id, c)
		s.Handle(protocol.PeerJoined{SessionID: session, PeerID: id})
		return c
	}
}

// twoCameras starts an SFU configured as cfg with two members, A and B, each publishing
// the sample camera (streams "A" and "B" on the other side), and waits until the SFU
// forwards both. The test's cleanup closes them.
func twoCameras(t *testing.T, cfg sfu.Config) (s *sfu.SFU, a, b *client) {
	t.Helper()
	camera := loadVideo(t, "chrome-vp8.ivf")
	s, join := startSFU(t, cfg)
	t.Cleanup(func() { s.Close() })
	a, b = join("A"), join("B")
	t.Cleanup(a.close)
	t.Cleanup(b.close)
	a.publish(camera, "camera", "cam-A")
	b.publish(camera, "camera", "cam-B")
	waitFor(t, 60*time.Second, "the cameras forwarded", func() (bool, string) {
		return settled(s, map[string]int{"A": 1, "B": 1}, map[string]int{"A": 1, "B": 1})
	})
	return s, a, b
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %s (last: %s)", what, timeout, last)
		}
	}
}

// settled reports whether each participant publishes and receives as many tracks as
// wanted (by ID), with no negotiation under way.
func settled(s *sfu.SFU, published, subscribed map[string]int) (bool, string) {
	st := s.Stats()
	ok := len(st.Participants) == len(published)
	for _, p := range st.Participants {
		if p.Published != published[p.ID] || p.Subscribed != subscribed[p.ID] || !p.Stable {
			ok = false
		}
	}
	return ok, fmt.Sprintf("%+v", st.Participants)
}

// goroutines counts the goroutines whose stack contains fn.
func goroutines(fn string) int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			n++
		}
	}
	return n
}

// receiving waits until each client receives at least min more RTP packets of stream.
func receiving(t *testing.T, stream string, min int64, cs ...*client) {
	t.Helper()
	start := map[*client]int64{}
	for _, c := range cs {
		waitFor(t, 60*time.Second, c.id+" receiving "+stream, func() (bool, string) {
			rt := c.track(stream)
			return rt != nil && !rt.ended.Load(), fmt.Sprintf("track %v", rt != nil)
		})
		start[c] = c.track(stream).packets.Load()
	}
	for _, c := range cs {
		waitFor(t, 60*time.Second, fmt.Sprintf("%s receiving %d packets of %s", c.id, min, stream), func() (bool, string) {
			n := c.track(stream).packets.Load() - start[c]
			return n >= min, fmt.Sprintf("%d packets", n)
		})
	}
}

func ended(t *testing.T, stream string, cs ...*client) {
	t.Helper()
	for _, c := range cs {
		waitFor(t, 30*time.Second, c.id+"'s track of "+stream+" ended", func() (bool, string) {
			rt := c.track(stream)
			return rt != nil && rt.ended.Load(), fmt.Sprintf("track %v", rt != nil)
		})
	}
}

// TestScreenShare: three participants publish a camera each; A adds a screen share with a
// re-offer, B and C receive it as stream "A~1"; A stops it, and their tracks of it end.
// Then C shares while an SFU offer to C is in flight (glare): the SFU ignores C's offer,
// C rolls back and answers, offers again, and A and B receive C's screen. Offers stay
// within the changes each participant saw, the forwarders of stopped tracks end, and once
// everyone has left no goroutine remains.
func TestScreenShare(t *testing.T) {
	g0, fd0 := leakcheck.Settle(-1, -1, 5*time.Second, 200*time.Millisecond)
	camera, screen := loadVideo(t, "chrome-vp8.ivf"), loadVideo(t, "chrome-vp8-opus.webm")
	s, join := startSFU(t, sfu.Config{})

	ids := []string{"A", "B", "C"}
	cs := map[string]*client{}
	for _, id := range ids {
		cs[id] = join(id)
		cs[id].publish(camera, "camera", "cam-"+id)
	}
	a, b, c := cs["A"], cs["B"], cs["C"]
	pub := map[string]int{"A": 1, "B": 1, "C": 1}
	sub := map[string]int{"A": 2, "B": 2, "C": 2}
	waitFor(t, 60*time.Second, "three cameras forwarded", func() (bool, string) { return settled(s, pub, sub) })
	receiving(t, "A", 30, b, c)
	receiving(t, "B", 30, a, c)
	receiving(t, "C", 30, a, b)

	// A shares its screen: a second video track, in a stream of its own.
	stopA := a.publish(screen, "screen", "screen-A")
	pub["A"], sub["B"], sub["C"] = 2, 3, 3
	waitFor(t, 60*time.Second, "A's screen forwarded", func() (bool, string) { return settled(s, pub, sub) })
	receiving(t, "A~1", 30, b, c)
	if n := goroutines("(*forwarder).forward"); n != 4 {
		t.Errorf("%d forwarders running with 4 tracks published", n)
	}

	// A stops sharing; C holds the SFU's offer about it, and meanwhile shares its own
	// screen: its offer crosses the SFU's.
	c.do(func() { c.hold = true })
	stopA()
	waitFor(t, 30*time.Second, "the SFU's offer to C held", func() (bool, string) {
		var n int
		c.do(func() { n = len(c.held) })
		return n == 1, fmt.Sprintf("%d held", n)
	})
	ended(t, "A~1", b)
	stopC := c.publish(screen, "screen", "screen-C")
	waitFor(t, 30*time.Second, "C told of glare", func() (bool, string) { return c.glares.Load() == 1, "" })
	c.do(func() {
		c.hold = false
		for _, sdp := range c.held {
			c.answer(sdp)
		}
		c.held = nil
	})
	pub["A"], pub["C"], sub["A"], sub["B"], sub["C"] = 1, 2, 3, 3, 2
	waitFor(t, 60*time.Second, "glare settled, C's screen forwarded", func() (bool, string) { return settled(s, pub, sub) })
	receiving(t, "C~1", 30, a, b)
	ended(t, "A~1", c)
	if r := c.rollbacks.Load(); r != 1 {
		t.Errorf("C rolled back %d offers, want 1", r)
	}
	receiving(t, "A", 30, b, c) // the cameras go on
	receiving(t, "C", 30, a, b)

	stopC()
	pub["C"], sub["A"], sub["B"] = 1, 2, 2
	waitFor(t, 60*time.Second, "C's screen unpublished", func() (bool, string) { return settled(s, pub, sub) })
	ended(t, "C~1", a, b)
	receiving(t, "B", 30, a, c)
	waitFor(t, 30*time.Second, "the screens' forwarders ended", func() (bool, string) {
		n := goroutines("(*forwarder).forward")
		return n == 3, fmt.Sprintf("%d forwarders", n)
	})

	// Each participant's subscriptions changed: A: B's and C's camera, C's screen on and
	// off (4); B: A's and C's camera, two screens on and off (6); C: both cameras (one
	// change when it joined after them, or two), A's screen on and off (3 or 4). No more
	// offers than that; and at least one, which proves offers were made.
	st := s.Stats()
	limit := map[string]int{"A": 4, "B": 6, "C": 4}
	for _, p := range st.Participants {
		t.Logf("%s: %d offers, %d glares", p.ID, p.OffersSent, p.Glares)
		if p.OffersSent < 1 || p.OffersSent > limit[p.ID] {
			t.Errorf("the SFU sent %s %d offers, want 1 to %d", p.ID, p.OffersSent, limit[p.ID])
		}
		if want := map[string]int{"C": 1}[p.ID]; p.Glares != want {
			t.Errorf("%s: %d glares, want %d", p.ID, p.Glares, want)
		}
	}

	// Every media section of the SFU's offers lists one codec and its RTX at most: those of
	// the participant's own tracks too, live or ended (each would otherwise list every
	// codec the participant offered, several KB).
	for _, id := range ids {
		cs[id].mu.Lock()
		offer := cs[id].lastOffer
		cs[id].mu.Unlock()
		for i, sec := range strings.Split(offer, "\r\nm=")[1:] {
			if n := strings.Count(sec, "a=rtpmap:"); n > 2 {
				t.Errorf("the SFU's last offer to %s lists %d codecs in media section %d (%d bytes)", id, n, i, len(sec))
			}
		}
	}

	// Each client stops before the SFU hears it left: the others' renegotiations as people
	// leave are not what this test is about, and a client answering one while it closes
	// would report its own closing as a problem.
	for _, id := range ids {
		cs[id].close()
		s.Handle(protocol.PeerLeft{SessionID: session, PeerID: id})
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if g, fd := leakcheck.Settle(g0, fd0, 20*time.Second, 200*time.Millisecond); g > g0 || fd > fd0 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines (baseline %d), %d fds (baseline %d) after the call:\n%s", g, g0, fd, fd0,
			buf[:runtime.Stack(buf, true)])
	}
}
