//go:build js && wasm

// Command client is Parley's browser client, compiled to WebAssembly and loaded by
// web/static/index.html: signaling over the browser's WebSocket with the shared protocol
// package, and the call over the browser's RTCPeerConnection, getUserMedia and
// RTCDataChannel. It makes calls the way the native client (peer/) does, so a tab can call
// `parley call` and back.
//
// Every JS callback only queues an event; one goroutine, the loop, runs them, so the state
// below has one owner. Browser promises are awaited on the loop or on goroutines of their
// own, never inside a callback.
//
// A link /s/{id} joins that session; /s/{id}#token={jwt} joins with a join token, which
// stays in the fragment so that no server log or Referer ever sees it.
//
// A group call (New group call, or a two-person call that a third person joins: the
// server then sends group_started) goes through the server's SFU: one RTCPeerConnection
// with it, and a grid with a tile per participant (group.go).
//
// For tests and the curious, window.parley shows the live state: pc (the RTCPeerConnection
// or null), state (see the state constants), sessionId, chat ("closed", "opening",
// "ready" or "unavailable"), group (whether the call goes through the SFU), participants
// (the user IDs of the remote participants with a live video tile), screens (the stream IDs
// of the remote screen shares shown, "<user ID>~<n>"), sharing (whether this side shares
// its screen), speaker (the highlighted participant's ID, "me", or ""), userId (this tab's
// user ID on the server), name (the display name this tab sent) and names (the other
// participants' display names, by user ID; names.go).
package main

import (
	"slices"
	"strings"
	"syscall/js"
	"time"

	"github.com/parley-rtc/parley/protocol"
)

// The call's states, as window.parley.state and body[data-state] show them.
const (
	stateIdle       = "idle"       // in no session: the lobby
	stateJoining    = "joining"    // asked the server to create or join a session
	stateWaiting    = "waiting"    // in a session, alone
	stateConnecting = "connecting" // a peer is there; offer/answer and ICE under way
	stateConnected  = "connected"  // media flows
	stateEnded      = "ended"      // this side hung up, or the call could not go on
)

type client struct {
	q  *queue
	ui *ui

	sig signaling

	state   string
	session string // the session this tab is in, or is rejoining after a reconnect
	// want is what to ask the server once the socket is up: "create", "join" or "";
	// wantGroup, with "create", makes it a group session.
	want, wantID string
	wantGroup    bool
	// password and token admit to a protected session: the password the person typed,
	// the join token from the link's #token= (a fragment never goes to a server).
	password, token string
	// relinked: the session was lost with the server, and a new one replaces it.
	relinked bool

	call  *peerCall  // the peer-to-peer call, or nil
	group *groupCall // the call through the SFU in a group session, or nil
	// resumeScreen is the screen capture of a share that goes on once the group call's
	// new peer connection is up (rejoinGroup), or undefined.
	resumeScreen js.Value
	rejoins      int // rejoinGroup calls, also window.parley.rejoins
	// peers are the other members of the session, as the server told of them; names
	// their display names, for those who gave one.
	peers []string
	names map[string]string

	media media

	// after runs once local media is settled: a call waiting for the camera.
	after func()
}

