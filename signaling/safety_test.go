package signaling_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/jointoken"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/signaling"
)

// undisturbed checks that the call between host and guest still relays.
func undisturbed(t *testing.T, host, guest *client, session string) {
	t.Helper()
	host.send(protocol.Offer{SessionID: session, SDP: "v=0 still here"})
	if o := guest.expect(protocol.TypeOffer).(protocol.Offer); o.SDP != "v=0 still here" {
		t.Errorf("offer beside the bad client: %+v", o)
	}
}

func TestWrongOrigin(t *testing.T) {
	_, url := start(t, signaling.Config{AllowedOrigins: []string{"calls.example.com"}})
	host, guest, session := pair(t, url)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://evil.example.net", false},
		{"https://calls.example.com", true},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {tc.origin}}})
		cancel()
		if tc.ok {
			if err != nil {
				t.Errorf("origin %s: %v, want it allowed", tc.origin, err)
			} else {
				ws.CloseNow()
			}
			continue
		}
		if err == nil {
			ws.CloseNow()
			t.Errorf("origin %s was let in", tc.origin)
		} else if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %s: %v, want HTTP 403", tc.origin, err)
		}
	}
	undisturbed(t, host, guest, session)
}

func TestTooManyConnectionsFromOneIP(t *testing.T) {
	_, url := start(t, signaling.Config{MaxConnsPerIP: 4})
	host, guest, session := pair(t, url) // two of the four
	dial(t, url)
	dial(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("fifth connection: %v, want an error message first", err)
	}
	m, err := protocol.Decode(b)
	if e, ok := m.(protocol.Error); err != nil || !ok || e.Code != protocol.CodeTooManyConnections {
		t.Fatalf("fifth connection got %s, want error too_many_connections", b)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("fifth connection then: %v, want close status 1008", err)
	}
	undisturbed(t, host, guest, session)
}

func TestMessageFlood(t *testing.T) {
	_, url := start(t, signaling.Config{MessageRate: 10, MessageBurst: 20})
	host, guest, session := pair(t, url)
	flooder := dial(t, url)
	ping, _ := protocol.Encode(protocol.Ping{})
	// Write as fast as possible; the server drops what is over the rate, says so once,
	// and closes the connection when the flood goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if flooder.ws.Write(ctx, websocket.MessageText, ping) != nil {
				return
			}
		}
	}()
	var pongs, limited int
	var closeErr error
	for closeErr == nil {
		_, b, err := flooder.ws.Read(ctx)
		if err != nil {
			closeErr = err
			break
		}
		m, _ := protocol.Decode(b)
		switch m := m.(type) {
		case protocol.Pong:
			pongs++
		case protocol.Error:
			if m.Code == protocol.CodeRateLimited {
				limited++
			}
		}
	}
	if websocket.CloseStatus(closeErr) != websocket.StatusPolicyViolation {
		t.Errorf("flooder: %v, want close status 1008", closeErr)
	}
	if limited != 1 || pongs < 20 {
		t.Errorf("flooder got %d pongs and %d rate_limited errors, want >= 20 and exactly 1", pongs, limited)
	}
	undisturbed(t, host, guest, session)
}

func TestSessionPassword(t *testing.T) {
	_, url := start(t, signaling.Config{})
	host, guest := dial(t, url), dial(t, url)
	host.send(protocol.CreateSession{Password: "correct horse"})
	session := host.expect(protocol.TypeSessionReady).(protocol.SessionReady).SessionID
	guest.send(protocol.JoinSession{SessionID: session, Password: "battery staple"})
	if e := guest.expect(protocol.TypeJoinError).(protocol.JoinError); e.Code != protocol.JoinWrongPassword {
		t.Errorf("wrong password: %+v", e)
	}
	guest.send(protocol.JoinSession{SessionID: session, Password: "correct horse"})
	guest.expect(protocol.TypeJoined)
	host.expect(protocol.TypePeerJoined)
}

func TestJoinTokens(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	_, url := start(t, signaling.Config{TokenSecret: secret, RequireToken: true, Now: func() time.Time { return now }})
	host := dial(t, url)
	host.send(protocol.CreateSession{Password: "pw"})
	session := host.expect(protocol.TypeSessionReady).(protocol.SessionReady).SessionID
	valid, _ := jointoken.Issue(secret, session, now.Add(-time.Minute), time.Hour)
	expired, _ := jointoken.Issue(secret, session, now.Add(-2*time.Hour), time.Hour)
	other, _ := jointoken.Issue(secret, "another-session", now, time.Hour)
	forged, _ := jointoken.Issue([]byte("not the server's secret, 32 byte"), session, now, time.Hour)

	guest := dial(t, url)
	for name, tok := range map[string]string{"none (with password)": "", "expired": expired, "other session": other, "forged": forged} {
		guest.send(protocol.JoinSession{SessionID: session, Token: tok, Password: "pw"})
		e := guest.expect(protocol.TypeJoinError).(protocol.JoinError)
		if e.Code != protocol.JoinBadToken {
			t.Errorf("token %s: %+v, want bad_token", name, e)
		}
		t.Logf("token %s: %s", name, e.Message)
	}
	// A valid token admits without the session's password, and the guest's name goes
	// with it.
	guest.send(protocol.JoinSession{SessionID: session, Token: valid, Name: "Token Holder"})
	guest.expect(protocol.TypeJoined)
	if pj := host.expect(protocol.TypePeerJoined).(protocol.PeerJoined); pj.Name != "Token Holder" {
		t.Errorf("peer_joined after a token join: %+v, want name %q", pj, "Token Holder")
	}
	undisturbed(t, host, guest, session)
}

func TestShutdownTellsClients(t *testing.T) {
	s, url := start(t, signaling.Config{})
	host, guest, _ := pair(t, url)
	// A client that never reads cannot complete the close handshake; Close must still end
	// by its deadline.
	stuck := dial(t, url)
	_ = stuck
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	for _, c := range []*client{host, guest} {
		m, err := c.next()
		if e, ok := m.(protocol.Error); err != nil || !ok || e.Code != protocol.CodeShuttingDown {
			t.Errorf("got %v, %v; want error shutting_down", m, err)
		}
		// Then the close; a peer_left for the other member, closed at the same moment, may
		// come first.
		for {
			m, err := c.next()
			if err == nil && m.Type() == protocol.TypePeerLeft {
				continue
			}
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("then %v, %v; want close status 1001", m, err)
			}
			break
		}
	}
	select {
	case err := <-closed:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	// New connections are turned away with the reason.
	ws, _, err := websocket.Dial(context.Background(), url, nil)
	if err == nil {
		_, b, _ := ws.Read(context.Background())
		if !strings.Contains(string(b), protocol.CodeShuttingDown) {
			t.Errorf("connection during shutdown got %q", b)
		}
		ws.CloseNow()
	}
}
