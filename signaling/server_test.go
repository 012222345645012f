package signaling_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/signaling"
)

func start(t *testing.T, cfg signaling.Config) (*signaling.Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := signaling.New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// client is a raw WebSocket client, so tests can send what a well-behaved one would not.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	w := c.expect(protocol.TypeWelcome).(protocol.Welcome)
	if len(w.UserID) != 22 || w.ProtocolVersion != protocol.Version {
		t.Fatalf("welcome: %+v", w)
	}
	c.id = w.UserID
	return c
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(m protocol.Message) {
	c.t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.MessageText, b)
}

// next returns the next message other than ping, answering pings as a live client does.
func (c *client) next() (protocol.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		m, err := protocol.Decode(b)
		if err != nil {
			c.t.Fatalf("server sent an undecodable message %q: %v", b, err)
		}
		if m.Type() != protocol.TypePing {
			return m, nil
		}
		c.send(protocol.Pong{})
	}
}

func (c *client) expect(typ string) protocol.Message {
	c.t.Helper()
	m, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if m.Type() != typ {
		c.t.Fatalf("got %s %+v, want %s", m.Type(), m, typ)
	}
	return m
}

func (c *client) expectError(code string) protocol.Error {
	c.t.Helper()
	e := c.expect(protocol.TypeError).(protocol.Error)
	if e.Code != code || e.Message == "" {
		c.t.Fatalf("error %+v, want code %s with a message", e, code)
	}
	return e
}

// pair makes a host and a guest in one session.
func pair(t *testing.T, url string) (host, guest *client, session string) {
	host, guest = dial(t, url), dial(t, url)
	host.send(protocol.CreateSession{})
	session = host.expect(protocol.TypeSessionReady).(protocol.SessionReady).SessionID
	guest.send(protocol.JoinSession{SessionID: session})
	j := guest.expect(protocol.TypeJoined).(protocol.Joined)
	if len(j.Peers) != 1 || j.Peers[0] != host.id {
		t.Fatalf("joined: %+v, want peers [%s]", j, host.id)
	}
	pj := host.expect(protocol.TypePeerJoined).(protocol.PeerJoined)
	if pj.PeerID != guest.id {
		t.Fatalf("peer_joined: %+v", pj)
	}
	return host, guest, session
}