func main() {
	q := newQueue()
	c := &client{q: q, ui: newUI(), state: stateIdle}
	c.sig.c = c
	c.parley().Set("pc", js.Null())

	listen(q, c.ui.newSession, "click", false, func() { c.onNewCall(false) })
	listen(q, c.ui.newGroup, "click", false, func() { c.onNewCall(true) })
	listen(q, c.ui.unmuteGroup, "click", false, c.onUnmuteGroup)
	listen(q, c.ui.joinForm, "submit", true, c.onJoinForm)
	listen(q, c.ui.hangUp, "click", false, c.onHangUp)
	listen(q, c.ui.copyLink, "click", false, c.onCopyLink)
	listen(q, c.ui.muteMic, "click", false, c.onMuteMic)
	listen(q, c.ui.toggleCamera, "click", false, c.onToggleCamera)
	listen(q, c.ui.shareScreen, "click", false, c.onShareScreen)
	listen(q, c.ui.unmuteRemote, "click", false, c.onUnmuteRemote)
	listen(q, c.ui.chatForm, "submit", true, c.onChatSend)
	listen(q, c.ui.displayName, "input", false, c.onNameInput)
	c.loadName()

	// A link /s/{id} joins that session as soon as the server is reached.
	loc := js.Global().Get("location")
	if id, ok := strings.CutPrefix(loc.Get("pathname").String(), "/s/"); ok && id != "" {
		id = decodeURIComponent(id)
		if tok, ok := strings.CutPrefix(loc.Get("hash").String(), "#token="); ok {
			c.token = decodeURIComponent(tok)
		}
		c.want, c.wantID, c.state = "join", id, stateJoining
		c.ui.joinID.Set("value", id)
		c.setStatus("Joining…", false)
	} else {
		c.setStatus("Connecting to the server…", false)
	}
	c.render()

	go c.acquireMedia()
	q.push(c.sig.dial)
	q.run()
}

// parley is the window.parley object.
func (c *client) parley() js.Value {
	p := js.Global().Get("parley")
	if p.Type() != js.TypeObject {
		p = js.Global().Get("Object").New()
		js.Global().Set("parley", p)
	}
	return p
}

func (c *client) setState(s string) {
	c.state = s
	c.render()
}

func (c *client) inSession() bool {
	switch c.state {
	case stateWaiting, stateConnecting, stateConnected:
		return true
	}
	return false
}

// render brings the page up to date with the state: the one place the DOM is updated
// from it.
func (c *client) render() {
	u := c.ui
	u.body.Get("dataset").Set("state", c.state)
	p := c.parley()
	p.Set("state", c.state)
	p.Set("sessionId", c.session)

	in := c.inSession()
	setHidden(u.lobby, in)
	setHidden(u.share, !in)
	busy := c.state == stateJoining
	setDisabled(u.newSession, busy)
	setDisabled(u.newGroup, busy)
	setDisabled(u.joinSession, busy)
	setDisabled(u.hangUp, !in && !busy)
	if in {
		setText(u.sessionID, c.session)
		u.shareLink.Set("value", shareLink(c.session))
	}

	conn := "Not in a call"
	switch c.state {
	case stateJoining:
		conn = "Joining…"
	case stateWaiting:
		conn = "Waiting for someone to join"
	case stateConnecting, stateConnected:
		conn = "Connecting…"
		if c.call != nil {
			conn = c.call.describe()
		}
	}
	if c.group != nil && in {
		conn = c.group.describe()
	}
	setText(u.connState, conn)
	setText(u.remotePlaceholder, pick(c.state == stateConnecting, "Connecting…", "Nobody else is here yet"))

	group := c.group != nil
	u.body.Get("classList").Call("toggle", "group", group)
	setHidden(u.grid, !group)
	setHidden(u.remote, group)
	p.Set("group", group)
	participants := []any{}
	if group {
		participants = c.group.participants()
	}
	p.Set("participants", participants)
	p.Set("names", c.namesObject())
	screens := []any{}
	if group {
		screens = c.group.screens()
	}
	p.Set("screens", screens)
	sharing := group && c.group.screen != nil
	setHidden(u.shareScreen, !group || !in)
	setDisabled(u.shareScreen, !group || !c.group.answered || c.group.picking)
	setText(u.shareScreen, pick(sharing, "Stop sharing", "Share screen"))
	u.shareScreen.Call("setAttribute", "aria-pressed", pick(sharing, "true", "false"))
	p.Set("sharing", sharing)

	c.media.render(u)
	c.renderChat()
}

// setStatus shows a message for a person in the status line; isErr marks it as a problem.
func (c *client) setStatus(msg string, isErr bool) {
	setText(c.ui.status, msg)
	cls := "status"
	if isErr {
		cls += " error"
	}
	c.ui.status.Set("className", cls)
}

// setPath puts a session's link, or the lobby's, in the address bar without a reload.
func setPath(p string) {
	loc := js.Global().Get("location")
	if loc.Get("pathname").String() != p {
		js.Global().Get("history").Call("replaceState", js.Null(), "", p)
	}
}

