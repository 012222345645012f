//go:build js && wasm

package main

import (
	"errors"
	"strconv"
	"syscall/js"
	"time"

	"github.com/parley-rtc/parley/protocol"
)

const (
	// silenceLimit drops a connection the server has said nothing on for this long: it
	// pings every 10 s, so a quiet socket is a dead one the browser has not noticed.
	silenceLimit = 30 * time.Second
	// maxBackoff caps the wait between reconnection attempts.
	maxBackoff = 10 * time.Second
	// maxRejoins and rejoinDelay retry a rejoin that finds the session full: the server
	// keeps the lost connection for up to its 25 s idle timeout.
	maxRejoins  = 12
	rejoinDelay = 3 * time.Second
)

// signaling is the connection to the server's /ws, on the browser's own WebSocket. It
// reconnects, with backoff, whenever the connection is lost.
type signaling struct {
	c  *client
	ws js.Value // the current socket, or null while waiting to reconnect
	h  handlers

	open       bool // the Welcome has arrived on ws
	welcomed   bool // a Welcome has arrived on some socket: the server was reached once
	lost       bool // the connection was lost, and not yet regained
	attempts   int  // failed connection attempts in a row
	retry      *time.Timer
	lastHeard  time.Time
	watchdog   *time.Timer
	rejoins    int
	stopped    bool // the server speaks another protocol version: reconnecting won't help
	iceServers []protocol.ICEServer
}

func wsURL() string {
	loc := js.Global().Get("location")
	scheme := "ws:"
	if loc.Get("protocol").String() == "https:" {
		scheme = "wss:"
	}
	return scheme + "//" + loc.Get("host").String() + "/ws"
}

// dial opens a new socket; the Welcome on it completes the connection.
func (s *signaling) dial() {
	if s.stopped || s.ws.Truthy() {
		return
	}
	s.retry = nil
	ws, err := newWebSocket(wsURL())
	if err != nil {
		s.c.setStatus("Cannot open a connection to the server: "+err.Error(), true)
		s.scheduleReconnect()
		return
	}
	s.ws = ws
	s.h = handlers{q: s.c.q}
	s.h.on(ws, "onmessage", func(ev js.Value) {
		if s.ws.Equal(ws) {
			s.onMessage(ev.Get("data"))
		}
	})
	s.h.on(ws, "onclose", func(ev js.Value) {
		if s.ws.Equal(ws) {
			s.drop("closed with code " + strconv.Itoa(ev.Get("code").Int()))
		}
	})
	s.lastHeard = time.Now()
	s.armWatchdog()
}

func newWebSocket(url string) (ws js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			jerr, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = toError(jerr.Value)
		}
	}()
	return js.Global().Get("WebSocket").New(url), nil
}

func (s *signaling) onMessage(data js.Value) {
	s.lastHeard = time.Now()
	if data.Type() != js.TypeString {
		return
	}
	m, err := protocol.Decode([]byte(data.String()))
	if err != nil {
		js.Global().Get("console").Call("warn", "parley: bad message from the server:", err.Error())
		return
	}
	if w, ok := m.(protocol.Welcome); ok {
		s.onWelcome(w)
		return
	}
	if s.open {
		s.c.handle(m)
	}
}

func (s *signaling) onWelcome(w protocol.Welcome) {
	c := s.c
	if w.ProtocolVersion != protocol.Version {
		s.stopped = true
		s.close()
		c.setStatus("The server speaks protocol version "+strconv.Itoa(w.ProtocolVersion)+
			", this page version "+strconv.Itoa(protocol.Version)+": reload the page.", true)
		return
	}
	s.open, s.welcomed = true, true
	s.attempts = 0
	s.iceServers = w.ICEServers
	c.parley().Set("userId", w.UserID)
	if s.lost {
		s.lost = false
		c.setStatus("Reconnected to the server.", false)
	} else if c.state == stateIdle {
		c.setStatus("Start a new call, or join one with its ID.", false)
	}
	c.onWelcome()
}

// drop gives up on the current socket and schedules a new one.
func (s *signaling) drop(why string) {
	c := s.c
	s.close()
	s.lost = true
	js.Global().Get("console").Call("info", "parley: signaling connection lost:", why)
	switch {
	case c.state == stateConnected:
		c.setStatus("Lost the connection to the server; the call goes on. Reconnecting…", true)
	case s.welcomed:
		c.setStatus("Lost the connection to the server. Reconnecting…", true)
	default:
		c.setStatus("Cannot reach the server. Reconnecting…", true)
	}
	s.scheduleReconnect()
}

func (s *signaling) close() {
	s.h.release()
	if s.ws.Truthy() {
		s.ws.Call("close")
	}
	s.ws = js.Null()
	s.open = false
	if s.watchdog != nil {
		s.watchdog.Stop()
		s.watchdog = nil
	}
}

func (s *signaling) scheduleReconnect() {
	if s.stopped || s.retry != nil {
		return
	}
	// 0.5 s, 1 s, 2 s, … up to maxBackoff, with up to 50 % added so that the tabs of a
	// restarted server do not all come back at once.
	d := min(maxBackoff, 500*time.Millisecond<<min(s.attempts, 5))
	d += time.Duration(time.Now().UnixNano() % int64(d/2))
	s.attempts++
	s.retry = time.AfterFunc(d, func() { s.c.q.push(s.dial) })
}

// whenReady acts on what the person asked for now if the server is reached; otherwise the
// next Welcome does, and a reconnection waiting out its backoff starts at once.
func (s *signaling) whenReady() {
	if s.open {
		s.c.onWelcome()
		return
	}
	if s.retry != nil && s.retry.Stop() {
		s.retry = nil
		s.dial()
	}
}

// armWatchdog drops the socket if the server falls silent for silenceLimit.
func (s *signaling) armWatchdog() {
	if s.watchdog != nil {
		s.watchdog.Stop()
	}
	ws := s.ws
	s.watchdog = time.AfterFunc(silenceLimit/3, func() {
		s.c.q.push(func() {
			if !s.ws.Equal(ws) {
				return
			}
			if time.Since(s.lastHeard) > silenceLimit {
				s.drop("the server fell silent")
				return
			}
			s.armWatchdog()
		})
	})
}

// send sends m if the server is reached; a message sent while it is not is dropped, as
// the session is rejoined afresh on reconnection.
func (s *signaling) send(m protocol.Message) {
	if !s.open {
		return
	}
	b, err := protocol.Encode(m)
	if err == nil {
		err = sendText(s.ws, string(b))
	}
	if err != nil {
		js.Global().Get("console").Call("warn", "parley: send "+m.Type()+":", err.Error())
	}
}

// sendText sends on a WebSocket or an RTCDataChannel, which throw when not open.
func sendText(target js.Value, text string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("send failed: not open")
		}
	}()
	target.Call("send", text)
	return nil
}

// rejoin asks to be let back into the session after a reconnection.
func (s *signaling) rejoin(session string) {
	s.c.setStatus("Reconnected to the server; rejoining the call…", false)
	s.send(s.c.joinMessage(session))
}

func (s *signaling) rejoinLater(session string) {
	s.rejoins++
	time.AfterFunc(rejoinDelay, func() {
		s.c.q.push(func() {
			if s.open && s.c.session == session {
				s.rejoin(session)
			}
		})
	})
}
