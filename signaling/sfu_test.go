package signaling_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/signaling"
)

// echoSFU stands in for the SFU at the seam: it records what it is handed and answers
// every offer through the server, from its Handle, as the real one may.
type echoSFU struct {
	got    chan protocol.Message
	server *signaling.Server
}

func (e *echoSFU) Handle(m protocol.Message) {
	e.got <- m
	if o, ok := m.(protocol.Offer); ok {
		e.server.SendFromSFU(o.From, protocol.Answer{SessionID: o.SessionID, SDP: "v=0\r\n"})
	}
}

func TestGroupThroughSFU(t *testing.T) {
	e := &echoSFU{got: make(chan protocol.Message, 16)}
	s, url := start(t, signaling.Config{SFU: e})
	e.server = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	handed := func() protocol.Message {
		t.Helper()
		select {
		case m := <-e.got:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("the SFU was handed nothing")
			return nil
		}
	}

	alice, bob := dial(t, url), dial(t, url)
	alice.send(protocol.CreateSession{Group: true})
	ready := alice.expect(protocol.TypeSessionReady).(protocol.SessionReady)
	if !ready.Group {
		t.Fatalf("session_ready %+v, want group", ready)
	}
	id := ready.SessionID
	bob.send(protocol.JoinSession{SessionID: id})
	if j := bob.expect(protocol.TypeJoined).(protocol.Joined); !j.Group || !reflect.DeepEqual(j.Peers, []string{alice.id}) {
		t.Fatalf("joined %+v, want group with peers [alice]", j)
	}
	alice.expect(protocol.TypePeerJoined)
	bob.send(protocol.Offer{SessionID: id, To: protocol.ServerPeer, SDP: "v=0\r\n"})
	// The SFU's answer comes back from it, to bob alone.
	if a := bob.expect(protocol.TypeAnswer).(protocol.Answer); a.From != protocol.ServerPeer || a.To != bob.id {
		t.Errorf("answer %+v, want from sfu to bob", a)
	}
	bob.send(protocol.LeaveSession{SessionID: id})
	alice.expect(protocol.TypePeerLeft)

	want := []protocol.Message{
		protocol.PeerJoined{SessionID: id, PeerID: alice.id},
		protocol.PeerJoined{SessionID: id, PeerID: bob.id},
		protocol.Offer{SessionID: id, From: bob.id, To: protocol.ServerPeer, SDP: "v=0\r\n"},
		protocol.PeerLeft{SessionID: id, PeerID: bob.id},
	}
	for i, w := range want {
		if m := handed(); !reflect.DeepEqual(m, w) {
			t.Errorf("message %d handed to the SFU: %#v, want %#v", i, m, w)
		}
	}
}

func TestGroupWithoutSFU(t *testing.T) {
	_, url := start(t, signaling.Config{})
	c := dial(t, url)
	c.send(protocol.CreateSession{Group: true})
	if e := c.expect(protocol.TypeError).(protocol.Error); e.Code != protocol.CodeUnsupported {
		t.Errorf("group session without an SFU: %+v, want unsupported", e)
	}
}
