package peer_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/jointoken"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sigclient"
	"github.com/parley-rtc/parley/signaling"
)

// TestAbuseBesideACall runs a real call with media while other clients of the same server
// send a wrong Origin, open too many connections, flood, give a wrong password and an
// expired token. Each gets its error; the call does not notice.
func TestAbuseBesideACall(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv := httptest.NewServer(signaling.New(signaling.Config{Logger: quietLogger(),
		MaxConnsPerIP: 8, MessageRate: 20, MessageBurst: 60, TokenSecret: secret}))
	t.Cleanup(srv.Close)
	wsURL, _ := sigclient.WebSocketURL(srv.URL)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	cfg := peer.Config{Video: ivf.Video, Audio: ogg.Audio, Duration: 4 * time.Second, LoopbackOnly: true, Logger: quietLogger()}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids := make(chan string, 1)
	host, guest := cfg, cfg
	host.Server, host.Create, host.Password = srv.URL, true, "pw"
	host.OnSession = func(id string) { ids <- id }
	calls := make(chan result, 2)
	go func() { rep, err := peer.Run(ctx, host); calls <- result{rep, err} }()
	session := <-ids
	guest.Server, guest.Join, guest.Password = srv.URL, session, "pw"
	go func() { rep, err := peer.Run(ctx, guest); calls <- result{rep, err} }()

	// Wrong Origin: HTTP 403 on the upgrade.
	_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example.net"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong origin: %v, want HTTP 403", err)
	}

	// Wrong password and an expired token.
	c, err := sigclient.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := jointoken.Issue(secret, session, time.Now().Add(-2*time.Hour), time.Hour)
	for _, j := range []protocol.JoinSession{{SessionID: session, Password: "nope"}, {SessionID: session, Token: expired}} {
		if err := c.Send(ctx, j); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(ctx)
		je, ok := m.(protocol.JoinError)
		if err != nil || !ok || (je.Code != protocol.JoinWrongPassword && je.Code != protocol.JoinBadToken) {
			t.Errorf("join %+v: %v %v", j, m, err)
		}
	}

	// A flood, from a connection of its own: closed with 1008.
	flood, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ping, _ := protocol.Encode(protocol.Ping{})
	go func() {
		for ctx.Err() == nil && flood.Write(ctx, websocket.MessageText, ping) == nil {
		}
	}()
	for {
		if _, _, err := flood.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Errorf("flood ended with %v, want close 1008", err)
			}
			break
		}
	}

	// Too many connections: the call holds 2, c 1; fill up to 8, then one more.
	var extra []*sigclient.Conn
	for len(extra) < 5 {
		e, err := sigclient.Dial(ctx, srv.URL)
		if err != nil {
			t.Fatalf("connection %d of 8: %v", len(extra)+4, err)
		}
		extra = append(extra, e)
	}
	if _, err := sigclient.Dial(ctx, srv.URL); err == nil || !strings.Contains(err.Error(), "error") {
		t.Errorf("ninth connection: %v, want refused with an error", err)
	}

	for range 2 {
		res := <-calls
		if res.err != nil || (res.rep.End != "duration" && res.rep.End != "peer_left") || res.rep.VideoFramesReceived < 90 || res.rep.AudioPacketsReceived < 150 {
			t.Errorf("the call beside the abuse: %v %+v", res.err, res.rep)
		}
	}
}

// TestBadName: a name the server would refuse is refused before anything is dialled.
func TestBadName(t *testing.T) {
	for _, name := range []string{" Ada", "Ada\n", strings.Repeat("x", protocol.MaxNameLen+1)} {
		_, err := peer.Run(context.Background(), peer.Config{Server: "http://127.0.0.1:1", Create: true, Name: name})
		if !errors.Is(err, protocol.ErrBadName) {
			t.Errorf("Run with name %q: %v, want an error wrapping ErrBadName", name, err)
		}
	}
}
