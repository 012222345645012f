//go:build js && wasm

package main

import (
	"errors"
	"slices"
	"strconv"
	"syscall/js"
	"time"

	"github.com/parley-rtc/parley/protocol"
)

// Active speaker detection: every speakerPoll the inbound audio levels (getStats
// inbound-rtp audioLevel, 0..1 linear, W3C webrtc-stats §6.4) are read; the loudest
// participant above speakerThreshold is highlighted, and the highlight goes after
// speakerQuiet polls in a row with nobody above it.
const (
	speakerPoll      = 300 * time.Millisecond
	speakerThreshold = 0.03
	speakerQuiet     = 4
)

// groupCall is the one RTCPeerConnection with the server's SFU in a group session
// (docs/protocol.md, "Group sessions"): this side offers first, answers the SFU's offers as
// the other participants' tracks come and go, and offers again when what it sends changes
// (a screen share, screen.go). It is the polite peer of perfect negotiation (W3C webrtc-pc
// §10.7): an SFU offer that crosses its own wins. There is no chat channel: the SFU
// carries none.
type groupCall struct {
	c       *client
	pc      js.Value // null until start
	h       handlers
	started bool

	answered bool // the SFU's answer to our offer is applied
	offers   int  // SFU offers answered
	// pending holds the SFU's candidates that came before its answer; undefined stands for
	// end-of-candidates. queued holds SFU offers that came while our own offer was still
	// unanswered (the SFU does not do that, but a reordering must not break the call).
	pending []js.Value
	queued  []string

	pcState, iceState string

	screen  *screenShare // this side's screen share, or nil
	picking bool         // the browser's screen picker is open

	me    *tile
	tiles map[string]*tile // remote participants' tiles, by user ID
	order []string         // their IDs, in the order the tiles appeared
	// owner maps a remote track's id to the participant who publishes it, for the audio
	// levels that getStats reports by trackIdentifier.
	owner   map[string]string
	speaker string // the highlighted participant ("" none, "me" this side)
	quiet   int    // polls in a row with nobody speaking
}

// tile is one participant's box in the grid: its video (which also plays its sound) and
// its name.
type tile struct {
	id         string
	el, video  js.Value
	label      js.Value // the name shown on the tile
	stream     js.Value // the participant's MediaStream (stream ID = user ID), or null
	watched    bool     // stream's removetrack handler is set
	hasVideo   bool
	unmuteWait bool // the browser refused to play its sound before a click
}

// startGroup begins negotiating with the SFU once local media is settled. Any
// peer-to-peer call is over: the caller has closed it.
func (c *client) startGroup() {
	c.endCall()
	g := &groupCall{c: c, pc: js.Null(), h: handlers{q: c.q}, tiles: map[string]*tile{}, owner: map[string]string{}}
	c.group = g
	g.me = g.newTile("me", "You")
	g.me.el.Get("classList").Call("add", "me")
	c.ui.grid.Call("prepend", g.me.el)
	g.syncTiles()
	c.render()
	c.whenMediaReady(func() {
		if c.group == g && !g.started {
			if err := g.start(); err != nil {
				c.endCall()
				c.setStatus("Could not start the group call: "+err.Error()+". Hang up and try again.", true)
				c.setState(stateWaiting)
			}
		}
	})
}

// on sets a handler on one of this group call's objects that runs only while it is live.
func (g *groupCall) on(target js.Value, name string, f func(ev js.Value)) {
	g.h.on(target, name, func(ev js.Value) {
		if g.c.group == g {
			f(ev)
		}
	})
}

// start makes the peer connection, adds the local tracks (or receive-only transceivers
// for the kinds there are none of) and offers to the SFU.
func (g *groupCall) start() error {
	c := g.c
	g.started = true
	pc, err := newPeerConnection(c.sig.iceServers)
	if err != nil {
		return err
	}
	g.pc = pc
	c.parley().Set("pc", pc)
	g.on(pc, "onicecandidate", g.onICECandidate)
	g.on(pc, "oniceconnectionstatechange", func(js.Value) { g.onStateChange() })
	g.on(pc, "onconnectionstatechange", func(js.Value) { g.onStateChange() })
	g.on(pc, "ontrack", g.onTrack)
	g.on(pc, "onnegotiationneeded", func(js.Value) { g.negotiate() })

	c.media.addTracksTo(pc, true, true)
	g.me.stream = c.media.stream
	g.syncTiles()
	desc, err := call(pc, "createOffer")
	if err != nil {
		return errors.New("create offer: " + err.Error())
	}
	if _, err := call(pc, "setLocalDescription", desc); err != nil {
		return errors.New("set local offer: " + err.Error())
	}
	c.sig.send(protocol.Offer{SessionID: c.session, To: protocol.ServerPeer, SDP: desc.Get("sdp").String()})
	g.pollSpeaker()
	return nil
}