func shareLink(session string) string {
	return js.Global().Get("location").Get("origin").String() + "/s/" + encodeURIComponent(session)
}

func encodeURIComponent(s string) string {
	return js.Global().Call("encodeURIComponent", s).String()
}

func decodeURIComponent(s string) (out string) {
	defer func() {
		if recover() != nil { // a malformed %-escape: use the text as it is
			out = s
		}
	}()
	return js.Global().Call("decodeURIComponent", s).String()
}

// onNewCall creates a session, a group session if group, once the server is reached.
func (c *client) onNewCall(group bool) {
	if c.inSession() || c.state == stateJoining {
		return
	}
	c.want, c.wantID, c.wantGroup = "create", "", group
	c.setState(stateJoining)
	c.setStatus(pick(group, "Creating a group call…", "Creating a call…"), false)
	c.sig.whenReady()
}

// onJoinForm joins the session whose ID, or link, is in the join box.
func (c *client) onJoinForm() {
	if c.inSession() || c.state == stateJoining {
		return
	}
	id := strings.TrimSpace(c.ui.joinID.Get("value").String())
	if i := strings.LastIndex(id, "/s/"); i >= 0 { // a pasted link
		id = decodeURIComponent(strings.Trim(id[i+3:], "/"))
	}
	if id == "" {
		c.setStatus("Type the session ID or paste the link you were sent.", true)
		return
	}
	if id != c.wantID {
		c.token = "" // a link's token is for its own session
	}
	c.password = c.ui.joinPassword.Get("value").String()
	c.want, c.wantID = "join", id
	c.setState(stateJoining)
	c.setStatus("Joining…", false)
	c.sig.whenReady()
}

func (c *client) onHangUp() {
	if c.session != "" {
		c.sig.send(protocol.LeaveSession{SessionID: c.session})
	}
	c.endCall()
	c.session, c.want, c.after, c.peers, c.names = "", "", nil, nil, nil
	c.sig.rejoins = 0
	setPath("/")
	c.setStatus("You left the call.", false)
	c.setState(stateEnded)
}

func (c *client) onCopyLink() {
	if c.session == "" {
		return
	}
	link := shareLink(c.session)
	clip := js.Global().Get("navigator").Get("clipboard")
	go func() {
		ok := false
		if clip.Truthy() { // only on secure pages (https, localhost)
			_, err := call(clip, "writeText", link)
			ok = err == nil
		}
		c.q.push(func() {
			if !ok { // select the link so that the person can copy it themselves
				c.ui.shareLink.Call("select")
				ok = c.ui.doc.Call("execCommand", "copy").Bool()
			}
			label := "Copied"
			if !ok {
				label = "Press Ctrl+C"
			}
			setText(c.ui.copyLink, label)
			time.AfterFunc(2*time.Second, func() { c.q.push(func() { setText(c.ui.copyLink, "Copy link") }) })
		})
	}()
}

// onWelcome runs on every (re)connection to the server: it asks for what the person wanted,
// or rejoins the session the tab was in before the connection was lost.
func (c *client) onWelcome() {
	switch {
	case c.session != "":
		c.sig.rejoin(c.session)
	case c.want == "create":
		c.sig.send(c.createMessage())
	case c.want == "join":
		c.sig.send(c.joinMessage(c.wantID))
	}
}

func (c *client) createMessage() protocol.CreateSession {
	name := c.ownName()
	c.parley().Set("name", name)
	return protocol.CreateSession{Group: c.wantGroup, Name: name}
}

func (c *client) joinMessage(id string) protocol.JoinSession {
	name := c.ownName()
	c.parley().Set("name", name)
	return protocol.JoinSession{SessionID: id, Password: c.password, Token: c.token, Name: name}
}

