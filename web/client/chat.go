//go:build js && wasm

package main

import (
	"encoding/json"
	"strings"
	"syscall/js"
	"time"
)

// chatMessage is one message on the "chat" RTCDataChannel, as a JSON text message. Each
// side sends {"hello":true} when the channel opens; chat shows as available once the
// peer's hello arrives. That is how a tab tells a browser peer from a native one: a native
// peer may accept the SCTP association of the offer without having any chat channel.
type chatMessage struct {
	Hello bool   `json:"hello,omitempty"`
	Text  string `json:"text,omitempty"`
}

// maxChatText bounds one chat message, in bytes; index.html's maxlength says the same.
const maxChatText = 2000

// helloTimeout is how long after the channel opens the peer's hello may take.
const helloTimeout = 5 * time.Second

type chatState int

const (
	chatClosed      chatState = iota // no call
	chatOpening                      // the channel is being set up
	chatReady                        // the peer said hello
	chatUnavailable                  // the peer has no chat, or the channel closed
)

func (p *peerCall) setChat(s chatState, note string) {
	if p.chat == s || (p.chat == chatUnavailable && s != chatReady) {
		return
	}
	p.chat, p.chatNote = s, note
	p.c.render()
}

// chatOffered marks chat unavailable when the remote description has no data channel
// section (m=application, RFC 8841): a native peer that offered only media.
func (p *peerCall) chatOffered(sdp string) {
	if !strings.Contains(sdp, "\nm=application ") {
		p.setChat(chatUnavailable, "not available: your peer's app has no chat")
	}
}

func (p *peerCall) onChatOpen() {
	b, _ := json.Marshal(chatMessage{Hello: true}) // a fixed value: cannot fail
	_ = sendText(p.dc, string(b))
	p.chatDeadline()
}

// chatDeadline marks chat unavailable if no hello has come helloTimeout from now.
func (p *peerCall) chatDeadline() {
	time.AfterFunc(helloTimeout, func() {
		p.c.q.push(func() {
			if p.c.call == p && p.chat == chatOpening && p.pcState == "connected" {
				p.setChat(chatUnavailable, "not available: your peer's app has no chat")
			}
		})
	})
}

func (p *peerCall) onChatMessage(data js.Value) {
	if data.Type() != js.TypeString {
		return
	}
	var m chatMessage
	if err := json.Unmarshal([]byte(data.String()), &m); err != nil {
		return
	}
	if m.Hello {
		p.setChat(chatReady, "")
	}
	if m.Text != "" {
		p.setChat(chatReady, "")
		who := "Peer"
		if name := p.c.names[p.remote]; name != "" {
			who = name
		}
		p.c.ui.appendChat(who, m.Text, false)
	}
}

func (c *client) onChatSend() {
	p := c.call
	in := c.ui.chatInput
	text := strings.TrimSpace(in.Get("value").String())
	if p == nil || p.chat != chatReady || text == "" {
		return
	}
	if len(text) > maxChatText {
		text = strings.ToValidUTF8(text[:maxChatText], "") // not half a character
	}
	b, err := json.Marshal(chatMessage{Text: text})
	if err != nil {
		return
	}
	if err := sendText(p.dc, string(b)); err != nil {
		c.setStatus("The message could not be sent: the chat has closed.", true)
		return
	}
	c.ui.appendChat("You", text, true)
	in.Set("value", "")
}

func (c *client) renderChat() {
	u := c.ui
	state, note := chatClosed, ""
	switch {
	case c.group != nil: // the SFU carries no data channel (yet)
		state, note = chatUnavailable, "not available in group calls yet"
	case c.call != nil:
		state, note = c.call.chat, c.call.chatNote
	}
	ready := state == chatReady
	setDisabled(u.chatInput, !ready)
	setDisabled(u.chatSend, !ready)
	switch state {
	case chatClosed:
		note = "opens when the call connects"
	case chatOpening:
		note = "connecting…"
	case chatReady:
		note = ""
	}
	setText(u.chatState, note)
	c.parley().Set("chat", []string{"closed", "opening", "ready", "unavailable"}[state])
}