// negotiate offers what this side now sends (a screen share started or stopped). The
// browser fires negotiationneeded again when it is back in the stable state if it still
// has something to negotiate, after a rollback too; the first offer is start's.
func (g *groupCall) negotiate() {
	if !g.answered || g.pc.Get("signalingState").String() != "stable" {
		return
	}
	if _, err := call(g.pc, "setLocalDescription"); err != nil { // an offer (W3C webrtc-pc §4.4.1.5)
		g.fail("offer: " + err.Error())
		return
	}
	g.c.sig.send(protocol.Offer{SessionID: g.c.session, To: protocol.ServerPeer,
		SDP: g.pc.Get("localDescription").Get("sdp").String()})
}

func (g *groupCall) onAnswer(m protocol.Answer) {
	if m.From != protocol.ServerPeer || !g.pc.Truthy() {
		return
	}
	if g.answered {
		g.onReanswer(m.SDP)
		return
	}
	if _, err := call(g.pc, "setRemoteDescription", map[string]any{"type": "answer", "sdp": m.SDP}); err != nil {
		g.fail("set the server's answer: " + err.Error())
		return
	}
	g.answered = true
	for _, cand := range g.pending {
		g.addCandidate(cand)
	}
	g.pending = nil
	queued := g.queued
	g.queued = nil
	for _, sdp := range queued {
		g.answerOffer(sdp)
	}
	if screen := g.c.resumeScreen; screen.Truthy() {
		g.c.resumeScreen = js.Undefined()
		if liveTracks(screen, "video") > 0 { // not ended by the browser's own "Stop sharing"
			g.startShare(screen)
		} else {
			stopTracks(screen)
		}
	}
	g.c.render() // screen sharing is possible from now on
}

// onReanswer applies the SFU's answer to one of this side's later offers.
func (g *groupCall) onReanswer(sdp string) {
	if st := g.pc.Get("signalingState").String(); st != "have-local-offer" {
		js.Global().Get("console").Call("info", "parley: an answer from the server in signaling state "+st+"; ignored")
		return
	}
	if _, err := call(g.pc, "setRemoteDescription", map[string]any{"type": "answer", "sdp": sdp}); err != nil {
		g.fail("set the server's answer: " + err.Error())
	}
}

// onOffer answers the SFU's renegotiation: tracks of other participants added, or made
// inactive when they leave.
func (g *groupCall) onOffer(m protocol.Offer) {
	if m.From != protocol.ServerPeer {
		return // a member's offer from before the call became a group
	}
	if !g.pc.Truthy() || !g.answered {
		g.queued = append(g.queued, m.SDP)
		return
	}
	g.answerOffer(m.SDP)
}

func (g *groupCall) answerOffer(sdp string) {
	if g.c.group != g {
		return
	}
	pc := g.pc
	// Every step below is awaited on the loop, so no other negotiation step interleaves.
	// An offer of ours in flight crossed this one (glare): the SFU ignores ours, and
	// setRemoteDescription(offer) rolls it back (W3C webrtc-pc §4.4.1.6, implicit
	// rollback); negotiationneeded then fires again.
	if st := pc.Get("signalingState").String(); st != "stable" {
		js.Global().Get("console").Call("info", "parley: the server's offer crossed ours (signaling state "+st+"); rolling ours back")
	}
	if _, err := call(pc, "setRemoteDescription", map[string]any{"type": "offer", "sdp": sdp}); err != nil {
		g.fail("set the server's offer: " + err.Error())
		return
	}
	desc, err := call(pc, "createAnswer")
	if err != nil {
		g.fail("create answer: " + err.Error())
		return
	}
	if _, err := call(pc, "setLocalDescription", desc); err != nil {
		g.fail("set local answer: " + err.Error())
		return
	}
	g.c.sig.send(protocol.Answer{SessionID: g.c.session, To: protocol.ServerPeer, SDP: desc.Get("sdp").String()})
	g.offers++
	g.syncTiles() // inactive sections have ended their tracks
}