// handle acts on one message from the server.
func (c *client) handle(m protocol.Message) {
	switch m := m.(type) {
	case protocol.Ping:
		c.sig.send(protocol.Pong{})
	case protocol.SessionReady:
		if c.want != "create" { // hung up before the server answered
			c.sig.send(protocol.LeaveSession{SessionID: m.SessionID})
			return
		}
		c.want = ""
		c.session, c.peers, c.names = m.SessionID, nil, nil
		setPath("/s/" + encodeURIComponent(m.SessionID))
		switch {
		case c.relinked:
			c.relinked = false
			c.setStatus("The server lost your call while it was unreachable: here is a new link to send.", true)
		case m.Group:
			c.setStatus("Your group call is ready. Send the link to the people you want to talk to.", false)
		default:
			c.setStatus("Your call is ready. Send the link to the person you want to talk to.", false)
		}
		c.setState(stateWaiting)
		if m.Group {
			c.startGroup()
		}
	case protocol.Joined:
		c.onJoined(m)
	case protocol.JoinError:
		c.onJoinError(m)
	case protocol.GroupStarted:
		if m.SessionID != c.session || c.group != nil || !c.inSession() {
			return
		}
		// A third person joined: the peer-to-peer call is closed, and the call goes on
		// through the server with the same camera and microphone.
		c.setStatus("Someone else joined: the call becomes a group call…", false)
		c.startGroup()
	case protocol.PeerJoined:
		if !slices.Contains(c.peers, m.PeerID) {
			c.peers = append(c.peers, m.PeerID)
		}
		c.notePeerName(m.PeerID, m.Name)
		if c.group != nil {
			c.setStatus(c.displayName(m.PeerID)+" joined the call.", false)
			c.group.syncTiles()
			c.group.updateState()
			return
		}
		c.onPeerJoined(m.PeerID)
	case protocol.PeerLeft:
		c.peers = slices.DeleteFunc(c.peers, func(id string) bool { return id == m.PeerID })
		if c.group != nil {
			if c.inSession() {
				c.setStatus(c.displayName(m.PeerID)+" left the call.", false)
			}
			c.group.removeTile(m.PeerID)
			c.group.syncTiles()
			c.group.updateState()
			return
		}
		c.onPeerLeft(m.PeerID)
	case protocol.Offer:
		if c.group != nil {
			c.group.onOffer(m)
			return
		}
		if m.From == protocol.ServerPeer || c.session == "" {
			// The SFU's offer to a group call this client has left (it crossed the
			// hang-up), or any offer after hanging up: answering it would start a call
			// with no one, which then fails.
			return
		}
		c.onOffer(m)
	case protocol.Answer:
		c.onAnswer(m)
	case protocol.Candidate:
		c.onCandidate(m)
	case protocol.Error:
		if c.group != nil && m.Code == protocol.CodeGlare {
			// Our offer crossed the SFU's; answering it rolls ours back (group.go).
			js.Global().Get("console").Call("info", "parley: "+m.Message)
			return
		}
		if c.group != nil && m.Code == protocol.CodeTooLarge && m.Ref == protocol.TypeOffer && c.group.offers > 0 {
			// A new peer connection holds only the tracks there are now; one that never
			// took an SFU offer would be too large again.
			c.rejoinGroup()
			return
		}
		if c.group != nil && m.Code == protocol.CodeUnsupported && m.Ref != protocol.TypeOffer {
			// An answer or candidate of the peer-to-peer call, sent before this side heard
			// that the call became a group: it no longer matters.
			js.Global().Get("console").Call("info", "parley: "+m.Message)
			return
		}
		c.setStatus("The server could not act on a message: "+m.Message, true)
	}
}

func (c *client) onJoined(m protocol.Joined) {
	rejoined := c.session != ""
	if !rejoined && c.want != "join" { // hung up before the server answered
		c.sig.send(protocol.LeaveSession{SessionID: m.SessionID})
		return
	}
	c.want = ""
	c.sig.rejoins = 0
	c.session = m.SessionID
	c.peers = slices.Clone(m.Peers)
	c.setNames(m.Names)
	setPath("/s/" + encodeURIComponent(m.SessionID))
	if m.Group {
		c.setStatus(pick(len(m.Peers) == 0, "You are in the group call, alone for now. Send the link to invite people.",
			"Joined the group call. Connecting…"), false)
		c.startGroup()
		return
	}
	if len(m.Peers) == 0 {
		c.endCall()
		c.setStatus("You are in the call, alone for now. Send the link to the person you want to talk to.", false)
		c.setState(stateWaiting)
		return
	}
	// The members already there offer; a call from before a reconnect is over for them.
	if rejoined {
		c.setStatus("Back in the call; reconnecting to your peer…", false)
	} else {
		c.setStatus("Joined. Connecting to your peer…", false)
	}
	c.setState(stateConnecting)
}

