//go:build js && wasm

package main

import (
	"errors"
	"syscall/js"

	"github.com/parley-rtc/parley/protocol"
)

// maxRestarts is how many times the offering side starts a failed call afresh.
const maxRestarts = 2

// peerCall is one RTCPeerConnection with one remote peer, from the offer to its close.
type peerCall struct {
	c       *client
	remote  string   // the peer's user ID
	pc      js.Value // null until start
	dc      js.Value // the chat channel
	h       handlers
	offerer bool
	started bool

	remoteSet bool
	// pending holds remote candidates that came before the remote description was set
	// (RFC 8838 §4.1 allows that); undefined stands for end-of-candidates.
	pending []js.Value

	pcState, iceState string
	stream            js.Value // the remote MediaStream shown in #remote-video
	restarts          int

	chat     chatState
	chatNote string
}

func newPeerCall(c *client, remote string) *peerCall {
	return &peerCall{c: c, remote: remote, pc: js.Null(), dc: js.Null(), h: handlers{q: c.q}, chat: chatClosed}
}

// on sets a handler on one of this call's objects that runs only while the call is live.
func (p *peerCall) on(target js.Value, name string, f func(ev js.Value)) {
	p.h.on(target, name, func(ev js.Value) {
		if p.c.call == p {
			f(ev)
		}
	})
}

// startCall sets up the peer connection with remote: an offer to it when offer is nil
// (this side was in the session first), else an answer to offer. The prepared call c.call
// is used if it is for remote and not yet started.
func (c *client) startCall(remote string, offer *protocol.Offer) {
	p := c.call
	if p == nil || p.started || p.remote != remote {
		c.endCall()
		p = newPeerCall(c, remote)
		c.call = p
	}
	if err := p.start(offer); err != nil {
		if c.call == p {
			c.endCall()
		}
		c.setStatus("Could not start the call: "+err.Error(), true)
		c.setState(stateWaiting)
	}
}

func (p *peerCall) start(offer *protocol.Offer) error {
	c := p.c
	p.started = true
	p.offerer = offer == nil
	pc, err := newPeerConnection(c.sig.iceServers)
	if err != nil {
		return err
	}
	p.pc = pc
	c.parley().Set("pc", pc)
	p.stream = js.Global().Get("MediaStream").New()

	p.on(pc, "onicecandidate", p.onICECandidate)
	p.on(pc, "oniceconnectionstatechange", func(js.Value) { p.onStateChange() })
	p.on(pc, "onconnectionstatechange", func(js.Value) { p.onStateChange() })
	p.on(pc, "ontrack", p.onTrack)

	// Both sides create the chat channel with the same id, so neither waits for the
	// other's DCEP open (RFC 8832) and no ondatachannel is needed.
	p.dc = pc.Call("createDataChannel", "chat", map[string]any{"negotiated": true, "id": 0})
	p.chat = chatOpening
	p.on(p.dc, "onopen", func(js.Value) { p.onChatOpen() })
	p.on(p.dc, "onmessage", func(ev js.Value) { p.onChatMessage(ev.Get("data")) })
	p.on(p.dc, "onclose", func(js.Value) { p.setChat(chatUnavailable, "the chat closed") })

	if p.offerer {
		c.media.addTracks(pc, true)
		desc, err := call(pc, "createOffer")
		if err != nil {
			return errors.New("create offer: " + err.Error())
		}
		if _, err := call(pc, "setLocalDescription", desc); err != nil {
			return errors.New("set local offer: " + err.Error())
		}
		c.sig.send(protocol.Offer{SessionID: c.session, To: p.remote, SDP: desc.Get("sdp").String()})
		return nil
	}
	if err := p.setRemote("offer", offer.SDP); err != nil {
		return err
	}
	// Added after the offer is applied, the tracks take the offered transceivers.
	c.media.addTracks(pc, false)
	desc, err := call(pc, "createAnswer")
	if err != nil {
		return errors.New("create answer: " + err.Error())
	}
	if _, err := call(pc, "setLocalDescription", desc); err != nil {
		return errors.New("set local answer: " + err.Error())
	}
	c.sig.send(protocol.Answer{SessionID: c.session, To: p.remote, SDP: desc.Get("sdp").String()})
	return nil
}