func TestRelayAndPeerLeft(t *testing.T) {
	_, url := start(t, signaling.Config{})
	host, guest, session := pair(t, url)

	host.send(protocol.Offer{SessionID: session, SDP: "v=0 offer", From: "spoofed"})
	o := guest.expect(protocol.TypeOffer).(protocol.Offer)
	if o.SDP != "v=0 offer" || o.From != host.id {
		t.Errorf("relayed offer %+v", o)
	}
	guest.send(protocol.Answer{SessionID: session, SDP: "v=0 answer"})
	if a := host.expect(protocol.TypeAnswer).(protocol.Answer); a.From != guest.id {
		t.Errorf("relayed answer %+v", a)
	}
	guest.send(protocol.Candidate{SessionID: session, Candidate: &protocol.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host"}})
	guest.send(protocol.Candidate{SessionID: session, EndOfCandidates: true})
	if c := host.expect(protocol.TypeCandidate).(protocol.Candidate); c.Candidate == nil || c.From != guest.id {
		t.Errorf("relayed candidate %+v", c)
	}
	if c := host.expect(protocol.TypeCandidate).(protocol.Candidate); !c.EndOfCandidates {
		t.Errorf("relayed end-of-candidates %+v", c)
	}

	// A disconnect is a hang-up: the other peer hears of it.
	guest.ws.CloseNow()
	if pl := host.expect(protocol.TypePeerLeft).(protocol.PeerLeft); pl.PeerID != guest.id || pl.SessionID != session {
		t.Errorf("peer_left %+v", pl)
	}
	// The host can take a new guest in the same session.
	g2 := dial(t, url)
	g2.send(protocol.JoinSession{SessionID: session})
	g2.expect(protocol.TypeJoined)
	host.expect(protocol.TypePeerJoined)
}

func TestBadInputKeepsConnectionAndOthers(t *testing.T) {
	_, url := start(t, signaling.Config{})
	host, guest, session := pair(t, url)
	bad := dial(t, url)

	cases := []struct {
		name string
		typ  websocket.MessageType
		msg  string
		code string
	}{
		{"not JSON", websocket.MessageText, `{"type":`, protocol.CodeBadMessage},
		{"no type", websocket.MessageText, `{"session_id":"x"}`, protocol.CodeBadMessage},
		{"unknown type", websocket.MessageText, `{"type":"teleport"}`, protocol.CodeUnknownType},
		{"missing sdp", websocket.MessageText, `{"type":"offer","session_id":"x"}`, protocol.CodeBadMessage},
		{"binary frame", websocket.MessageBinary, `{"type":"ping"}`, protocol.CodeBadMessage},
		{"over 64 KiB", websocket.MessageText, `{"type":"offer","session_id":"` + session + `","sdp":"` + strings.Repeat("a", 70<<10) + `"}`, protocol.CodeTooLarge},
		{"someone else's session", websocket.MessageText, `{"type":"offer","session_id":"` + session + `","sdp":"v=0"}`, protocol.CodeNotInSession},
		{"server-only message", websocket.MessageText, `{"type":"welcome","user_id":"me","protocol_version":1}`, protocol.CodeNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad.t = t
			bad.sendRaw(tc.typ, []byte(tc.msg))
			e := bad.expectError(tc.code)
			t.Logf("%s → %s: %s", tc.name, e.Code, e.Message)
			// The same connection still works.
			bad.send(protocol.Ping{})
			bad.expect(protocol.TypePong)
		})
	}
	bad.t = t
	// The call beside it was not disturbed and nothing reached it.
	host.send(protocol.Offer{SessionID: session, SDP: "v=0 after"})
	if o := guest.expect(protocol.TypeOffer).(protocol.Offer); o.SDP != "v=0 after" {
		t.Errorf("offer after bad input: %+v", o)
	}
}

func TestRelayNeverExceedsLimit(t *testing.T) {
	_, url := start(t, signaling.Config{})
	host, guest, session := pair(t, url)
	// An offer just under the limit, which the server's "from" stamp would push over it.
	prefix := `{"type":"offer","session_id":"` + session + `","sdp":"`
	sdp := strings.Repeat("<", protocol.MaxMessageSize-len(prefix)-2)
	host.sendRaw(websocket.MessageText, []byte(prefix+sdp+`"}`))
	host.expectError(protocol.CodeTooLarge)
	// A normal offer after it still goes through, and is the first thing the guest sees.
	host.send(protocol.Offer{SessionID: session, SDP: "v=0 <&>"})
	if o := guest.expect(protocol.TypeOffer).(protocol.Offer); o.SDP != "v=0 <&>" {
		t.Errorf("offer %+v", o)
	}
}

func TestHugeMessageClosesOnlyThatConnection(t *testing.T) {
	_, url := start(t, signaling.Config{})
	host, guest, session := pair(t, url)
	bad := dial(t, url)
	bad.sendRaw(websocket.MessageText, []byte(strings.Repeat("x", 2<<20)))
	_, err := bad.next()
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("after a 2 MiB message: %v, want close status 1009", err)
	}
	host.send(protocol.Offer{SessionID: session, SDP: "v=0"})
	guest.expect(protocol.TypeOffer)
}

func TestDeadConnectionDropped(t *testing.T) {
	s, url := start(t, signaling.Config{PingInterval: 50 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	host, _, _ := pair(t, url)
	// The guest's client never reads again, so it never answers a ping: it is dead to the
	// server, though its TCP connection stays open. Only the idle timeout can find it.
	// The host answers pings inside next.
	if m, err := host.next(); err != nil || m.Type() != protocol.TypePeerLeft {
		t.Fatalf("host got %v, %v; want peer_left for the dead guest", m, err)
	}
	// The host lives on past several idle timeouts because it answers pings.
	ping, _ := protocol.Encode(protocol.Ping{})
	time.AfterFunc(time.Second, func() { _ = host.ws.Write(context.Background(), websocket.MessageText, ping) })
	if m, err := host.next(); err != nil || m.Type() != protocol.TypePong {
		t.Fatalf("host got %v, %v; want only pings for a second, then its pong", m, err)
	}
	if st := s.Stats(); st.Connections != 1 || st.Sessions != 1 {
		t.Errorf("stats %+v, want the live host alone in its session", st)
	}
}

func TestHealthz(t *testing.T) {
	s := signaling.New(signaling.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var body struct {
		Status      string `json:"status"`
		Connections int    `json:"connections"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Status != "ok" {
		t.Errorf("healthz: %d %q %v", rec.Code, rec.Body, err)
	}
}