// rejoinGroup starts the group call afresh when the SFU can offer no more (error
// too_large, docs/protocol.md "Offer size"): the peer connection holds media sections that
// carry nothing any more (the SFU reuses those of the tracks it forwarded, but not this
// side's own, such as one per screen share). The tab leaves the session and joins it
// again, and on joined starts a new peer connection, as at first. A screen share goes on: its capture
// is kept, and added to the new connection once the SFU has answered its first offer (the
// others see it stop and start again).
func (c *client) rejoinGroup() {
	var screen js.Value
	if g := c.group; g != nil && g.screen != nil {
		screen = g.screen.stream
		g.detachShare()
	}
	c.endCall()
	c.resumeScreen = screen
	c.rejoins++
	c.parley().Set("rejoins", c.rejoins)
	c.setStatus("Reconnecting to the group call…", false)
	c.sig.send(protocol.LeaveSession{SessionID: c.session})
	c.sig.send(c.joinMessage(c.session))
}

func (g *groupCall) onCandidate(m protocol.Candidate) {
	if m.From != protocol.ServerPeer {
		return
	}
	cand := candidateInit(m)
	if !g.answered {
		g.pending = append(g.pending, cand)
		return
	}
	g.addCandidate(cand)
}

func (g *groupCall) addCandidate(cand js.Value) {
	var err error
	if cand.IsUndefined() {
		_, err = call(g.pc, "addIceCandidate")
	} else {
		_, err = call(g.pc, "addIceCandidate", cand)
	}
	if err != nil {
		js.Global().Get("console").Call("warn", "parley: the server's ICE candidate:", err.Error())
	}
}

func (g *groupCall) onICECandidate(ev js.Value) {
	msg, ok := localCandidate(ev)
	if !ok {
		return
	}
	msg.SessionID, msg.To = g.c.session, protocol.ServerPeer
	g.c.sig.send(msg)
}

// onTrack files a forwarded track under its publisher: the stream ID is the publisher's
// user ID.
func (g *groupCall) onTrack(ev js.Value) {
	track := ev.Get("track")
	streams := ev.Get("streams")
	if streams.Length() == 0 {
		return // not a forwarded track: the SFU always sets the stream
	}
	stream := streams.Index(0)
	id := stream.Get("id").String()
	g.owner[track.Get("id").String()] = id
	t := g.tiles[id]
	if t == nil {
		t = g.addTile(id)
	}
	if isScreen(id) {
		t.el.Get("classList").Call("add", "screen")
	}
	if !t.stream.Equal(stream) {
		t.stream, t.watched = stream, false
	}
	if !t.watched {
		t.watched = true
		g.on(stream, "onremovetrack", func(js.Value) { g.syncTiles() })
	}
	g.on(track, "onended", func(js.Value) { g.syncTiles() })
	g.syncTiles()
}

func (g *groupCall) onStateChange() {
	c := g.c
	prev := g.pcState
	g.iceState = g.pc.Get("iceConnectionState").String()
	if s := g.pc.Get("connectionState"); s.Type() == js.TypeString {
		g.pcState = s.String()
	} else {
		g.pcState = g.iceState
		if g.pcState == "completed" {
			g.pcState = "connected"
		}
	}
	if g.pcState != prev {
		switch g.pcState {
		case "connected":
			c.setStatus("You are in a group call. Send the link to invite more people.", false)
		case "disconnected":
			c.setStatus("The connection to the server's media is interrupted; trying to recover…", true)
		case "failed":
			// The SFU takes one offer per participant: a new connection means joining again.
			g.fail("the media connection to the server failed")
			return
		}
	}
	g.updateState()
}

// fail ends the group call's media; the person can hang up and rejoin.
func (g *groupCall) fail(why string) {
	c := g.c
	c.endCall()
	c.setStatus("The group call stopped: "+why+". Hang up and open the link again to rejoin.", true)
	c.setState(stateWaiting)
}