func newPeerConnection(servers []protocol.ICEServer) (pc js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			jerr, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = errors.New("new RTCPeerConnection: " + toError(jerr.Value).Error())
		}
	}()
	ctor := js.Global().Get("RTCPeerConnection")
	if !ctor.Truthy() {
		return js.Null(), errors.New("this browser has no WebRTC (RTCPeerConnection)")
	}
	list := make([]any, 0, len(servers))
	for _, s := range servers {
		urls := make([]any, len(s.URLs))
		for i, u := range s.URLs {
			urls[i] = u
		}
		o := map[string]any{"urls": urls}
		if s.Username != "" {
			o["username"] = s.Username
		}
		if s.Credential != "" {
			o["credential"] = s.Credential
		}
		list = append(list, o)
	}
	return ctor.New(map[string]any{"iceServers": list}), nil
}

// setRemote applies the peer's offer or answer and then the candidates held for it.
func (p *peerCall) setRemote(typ, sdp string) error {
	if _, err := call(p.pc, "setRemoteDescription", map[string]any{"type": typ, "sdp": sdp}); err != nil {
		return errors.New("set remote " + typ + ": " + err.Error())
	}
	p.remoteSet = true
	p.chatOffered(sdp)
	for _, cand := range p.pending {
		p.addCandidate(cand)
	}
	p.pending = nil
	return nil
}

func (p *peerCall) addCandidate(cand js.Value) {
	var err error
	if cand.IsUndefined() {
		_, err = call(p.pc, "addIceCandidate")
	} else {
		_, err = call(p.pc, "addIceCandidate", cand)
	}
	if err != nil {
		js.Global().Get("console").Call("warn", "parley: remote ICE candidate:", err.Error())
	}
}

func (c *client) onAnswer(m protocol.Answer) {
	if c.group != nil {
		c.group.onAnswer(m)
		return
	}
	p := c.call
	if p == nil || !p.offerer || p.remoteSet || m.From != p.remote {
		return
	}
	if err := p.setRemote("answer", m.SDP); err != nil {
		c.endCall()
		c.setStatus("Could not start the call: "+err.Error(), true)
		c.setState(stateWaiting)
	}
}

func (c *client) onCandidate(m protocol.Candidate) {
	if c.group != nil {
		c.group.onCandidate(m)
		return
	}
	p := c.call
	if p == nil || (m.From != p.remote && p.remote != "") {
		return
	}
	cand := candidateInit(m)
	if !p.remoteSet {
		p.pending = append(p.pending, cand)
		return
	}
	p.addCandidate(cand)
}

// candidateInit is m's candidate as an RTCIceCandidateInit, or undefined for
// end-of-candidates.
func candidateInit(m protocol.Candidate) js.Value {
	if m.Candidate == nil {
		return js.Undefined()
	}
	init := map[string]any{"candidate": m.Candidate.Candidate}
	if m.Candidate.SDPMid != nil {
		init["sdpMid"] = *m.Candidate.SDPMid
	}
	if m.Candidate.SDPMLineIndex != nil {
		init["sdpMLineIndex"] = int(*m.Candidate.SDPMLineIndex)
	}
	if m.Candidate.UsernameFragment != nil {
		init["usernameFragment"] = *m.Candidate.UsernameFragment
	}
	return js.ValueOf(init)
}

// onICECandidate trickles a local candidate.
func (p *peerCall) onICECandidate(ev js.Value) {
	msg, ok := localCandidate(ev)
	if !ok {
		return
	}
	msg.SessionID, msg.To = p.c.session, p.remote
	p.c.sig.send(msg)
}

// localCandidate is the Candidate message (without its addressing) for an icecandidate
// event; the null candidate that ends gathering is end_of_candidates. ok is false for an
// event to skip.
func localCandidate(ev js.Value) (msg protocol.Candidate, ok bool) {
	cand := ev.Get("candidate")
	if cand.IsNull() || cand.IsUndefined() {
		msg.EndOfCandidates = true
		return msg, true
	}
	init := cand.Call("toJSON")
	s := init.Get("candidate").String()
	if s == "" { // Firefox's per-section end of candidates; the null one follows
		return msg, false
	}
	msg.Candidate = &protocol.ICECandidate{Candidate: s}
	if v := init.Get("sdpMid"); v.Type() == js.TypeString {
		mid := v.String()
		msg.Candidate.SDPMid = &mid
	}
	if v := init.Get("sdpMLineIndex"); v.Type() == js.TypeNumber {
		idx := uint16(v.Int())
		msg.Candidate.SDPMLineIndex = &idx
	}
	if v := init.Get("usernameFragment"); v.Type() == js.TypeString {
		ufrag := v.String()
		msg.Candidate.UsernameFragment = &ufrag
	}
	return msg, true
}

