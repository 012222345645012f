//go:build js && wasm

package main

import (
	"strings"
	"syscall/js"
)

// Screen sharing in a group call: the screen (getDisplayMedia, W3C Screen Capture §5.1)
// is one more video track, in a MediaStream of its own, added to the peer connection with
// the SFU; the browser's negotiationneeded makes this side offer it (group.go, negotiate).
// The SFU forwards it to the others with the stream ID "<user ID>~<n>", which is how they
// tell it from the camera (docs/protocol.md, "Group sessions"). Two-person calls have no
// screen sharing: the button shows only in group calls.

// screenShare is this side's screen share.
type screenShare struct {
	stream, track, sender js.Value
	tile                  *tile
}

// isScreen reports whether a forwarded stream ID is a participant's extra stream (a
// screen share) rather than its camera and microphone.
func isScreen(streamID string) bool { return strings.Contains(streamID, "~") }

// screenOwner is the user ID of the participant whose stream streamID is.
func screenOwner(streamID string) string {
	id, _, _ := strings.Cut(streamID, "~")
	return id
}

// onShareScreen starts or stops sharing the screen.
func (c *client) onShareScreen() {
	g := c.group
	if g == nil || !g.answered {
		return
	}
	if g.screen != nil {
		g.stopShare()
		c.setStatus("You stopped sharing your screen.", false)
		return
	}
	if g.picking {
		return
	}
	md := js.Global().Get("navigator").Get("mediaDevices")
	if !md.Truthy() || md.Get("getDisplayMedia").Type() != js.TypeFunction {
		c.setStatus("This browser cannot share its screen.", true)
		return
	}
	g.picking = true
	c.render()
	go func() { // the browser's picker may stay open a long time: not on the loop
		stream, err := call(md, "getDisplayMedia", map[string]any{"video": true, "audio": false})
		c.q.push(func() {
			g.picking = false
			switch {
			case err != nil:
				c.setStatus(screenError(err), true)
			case c.group != g || !g.pc.Truthy():
				stopTracks(stream) // the call ended while the picker was open
			default:
				g.startShare(stream)
			}
			c.render()
		})
	}()
}

func screenError(err error) string {
	switch errorName(err) {
	case "NotAllowedError":
		return "Screen sharing was not allowed (or the choice was cancelled)."
	case "NotFoundError":
		return "There is no screen to share."
	case "NotSupportedError", "TypeError":
		return "This browser cannot share its screen."
	case "NotReadableError", "AbortError":
		return "The screen could not be captured: " + err.Error()
	}
	return "Could not share the screen: " + err.Error()
}

func stopTracks(stream js.Value) {
	ts := stream.Call("getTracks")
	for i := range ts.Length() {
		ts.Index(i).Call("stop")
	}
}

// startShare adds the screen's track to the call, and a tile for it next to one's own.
func (g *groupCall) startShare(stream js.Value) {
	tracks := stream.Call("getVideoTracks")
	if tracks.Length() == 0 {
		stopTracks(stream)
		g.c.setStatus("The screen capture has no video.", true)
		return
	}
	track := tracks.Index(0)
	// A transceiver of its own, send-only: addTrack would reuse a receive-only transceiver
	// that an SFU offer made for someone else's video (W3C webrtc-pc §5.1, addTrack step
	// 7), and the SFU, which sends on that media section, would never receive the screen.
	tr := g.pc.Call("addTransceiver", track, map[string]any{"direction": "sendonly", "streams": []any{stream}})
	sender := tr.Get("sender")
	t := g.newTile("me~screen", "Your screen")
	t.el.Get("classList").Call("add", "screen", "mine")
	t.stream = stream
	g.me.el.Call("after", t.el)
	g.screen = &screenShare{stream: stream, track: track, sender: sender, tile: t}
	// The browser's own "Stop sharing" ends the track.
	g.on(track, "onended", func(js.Value) {
		if g.screen != nil && g.screen.track.Equal(track) {
			g.stopShare()
			g.c.setStatus("You stopped sharing your screen.", false)
		}
	})
	g.c.setStatus("You are sharing your screen.", false)
	g.syncTiles()
}

// stopShare takes the screen's track out of the call (negotiationneeded follows) and
// stops the capture.
func (g *groupCall) stopShare() {
	s := g.screen
	if s == nil {
		return
	}
	if g.pc.Truthy() && g.pc.Get("signalingState").String() != "closed" {
		g.pc.Call("removeTrack", s.sender)
	}
	g.detachShare()
	s.track.Call("stop")
	g.syncTiles()
}

// detachShare forgets the screen share and removes its tile, leaving the capture running.
func (g *groupCall) detachShare() {
	s := g.screen
	if s == nil {
		return
	}
	g.screen = nil
	s.tile.video.Set("srcObject", js.Null())
	s.tile.el.Call("remove")
}

// screens are the stream IDs of the remote screen shares shown, in grid order.
func (g *groupCall) screens() []any {
	ids := []any{}
	for _, t := range g.tileList() {
		if isScreen(t.id) && t.hasVideo {
			ids = append(ids, t.id)
		}
	}
	return ids
}
