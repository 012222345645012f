package signaling_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/signaling"
)

// TestNames: display names over real WebSocket connections. The guest learns the host's
// name from joined, the host the guest's from peer_joined; a bad name is refused with
// bad_message and changes nothing.
func TestNames(t *testing.T) {
	_, url := start(t, signaling.Config{})
	host, guest := dial(t, url), dial(t, url)

	// Bad names: the server says why, and the connection goes on.
	for _, bad := range []string{strings.Repeat("n", protocol.MaxNameLen+1), "Ada\nLovelace", " Ada", "Ada\u0085"} {
		host.send(protocol.CreateSession{Name: bad})
		e := host.expectError(protocol.CodeBadMessage)
		if e.Ref != protocol.TypeCreateSession || !strings.Contains(e.Message, "name") {
			t.Errorf("create_session with name %q: %+v, want bad_message about the name", bad, e)
		}
	}

	host.send(protocol.CreateSession{Name: "Ada Lovelace"})
	session := host.expect(protocol.TypeSessionReady).(protocol.SessionReady).SessionID

	guest.send(protocol.JoinSession{SessionID: session, Name: "Grace\x00"})
	if e := guest.expectError(protocol.CodeBadMessage); e.Ref != protocol.TypeJoinSession {
		t.Errorf("join_session with a NUL in the name: %+v", e)
	}
	guest.send(protocol.JoinSession{SessionID: session, Name: "Grace 🚀"})
	j := guest.expect(protocol.TypeJoined).(protocol.Joined)
	if want := map[string]string{host.id: "Ada Lovelace"}; !reflect.DeepEqual(j.Names, want) ||
		!reflect.DeepEqual(j.Peers, []string{host.id}) {
		t.Errorf("joined %+v, want peers [host] and names %v", j, want)
	}
	pj := host.expect(protocol.TypePeerJoined).(protocol.PeerJoined)
	if pj.PeerID != guest.id || pj.Name != "Grace 🚀" {
		t.Errorf("peer_joined %+v, want the guest named %q", pj, "Grace 🚀")
	}
	undisturbed(t, host, guest, session)
}

// TestNamesAfterMigration: when a third participant turns a two-person call into a group,
// the newcomer learns both names and both learn the newcomer's.
func TestNamesAfterMigration(t *testing.T) {
	e := &echoSFU{got: make(chan protocol.Message, 64)}
	s, url := start(t, signaling.Config{SFU: e})
	e.server = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})

	alice, bob, carol := dial(t, url), dial(t, url), dial(t, url)
	alice.send(protocol.CreateSession{Name: "Alice"})
	id := alice.expect(protocol.TypeSessionReady).(protocol.SessionReady).SessionID
	bob.send(protocol.JoinSession{SessionID: id, Name: "Bob"})
	bob.expect(protocol.TypeJoined)
	if pj := alice.expect(protocol.TypePeerJoined).(protocol.PeerJoined); pj.Name != "Bob" {
		t.Errorf("alice got %+v, want bob's name", pj)
	}

	carol.send(protocol.JoinSession{SessionID: id, Name: "Carol"})
	j := carol.expect(protocol.TypeJoined).(protocol.Joined)
	want := map[string]string{alice.id: "Alice", bob.id: "Bob"}
	if !j.Group || !reflect.DeepEqual(j.Names, want) {
		t.Errorf("carol's joined %+v, want a group with names %v", j, want)
	}
	for _, c := range []*client{alice, bob} {
		c.expect(protocol.TypeGroupStarted)
		pj := c.expect(protocol.TypePeerJoined).(protocol.PeerJoined)
		if pj.PeerID != carol.id || pj.Name != "Carol" {
			t.Errorf("peer_joined %+v after group_started, want carol named Carol", pj)
		}
	}
	// Joining the session one is in again answers with the others' names.
	alice.send(protocol.JoinSession{SessionID: id})
	j = alice.expect(protocol.TypeJoined).(protocol.Joined)
	if want := map[string]string{bob.id: "Bob", carol.id: "Carol"}; !reflect.DeepEqual(j.Names, want) {
		t.Errorf("alice's joined again %+v, want names %v", j, want)
	}
}