func (p *peerCall) onTrack(ev js.Value) {
	p.stream.Call("addTrack", ev.Get("track"))
	v := p.c.ui.remoteVideo
	if !v.Get("srcObject").Equal(p.stream) {
		v.Set("srcObject", p.stream)
	}
	p.c.playRemote()
}

func (p *peerCall) onStateChange() {
	c := p.c
	prev := p.pcState
	p.iceState = p.pc.Get("iceConnectionState").String()
	if s := p.pc.Get("connectionState"); s.Type() == js.TypeString {
		p.pcState = s.String()
	} else { // browsers without it go by ICE alone
		p.pcState = p.iceState
		if p.pcState == "completed" {
			p.pcState = "connected"
		}
	}
	if p.pcState == prev {
		c.render()
		return
	}
	switch p.pcState {
	case "connected":
		p.restarts = 0
		if name := c.names[p.remote]; name != "" {
			c.setStatus("You are connected with "+name+".", false)
		} else {
			c.setStatus("You are connected.", false)
		}
		if c.state != stateConnected {
			c.state = stateConnected
			p.chatDeadline()
		}
	case "disconnected":
		c.setStatus("The connection to your peer is interrupted; trying to recover…", true)
	case "failed":
		p.onFailed()
		return
	}
	c.render()
}

// onFailed starts a call that could not connect, or lost its path, afresh: the offering
// side offers again, the other answers the new offer when it comes.
func (p *peerCall) onFailed() {
	c := p.c
	remote, restarts := p.remote, p.restarts
	c.endCall()
	if p.offerer && restarts < maxRestarts && c.sig.open {
		c.setStatus("The connection to your peer failed; trying again…", true)
		c.setState(stateConnecting)
		c.startCall(remote, nil)
		if c.call != nil {
			c.call.restarts = restarts + 1
		}
		return
	}
	c.setStatus("Could not connect to your peer: the network between you blocks the call "+
		"(a TURN server would get through). Hang up and try again.", true)
	c.setState(stateWaiting)
}

// describe is the connection state for a person.
func (p *peerCall) describe() string {
	switch p.pcState {
	case "connected":
		return "Connected"
	case "disconnected":
		return "Interrupted"
	case "failed":
		return "Failed"
	case "closed":
		return "Closed"
	}
	if p.iceState == "checking" {
		return "Connecting… (checking network paths)"
	}
	return "Connecting…"
}

// endCall closes the peer connection, peer-to-peer or with the SFU, if there is one.
func (c *client) endCall() {
	if c.group != nil {
		c.endGroup()
		c.render()
	}
	p := c.call
	if p == nil {
		return
	}
	c.call = nil
	p.h.release()
	if p.dc.Truthy() {
		p.dc.Call("close")
	}
	if p.pc.Truthy() {
		p.pc.Call("close")
	}
	c.parley().Set("pc", js.Null())
	c.ui.remoteVideo.Set("srcObject", js.Null())
	setHidden(c.ui.unmuteRemote, true)
	c.render()
}

// playRemote starts the remote video with its sound. A browser may refuse sound until the
// person has touched the page; the video then plays muted with a button to turn sound on.
func (c *client) playRemote() {
	v := c.ui.remoteVideo
	if !v.Get("paused").Bool() {
		return
	}
	go func() {
		_, err := call(v, "play")
		if errorName(err) != "NotAllowedError" {
			return
		}
		c.q.push(func() {
			v.Set("muted", true)
			setHidden(c.ui.unmuteRemote, false)
			go call(v, "play")
		})
	}()
}

func (c *client) onUnmuteRemote() {
	v := c.ui.remoteVideo
	v.Set("muted", false)
	setHidden(c.ui.unmuteRemote, true)
	go call(v, "play")
}