func (c *client) onJoinError(m protocol.JoinError) {
	if c.session != "" { // rejoining after the server connection was lost
		switch {
		case m.Code == protocol.JoinFull && c.sig.rejoins < maxRejoins:
			// The server has not yet noticed that the old connection is gone: it
			// drops it within its 25 s idle timeout. Try again until then.
			c.sig.rejoinLater(c.session)
			return
		case c.call == nil && c.state == stateWaiting && len(c.peers) == 0:
			// Nobody had joined: start afresh with a new link.
			c.session, c.want, c.relinked, c.wantGroup = "", "create", true, c.group != nil
			c.endCall()
			c.sig.send(c.createMessage())
			return
		}
		c.session = ""
		c.endCall()
		setPath("/")
		c.setStatus("The call ended while the server was unreachable.", true)
		c.setState(stateEnded)
		return
	}
	id := m.SessionID
	if id == "" {
		id = c.wantID
	}
	c.want = ""
	setPath("/")
	switch m.Code {
	case protocol.JoinUnknown:
		c.setStatus("Session “"+id+"” was not found. Check the link, or start a new call.", true)
	case protocol.JoinFull:
		c.setStatus("Session “"+id+"” is full: it has as many people as it can take.", true)
	case protocol.JoinClosed:
		c.setStatus("Session “"+id+"” has ended. Start a new call.", true)
	case protocol.JoinWrongPassword:
		msg := "This call has a password: type it below the session ID, then Join."
		if c.password != "" {
			msg = "That is not the call's password. Try again."
		}
		c.setStatus(msg, true)
		c.ui.joinID.Set("value", id)
		setHidden(c.ui.joinPassword, false)
		c.ui.joinPassword.Call("focus")
	case protocol.JoinBadToken:
		c.setStatus("The link to session “"+id+"” is not valid (or no longer): ask for a new one.", true)
	default:
		c.setStatus("Could not join session “"+id+"”: "+m.Message, true)
	}
	c.setState(stateIdle)
}

// onPeerJoined is the cue of the member already in the session: it makes the offer.
func (c *client) onPeerJoined(peer string) {
	if c.call != nil && c.call.remote != peer && c.state == stateConnected {
		return // a third person; this client talks to one peer
	}
	who := "Someone"
	if c.names[peer] != "" {
		who = c.names[peer]
	}
	c.setStatus(who+" joined. Connecting…", false)
	c.prepareCall(peer, nil)
}

// onOffer is the newcomer's cue: it answers. An offer while a call exists replaces it
// (the peer reconnected); this client does not renegotiate within a call.
func (c *client) onOffer(m protocol.Offer) {
	c.prepareCall(m.From, &m)
}

// prepareCall starts the call with peer once local media is settled; meanwhile the
// unstarted call holds the peer's candidates and hears if the peer leaves.
func (c *client) prepareCall(peer string, offer *protocol.Offer) {
	c.endCall()
	p := newPeerCall(c, peer)
	c.call = p
	c.setState(stateConnecting)
	c.whenMediaReady(func() {
		if c.call == p {
			c.startCall(peer, offer)
		}
	})
}

func (c *client) onPeerLeft(peer string) {
	if !c.inSession() || (c.call != nil && c.call.remote != peer) {
		return
	}
	c.endCall()
	c.after = nil
	c.setStatus("Peer left the call. Stay here for them to come back, or hang up.", false)
	c.setState(stateWaiting)
}

// whenMediaReady runs f now if local media is settled, else once it is.
func (c *client) whenMediaReady(f func()) {
	if c.media.settled {
		f()
		return
	}
	c.after = f
	c.setStatus("Allow the camera and microphone to start the call, or block them to take it receive-only.", false)
}