// updateState sets the page's state from the group's: waiting while nobody else is there,
// then connecting until media flows.
func (g *groupCall) updateState() {
	c := g.c
	switch {
	case len(c.peers) == 0:
		c.state = stateWaiting
	case g.pcState == "connected":
		c.state = stateConnected
	default:
		c.state = stateConnecting
	}
	c.render()
}

func (g *groupCall) describe() string {
	n := len(g.c.peers) + 1
	people := strconv.Itoa(n) + " people"
	switch g.pcState {
	case "connected":
		return "Group call · " + people
	case "disconnected":
		return "Group call · interrupted"
	case "failed", "closed":
		return "Group call · failed"
	}
	return "Group call · connecting…"
}

func (g *groupCall) newTile(id, name string) *tile {
	doc := g.c.ui.doc
	el := doc.Call("createElement", "div")
	el.Set("className", "tile")
	el.Get("dataset").Set("peer", id)
	v := doc.Call("createElement", "video")
	v.Set("autoplay", true)
	v.Set("playsInline", true)
	v.Call("setAttribute", "playsinline", "")
	ph := doc.Call("createElement", "p")
	ph.Set("className", "novideo")
	ph.Set("textContent", "No video")
	label := doc.Call("createElement", "span")
	label.Set("className", "name")
	label.Set("textContent", name)
	el.Call("append", v, ph, label)
	return &tile{id: id, el: el, video: v, label: label, stream: js.Null()}
}

func (g *groupCall) addTile(id string) *tile {
	cls := "peer"
	if isScreen(id) {
		cls = "screen"
	}
	t := g.newTile(id, g.c.displayName(id))
	t.el.Get("classList").Call("add", cls)
	g.tiles[id] = t
	g.order = append(g.order, id)
	g.c.ui.grid.Call("append", t.el)
	return t
}

func (g *groupCall) removeTile(id string) {
	t := g.tiles[id]
	if t == nil {
		return
	}
	t.video.Set("srcObject", js.Null())
	t.el.Call("remove")
	delete(g.tiles, id)
	g.order = slices.DeleteFunc(g.order, func(s string) bool { return s == id })
	if g.speaker == id {
		g.speaker = ""
	}
}

// liveTracks is how many of stream's tracks of kind ("audio", "video", or "" for both)
// are live.
func liveTracks(stream js.Value, kind string) int {
	if !stream.Truthy() {
		return 0
	}
	method := "getTracks"
	switch kind {
	case "audio":
		method = "getAudioTracks"
	case "video":
		method = "getVideoTracks"
	}
	ts := stream.Call(method)
	n := 0
	for i := range ts.Length() {
		if ts.Index(i).Get("readyState").String() == "live" {
			n++
		}
	}
	return n
}

// syncTiles brings the grid up to date: a tile for each member of the session and for
// each participant whose tracks are live; the others' tiles go.
func (g *groupCall) syncTiles() {
	if g.c.group != g {
		return
	}
	for _, id := range g.c.peers {
		if g.tiles[id] == nil {
			g.addTile(id)
		}
	}
	for _, id := range slices.Clone(g.order) {
		t := g.tiles[id]
		if !slices.Contains(g.c.peers, id) && liveTracks(t.stream, "") == 0 {
			g.removeTile(id)
		}
	}
	tiles := append([]*tile{g.me}, g.tileList()...)
	if g.screen != nil {
		tiles = append(tiles, g.screen.tile)
	}
	for _, t := range tiles {
		t.hasVideo = liveTracks(t.stream, "video") > 0
		want := t.stream
		if liveTracks(t.stream, "") == 0 {
			want = js.Null()
		}
		if !t.video.Get("srcObject").Equal(want) {
			t.video.Set("srcObject", want)
			if want.Truthy() {
				if t == g.me || (g.screen != nil && t == g.screen.tile) {
					t.video.Set("muted", true) // no echo of oneself
				}
				g.play(t)
			}
		}
		if t != g.me && (g.screen == nil || t != g.screen.tile) {
			setText(t.label, g.c.displayName(t.id)) // a name can come after the tile
		}
		cls := t.el.Get("classList")
		cls.Call("toggle", "has-video", t.hasVideo)
		cls.Call("toggle", "speaking", t.id == g.speaker)
	}
	g.c.render()
}

