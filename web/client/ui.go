//go:build js && wasm

package main

import "syscall/js"

// ui holds the page's elements, by the ids of web/static/index.html.
type ui struct {
	doc  js.Value
	body js.Value

	connState, status, mediaStatus js.Value

	lobby, displayName, newSession, newGroup, joinForm, joinID, joinSession, joinPassword js.Value
	share, sessionID, shareLink, copyLink                                                 js.Value

	remote, remoteVideo, remotePlaceholder, unmuteRemote, localVideo js.Value
	grid, unmuteGroup                                                js.Value
	muteMic, toggleCamera, shareScreen, hangUp                       js.Value

	chatState, chatLog, chatForm, chatInput, chatSend js.Value
}

func newUI() *ui {
	doc := js.Global().Get("document")
	el := func(id string) js.Value {
		v := doc.Call("getElementById", id)
		if v.IsNull() {
			panic("index.html has no element #" + id)
		}
		return v
	}
	return &ui{
		doc:               doc,
		body:              doc.Get("body"),
		connState:         el("conn-state"),
		status:            el("status"),
		mediaStatus:       el("media-status"),
		lobby:             el("lobby"),
		displayName:       el("display-name"),
		newSession:        el("new-session"),
		newGroup:          el("new-group"),
		joinForm:          el("join-form"),
		joinID:            el("join-id"),
		joinSession:       el("join-session"),
		joinPassword:      el("join-password"),
		share:             el("share"),
		sessionID:         el("session-id"),
		shareLink:         el("share-link"),
		copyLink:          el("copy-link"),
		remote:            el("remote"),
		grid:              el("grid"),
		unmuteGroup:       el("unmute-group"),
		remoteVideo:       el("remote-video"),
		remotePlaceholder: el("remote-placeholder"),
		unmuteRemote:      el("unmute-remote"),
		localVideo:        el("local-video"),
		muteMic:           el("mute-mic"),
		toggleCamera:      el("toggle-camera"),
		shareScreen:       el("share-screen"),
		hangUp:            el("hang-up"),
		chatState:         el("chat-state"),
		chatLog:           el("chat-log"),
		chatForm:          el("chat-form"),
		chatInput:         el("chat-input"),
		chatSend:          el("chat-send"),
	}
}

// listen calls f on the loop for every event of the given type on target. These listeners
// live as long as the page, so they are never released.
func listen(q *queue, target js.Value, event string, preventDefault bool, f func()) {
	target.Call("addEventListener", event, js.FuncOf(func(_ js.Value, args []js.Value) any {
		if preventDefault && len(args) > 0 {
			args[0].Call("preventDefault") // must happen before the handler returns
		}
		q.push(f)
		return nil
	}))
}

func setText(el js.Value, s string) {
	if el.Get("textContent").String() != s {
		el.Set("textContent", s)
	}
}

func setHidden(el js.Value, hidden bool)     { el.Set("hidden", hidden) }
func setDisabled(el js.Value, disabled bool) { el.Set("disabled", disabled) }

// appendChat adds one line to the chat log and scrolls to it.
func (u *ui) appendChat(who, text string, mine bool) {
	li := u.doc.Call("createElement", "li")
	if mine {
		li.Set("className", "me")
	}
	name := u.doc.Call("createElement", "span")
	name.Set("className", "who")
	name.Set("textContent", who)
	li.Call("append", name, text) // a text node: the peer's text is never parsed as HTML
	u.chatLog.Call("append", li)
	u.chatLog.Set("scrollTop", u.chatLog.Get("scrollHeight"))
}
