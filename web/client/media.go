//go:build js && wasm

package main

import "syscall/js"

// media is the local camera and microphone.
type media struct {
	settled      bool     // getUserMedia has answered, one way or the other
	stream       js.Value // the local MediaStream, or null
	audio, video js.Value // its tracks, or null
	note         string   // what is missing and why, for a person; "" if nothing
}

// acquireMedia asks for the camera and the microphone, then for each alone, and settles
// with what it got. It runs on a goroutine of its own: a permission prompt may wait for
// the person for as long as they like.
func (c *client) acquireMedia() {
	devices := js.Global().Get("navigator").Get("mediaDevices")
	if !devices.Truthy() || !devices.Get("getUserMedia").Truthy() {
		c.q.push(func() {
			c.settleMedia(js.Null(), "Camera and microphone need a secure page (https:// or localhost). "+receiveOnly)
		})
		return
	}
	var firstErr error
	for _, want := range []struct{ video, audio bool }{{true, true}, {false, true}, {true, false}} {
		var video any = want.video
		if want.video {
			// 720p where the camera has it: Chromium sends three simulcast layers in group
			// calls only from 960x540 up.
			video = map[string]any{"width": map[string]any{"ideal": 1280}, "height": map[string]any{"ideal": 720}}
		}
		stream, err := call(devices, "getUserMedia", map[string]any{"video": video, "audio": want.audio})
		if err == nil {
			c.q.push(func() { c.settleMedia(stream, mediaNote(want.video, want.audio, firstErr)) })
			return
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	c.q.push(func() { c.settleMedia(js.Null(), mediaNote(false, false, firstErr)) })
}

const receiveOnly = "You can still take calls: you will see and hear the other side, but they will not see or hear you."

func mediaNote(video, audio bool, err error) string {
	why := "unavailable"
	switch errorName(err) {
	case "NotAllowedError", "SecurityError":
		why = "permission denied"
	case "NotFoundError", "OverconstrainedError":
		why = "none found"
	case "NotReadableError", "AbortError":
		why = "in use by another program"
	}
	switch {
	case video && audio:
		return ""
	case audio:
		return "Camera " + why + ": your peer will hear you but not see you."
	case video:
		return "Microphone " + why + ": your peer will see you but not hear you."
	}
	return "Camera and microphone " + why + ". " + receiveOnly
}

func (c *client) settleMedia(stream js.Value, note string) {
	m := &c.media
	m.settled, m.stream, m.note = true, stream, note
	m.audio, m.video = js.Null(), js.Null()
	if stream.Truthy() {
		if t := stream.Call("getAudioTracks"); t.Length() > 0 {
			m.audio = t.Index(0)
		}
		if t := stream.Call("getVideoTracks"); t.Length() > 0 {
			m.video = t.Index(0)
		}
		c.ui.localVideo.Set("srcObject", stream)
	}
	if f := c.after; f != nil {
		c.after = nil
		f()
	}
	c.render()
}

// addTracks adds the local tracks to pc. An offerer also adds a receive-only transceiver
// for each kind it does not send, so that the call carries the peer's media both ways.
func (m *media) addTracks(pc js.Value, offerer bool) { m.addTracksTo(pc, offerer, false) }

// simulcastEncodings are the camera's layers in a group call (RFC 8853; docs/protocol.md,
// "Simulcast"): the SFU forwards each participant the one its bandwidth allows. Chromium
// sends as many as the camera's resolution supports (three from 960x540 up).
var simulcastEncodings = []any{
	map[string]any{"rid": "q", "scaleResolutionDownBy": 4, "maxBitrate": 150_000},
	map[string]any{"rid": "h", "scaleResolutionDownBy": 2, "maxBitrate": 500_000},
	map[string]any{"rid": "f", "scaleResolutionDownBy": 1, "maxBitrate": 1_500_000},
}

// addTracksTo adds the local tracks to pc, the camera's as simulcast layers if simulcast.
func (m *media) addTracksTo(pc js.Value, offerer, simulcast bool) {
	for _, kt := range []struct {
		kind  string
		track js.Value
	}{{"audio", m.audio}, {"video", m.video}} {
		switch {
		case kt.track.Truthy() && kt.kind == "video" && simulcast:
			pc.Call("addTransceiver", kt.track, map[string]any{"direction": "sendrecv",
				"streams": []any{m.stream}, "sendEncodings": simulcastEncodings})
		case kt.track.Truthy():
			pc.Call("addTrack", kt.track, m.stream)
		case offerer:
			pc.Call("addTransceiver", kt.kind, map[string]any{"direction": "recvonly"})
		}
	}
}

func (c *client) onMuteMic() {
	if t := c.media.audio; t.Truthy() {
		t.Set("enabled", !t.Get("enabled").Bool())
		c.render()
	}
}

func (c *client) onToggleCamera() {
	if t := c.media.video; t.Truthy() {
		t.Set("enabled", !t.Get("enabled").Bool())
		c.render()
	}
}

func (m *media) render(u *ui) {
	setDisabled(u.muteMic, !m.audio.Truthy())
	setDisabled(u.toggleCamera, !m.video.Truthy())
	micOff := m.audio.Truthy() && !m.audio.Get("enabled").Bool()
	camOff := m.video.Truthy() && !m.video.Get("enabled").Bool()
	u.muteMic.Call("setAttribute", "aria-pressed", pick(micOff, "true", "false"))
	u.toggleCamera.Call("setAttribute", "aria-pressed", pick(camOff, "true", "false"))
	setText(u.muteMic, pick(micOff, "Unmute", "Mute"))
	setText(u.toggleCamera, pick(camOff, "Camera on", "Camera off"))
	setHidden(u.localVideo, !m.stream.Truthy())
	setText(u.mediaStatus, m.note)
	setHidden(u.mediaStatus, m.note == "")
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