func (g *groupCall) tileList() []*tile {
	ts := make([]*tile, 0, len(g.order))
	for _, id := range g.order {
		ts = append(ts, g.tiles[id])
	}
	return ts
}

// participants are the remote participants with a live video tile, in grid order (their
// screen shares not counted).
func (g *groupCall) participants() []any {
	ids := []any{}
	for _, t := range g.tileList() {
		if t.hasVideo && !isScreen(t.id) {
			ids = append(ids, t.id)
		}
	}
	return ids
}

// play starts a tile's video with its sound; if the browser wants a click first, the
// video plays muted and the page offers a button to hear everyone.
func (g *groupCall) play(t *tile) {
	v := t.video
	go func() {
		_, err := call(v, "play")
		if errorName(err) != "NotAllowedError" {
			return
		}
		g.c.q.push(func() {
			if g.c.group != g {
				return
			}
			v.Set("muted", true)
			t.unmuteWait = true
			setHidden(g.c.ui.unmuteGroup, false)
			go call(v, "play")
		})
	}()
}

func (c *client) onUnmuteGroup() {
	setHidden(c.ui.unmuteGroup, true)
	g := c.group
	if g == nil {
		return
	}
	for _, t := range g.tileList() {
		if t.unmuteWait {
			t.unmuteWait = false
			t.video.Set("muted", false)
			go call(t.video, "play")
		}
	}
}

// pollSpeaker schedules the next audio level reading.
func (g *groupCall) pollSpeaker() {
	time.AfterFunc(speakerPoll, func() {
		g.c.q.push(func() {
			if g.c.group == g {
				go g.measure(g.pc)
			}
		})
	})
}

// measure reads the audio levels, on a goroutine of its own (getStats is a promise).
func (g *groupCall) measure(pc js.Value) {
	levels := map[string]float64{}
	if rep, err := call(pc, "getStats"); err == nil {
		all := js.Global().Get("Array").Call("from", rep.Call("values"))
		for i := range all.Length() {
			s := all.Index(i)
			if s.Get("kind").String() != "audio" {
				continue
			}
			lv := s.Get("audioLevel")
			if lv.Type() != js.TypeNumber {
				continue
			}
			switch s.Get("type").String() {
			case "inbound-rtp":
				if id := s.Get("trackIdentifier"); id.Type() == js.TypeString {
					levels[id.String()] = lv.Float()
				}
			case "media-source": // the local microphone
				levels[""] = lv.Float()
			}
		}
	}
	g.c.q.push(func() {
		if g.c.group == g {
			g.setSpeaker(levels)
			g.pollSpeaker()
		}
	})
}

func (g *groupCall) setSpeaker(levels map[string]float64) {
	best, loudest := "", speakerThreshold
	for track, lv := range levels {
		who := "me"
		if track != "" {
			who = g.owner[track]
			if g.tiles[who] == nil {
				continue
			}
		} else if m := g.c.media.audio; !m.Truthy() || !m.Get("enabled").Bool() {
			continue // muted: the source still has a level
		}
		if lv > loudest {
			best, loudest = who, lv
		}
	}
	switch {
	case best != "":
		g.quiet = 0
	case g.quiet < speakerQuiet:
		g.quiet++
		return
	}
	if best != g.speaker {
		g.speaker = best
		g.c.parley().Set("speaker", best)
		g.syncTiles()
	}
}

// endGroup closes the group call's peer connection and empties the grid.
func (c *client) endGroup() {
	g := c.group
	if g == nil {
		return
	}
	c.group = nil
	if s := g.screen; s != nil {
		g.detachShare()
		s.track.Call("stop")
	}
	if c.resumeScreen.Truthy() { // the call ends before the share could go on
		stopTracks(c.resumeScreen)
		c.resumeScreen = js.Undefined()
	}
	g.h.release()
	if g.pc.Truthy() {
		g.pc.Call("close")
	}
	for _, id := range slices.Clone(g.order) {
		g.removeTile(id)
	}
	g.me.video.Set("srcObject", js.Null())
	g.me.el.Call("remove")
	setHidden(c.ui.unmuteGroup, true)
	c.parley().Set("pc", js.Null())
	c.parley().Set("speaker", "")
}
