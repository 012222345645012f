package session_test

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/session"
)

// counter returns a NewID that hands out "u1", "u2", ... The core draws user and session IDs
// from the same NewID, so a session created by the first user of a test is "u2".
func counter() func() string {
	n := 0
	return func() string { n++; return "u" + strconv.Itoa(n) }
}

// event is one input to the core: a connection, a message from a user, or a disconnection;
// want is exactly what the core must return for it.
type event struct {
	kind string // "connect", "handle", "disconnect" or "server" (a message from the SFU to user)
	user string // for connect: the ID Connect must return
	msg  protocol.Message
	want []session.Out
}

func connect(user string, want ...session.Out) event {
	return event{kind: "connect", user: user, want: want}
}

func send(user string, m protocol.Message, want ...session.Out) event {
	return event{kind: "handle", user: user, msg: m, want: want}
}

func disconnect(user string, want ...session.Out) event {
	return event{kind: "disconnect", user: user, want: want}
}

// fromSFU is the SFU sending m to user.
func fromSFU(user string, m protocol.Message, want ...session.Out) event {
	return event{kind: "server", user: user, msg: m, want: want}
}

func to(user string, m protocol.Message) session.Out { return session.Out{To: user, Msg: m} }

// welcome is what Connect returns with the ICE servers of the default test Config.
func welcome(user string) session.Out {
	return to(user, protocol.Welcome{UserID: user, ProtocolVersion: protocol.Version, ICEServers: testICE})
}

// Error and JoinError messages are for people: the tests pin their codes and fields, and
// only require that the text is there.
func failure(user, code, ref string) session.Out {
	return to(user, protocol.Error{Code: code, Ref: ref, Message: "*"})
}

func joinError(user, sessionID, code string) session.Out {
	return to(user, protocol.JoinError{SessionID: sessionID, Code: code, Message: "*"})
}

var testICE = []protocol.ICEServer{
	{URLs: []string{"stun:stun.example.org:3478"}},
	{URLs: []string{"turn:turn.example.org:3478"}, Username: "alice", Credential: "secret"},
}

// sameOut reports whether got is want, where a want Message of "*" accepts any non-empty text.
func sameOut(got, want []session.Out) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		switch wm := w.Msg.(type) {
		case protocol.Error:
			if gm, ok := g.Msg.(protocol.Error); ok && wm.Message == "*" && gm.Message != "" {
				wm.Message = gm.Message
				w.Msg = wm
			}
		case protocol.JoinError:
			if gm, ok := g.Msg.(protocol.JoinError); ok && wm.Message == "*" && gm.Message != "" {
				wm.Message = gm.Message
				w.Msg = wm
			}
		}
		if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

func format(outs []session.Out) string {
	if len(outs) == 0 {
		return "  (nothing)\n"
	}
	var b strings.Builder
	for _, o := range outs {
		enc, err := protocol.Encode(o.Msg)
		if err != nil {
			enc = []byte(fmt.Sprintf("%#v", o.Msg))
		}
		fmt.Fprintf(&b, "  → %s %s\n", o.To, enc)
	}
	return b.String()
}

func (e event) String() string {
	switch e.kind {
	case "handle":
		enc, _ := protocol.Encode(e.msg)
		return fmt.Sprintf("%s sends %s", e.user, enc)
	case "server":
		enc, _ := protocol.Encode(e.msg)
		return fmt.Sprintf("the SFU sends %s %s", e.user, enc)
	default:
		return e.kind + " " + e.user
	}
}

// run feeds events to c and checks every result.
func run(t *testing.T, c *session.Core, events []event) {
	t.Helper()
	for i, e := range events {
		var got []session.Out
		switch e.kind {
		case "connect":
			var id string
			id, got = c.Connect()
			if id != e.user {
				t.Fatalf("event %d: Connect returned user %q, want %q", i, id, e.user)
			}
		case "handle":
			got = c.Handle(e.user, e.msg)
		case "disconnect":
			got = c.Disconnect(e.user)
		case "server":
			got = c.FromServerPeer(e.user, e.msg)
		default:
			t.Fatalf("event %d: unknown kind %q", i, e.kind)
		}
		if !sameOut(got, e.want) {
			t.Fatalf("event %d: %v:\ngot\n%swant\n%s", i, e, format(got), format(e.want))
		}
	}
}

// twoInCall is u1 hosting session u3 with guest u2.
var twoInCall = []event{
	connect("u1", welcome("u1")),
	connect("u2", welcome("u2")),
	send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u3"})),
	send("u2", protocol.JoinSession{SessionID: "u3"},
		to("u2", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}}),
		to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u2"})),
}

func then(prefix []event, more ...event) []event {
	return append(append([]event(nil), prefix...), more...)
}

func TestCore(t *testing.T) {
	cand := &protocol.ICECandidate{Candidate: "candidate:1 1 udp 2130706431 192.0.2.1 54400 typ host",
		SDPMid: new("0"), SDPMLineIndex: new(uint16(0))}

	cases := []struct {
		name         string
		cfg          session.Config // NewID is set to a fresh counter; ICEServers defaults to testICE
		events       []event
		users, count int // Users() and Sessions() after the events
	}{
		{
			name:   "welcome carries the user ID, protocol version and ICE servers",
			events: []event{connect("u1", welcome("u1")), connect("u2", welcome("u2"))},
			users:  2,
		},
		{
			name: "create answers session_ready",
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u2"})),
			},
			users: 1, count: 1,
		},
		{
			name:   "join answers joined with the peers and tells the host",
			events: twoInCall,
			users:  2, count: 1,
		},
		{
			name: "join an unknown session",
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.JoinSession{SessionID: "nope"}, joinError("u1", "nope", protocol.JoinUnknown)),
				// Failing to join leaves the user free to create.
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u2"})),
			},
			users: 1, count: 1,
		},
		{
			name: "third joiner of a two-person session gets full",
			events: then(twoInCall,
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3"}, joinError("u4", "u3", protocol.JoinFull)),
				// u4 is in no session: its relay is refused, and it may create its own.
				send("u4", protocol.Offer{SessionID: "u3", SDP: "v=0"}, failure("u4", protocol.CodeNotInSession, protocol.TypeOffer)),
				send("u4", protocol.CreateSession{}, to("u4", protocol.SessionReady{SessionID: "u5"})),
			),
			users: 3, count: 2,
		},
		{
			name: "join after everyone left gets closed",
			events: then(twoInCall,
				send("u1", protocol.LeaveSession{SessionID: "u3"}, to("u2", protocol.PeerLeft{SessionID: "u3", PeerID: "u1"})),
				send("u2", protocol.LeaveSession{SessionID: "u3"}),
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3"}, joinError("u4", "u3", protocol.JoinClosed)),
				send("u1", protocol.JoinSession{SessionID: "u3"}, joinError("u1", "u3", protocol.JoinClosed)),
			),
			users: 3, count: 0,
		},
		{
			name: "last one out by disconnecting closes the session",
			events: then(twoInCall,
				disconnect("u2", to("u1", protocol.PeerLeft{SessionID: "u3", PeerID: "u2"})),
				disconnect("u1"),
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3"}, joinError("u4", "u3", protocol.JoinClosed)),
			),
			users: 1, count: 0,
		},
		{
			name: "a host alone leaving closes the session",
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u2"})),
				send("u1", protocol.LeaveSession{SessionID: "u2"}),
				send("u1", protocol.JoinSession{SessionID: "u2"}, joinError("u1", "u2", protocol.JoinClosed)),
				// The next session gets a fresh ID.
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u3"})),
			},
			users: 1, count: 1,
		},
		{
			name: "offer, answer and candidates are relayed with From stamped",
			events: then(twoInCall,
				send("u1", protocol.Offer{SessionID: "u3", SDP: "v=0 offer"},
					to("u2", protocol.Offer{SessionID: "u3", From: "u1", SDP: "v=0 offer"})),
				send("u2", protocol.Answer{SessionID: "u3", To: "u1", SDP: "v=0 answer"},
					to("u1", protocol.Answer{SessionID: "u3", From: "u2", To: "u1", SDP: "v=0 answer"})),
				send("u1", protocol.Candidate{SessionID: "u3", To: "u2", Candidate: cand},
					to("u2", protocol.Candidate{SessionID: "u3", From: "u1", To: "u2", Candidate: cand})),
				send("u2", protocol.Candidate{SessionID: "u3", Candidate: cand},
					to("u1", protocol.Candidate{SessionID: "u3", From: "u2", Candidate: cand})),
				send("u1", protocol.Candidate{SessionID: "u3", To: "u2", EndOfCandidates: true},
					to("u2", protocol.Candidate{SessionID: "u3", From: "u1", To: "u2", EndOfCandidates: true})),
				send("u2", protocol.Candidate{SessionID: "u3", EndOfCandidates: true},
					to("u1", protocol.Candidate{SessionID: "u3", From: "u2", EndOfCandidates: true})),
			),
			users: 2, count: 1,
		},
		{
			name: "a spoofed From is overwritten",
			events: then(twoInCall,
				send("u2", protocol.Offer{SessionID: "u3", From: "u1", SDP: "v=0"},
					to("u1", protocol.Offer{SessionID: "u3", From: "u2", SDP: "v=0"})),
				send("u2", protocol.Answer{SessionID: "u3", From: "mallory", To: "u1", SDP: "v=0"},
					to("u1", protocol.Answer{SessionID: "u3", From: "u2", To: "u1", SDP: "v=0"})),
				send("u1", protocol.Candidate{SessionID: "u3", From: "u2", EndOfCandidates: true},
					to("u2", protocol.Candidate{SessionID: "u3", From: "u1", EndOfCandidates: true})),
			),
			users: 2, count: 1,
		},
		{
			name: "To naming no member of the session",
			events: then(twoInCall,
				connect("u4", welcome("u4")),
				send("u1", protocol.Offer{SessionID: "u3", To: "u4", SDP: "v=0"},
					failure("u1", protocol.CodeNotInSession, protocol.TypeOffer)),
				send("u1", protocol.Answer{SessionID: "u3", To: "ghost", SDP: "v=0"},
					failure("u1", protocol.CodeNotInSession, protocol.TypeAnswer)),
				// Nor may a peer address itself.
				send("u1", protocol.Candidate{SessionID: "u3", To: "u1", EndOfCandidates: true},
					failure("u1", protocol.CodeNotInSession, protocol.TypeCandidate)),
			),
			users: 3, count: 1,
		},
		{
			name: "relay for a session the sender is not in",
			events: then(twoInCall,
				connect("u4", welcome("u4")),
				send("u4", protocol.Offer{SessionID: "u3", To: "u1", SDP: "v=0"},
					failure("u4", protocol.CodeNotInSession, protocol.TypeOffer)),
				send("u4", protocol.Answer{SessionID: "u3", SDP: "v=0"},
					failure("u4", protocol.CodeNotInSession, protocol.TypeAnswer)),
				send("u4", protocol.Candidate{SessionID: "u3", Candidate: cand},
					failure("u4", protocol.CodeNotInSession, protocol.TypeCandidate)),
				// A member naming another session is refused too, even one that exists.
				send("u4", protocol.CreateSession{}, to("u4", protocol.SessionReady{SessionID: "u5"})),
				send("u1", protocol.Offer{SessionID: "u5", SDP: "v=0"},
					failure("u1", protocol.CodeNotInSession, protocol.TypeOffer)),
				send("u1", protocol.Offer{SessionID: "nope", SDP: "v=0"},
					failure("u1", protocol.CodeNotInSession, protocol.TypeOffer)),
			),
			users: 3, count: 2,
		},
		{
			name: "leave_session naming another session, or in none",
			events: then(twoInCall,
				send("u1", protocol.LeaveSession{SessionID: "nope"},
					failure("u1", protocol.CodeNotInSession, protocol.TypeLeaveSession)),
				connect("u4", welcome("u4")),
				send("u4", protocol.LeaveSession{SessionID: "u3"},
					failure("u4", protocol.CodeNotInSession, protocol.TypeLeaveSession)),
				// The call is intact.
				send("u1", protocol.Offer{SessionID: "u3", SDP: "v=0"},
					to("u2", protocol.Offer{SessionID: "u3", From: "u1", SDP: "v=0"})),
			),
			users: 3, count: 1,
		},
		{
			name: "create or join while in a session is busy",
			events: then(twoInCall,
				send("u1", protocol.CreateSession{}, failure("u1", protocol.CodeBusy, protocol.TypeCreateSession)),
				send("u2", protocol.CreateSession{}, failure("u2", protocol.CodeBusy, protocol.TypeCreateSession)),
				connect("u4", welcome("u4")),
				send("u4", protocol.CreateSession{}, to("u4", protocol.SessionReady{SessionID: "u5"})),
				send("u1", protocol.JoinSession{SessionID: "u5"}, failure("u1", protocol.CodeBusy, protocol.TypeJoinSession)),
				send("u4", protocol.JoinSession{SessionID: "u3"}, failure("u4", protocol.CodeBusy, protocol.TypeJoinSession)),
				// Busy is checked before existence.
				send("u4", protocol.JoinSession{SessionID: "nope"}, failure("u4", protocol.CodeBusy, protocol.TypeJoinSession)),
			),
			users: 3, count: 2,
		},
		{
			name: "joining one's own session again repeats joined and tells no one",
			events: then(twoInCall,
				send("u2", protocol.JoinSession{SessionID: "u3"}, to("u2", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}})),
				send("u1", protocol.JoinSession{SessionID: "u3"}, to("u1", protocol.Joined{SessionID: "u3", Peers: []string{"u2"}})),
			),
			users: 2, count: 1,
		},
		{
			name: "guest leaves: the host stays and someone else can join",
			events: then(twoInCall,
				send("u2", protocol.LeaveSession{SessionID: "u3"}, to("u1", protocol.PeerLeft{SessionID: "u3", PeerID: "u2"})),
				// The guest is free again, and no longer reached by relays.
				send("u1", protocol.Offer{SessionID: "u3", SDP: "v=0"}),
				send("u2", protocol.Offer{SessionID: "u3", SDP: "v=0"}, failure("u2", protocol.CodeNotInSession, protocol.TypeOffer)),
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3"},
					to("u4", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}}),
					to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u4"})),
				// The guest who left cannot come back while the session is full.
				send("u2", protocol.JoinSession{SessionID: "u3"}, joinError("u2", "u3", protocol.JoinFull)),
			),
			users: 3, count: 1,
		},
		{
			name: "host leaves: the guest keeps the session and someone can join it",
			events: then(twoInCall,
				send("u1", protocol.LeaveSession{SessionID: "u3"}, to("u2", protocol.PeerLeft{SessionID: "u3", PeerID: "u1"})),
				send("u1", protocol.JoinSession{SessionID: "u3"},
					to("u1", protocol.Joined{SessionID: "u3", Peers: []string{"u2"}}),
					to("u2", protocol.PeerJoined{SessionID: "u3", PeerID: "u1"})),
				send("u2", protocol.Offer{SessionID: "u3", To: "u1", SDP: "v=0"},
					to("u1", protocol.Offer{SessionID: "u3", From: "u2", To: "u1", SDP: "v=0"})),
			),
			users: 2, count: 1,
		},
		{
			name: "disconnect tells the other peer",
			events: then(twoInCall,
				disconnect("u1", to("u2", protocol.PeerLeft{SessionID: "u3", PeerID: "u1"})),
				// A disconnected user is gone: its messages and a second disconnect are ignored.
				send("u1", protocol.Ping{}),
				send("u1", protocol.Offer{SessionID: "u3", SDP: "v=0"}),
				disconnect("u1"),
				send("u2", protocol.Offer{SessionID: "u3", To: "u1", SDP: "v=0"},
					failure("u2", protocol.CodeNotInSession, protocol.TypeOffer)),
			),
			users: 1, count: 1,
		},
		{
			name: "disconnect in no session says nothing",
			events: []event{
				connect("u1", welcome("u1")),
				disconnect("u1"),
			},
		},
		{
			name: "ping and pong",
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.Ping{}, to("u1", protocol.Pong{})),
				send("u1", protocol.Pong{}),
			},
			users: 1,
		},
		{
			name: "messages from unknown users are ignored",
			events: []event{
				send("ghost", protocol.Ping{}),
				send("ghost", protocol.CreateSession{}),
				send("ghost", protocol.Welcome{UserID: "ghost"}),
				disconnect("ghost"),
				send("", protocol.Ping{}),
				connect("u1", welcome("u1")),
			},
			users: 1,
		},
		{
			name: "MaxPeers 4 takes four and tells each one",
			cfg:  session.Config{MaxPeers: 4},
			events: []event{
				connect("u1", welcome("u1")),
				connect("u2", welcome("u2")),
				connect("u3", welcome("u3")),
				connect("u4", welcome("u4")),
				connect("u5", welcome("u5")),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u6"})),
				send("u2", protocol.JoinSession{SessionID: "u6"},
					to("u2", protocol.Joined{SessionID: "u6", Peers: []string{"u1"}}),
					to("u1", protocol.PeerJoined{SessionID: "u6", PeerID: "u2"})),
				send("u3", protocol.JoinSession{SessionID: "u6"},
					to("u3", protocol.Joined{SessionID: "u6", Peers: []string{"u1", "u2"}}),
					to("u1", protocol.PeerJoined{SessionID: "u6", PeerID: "u3"}),
					to("u2", protocol.PeerJoined{SessionID: "u6", PeerID: "u3"})),
				send("u4", protocol.JoinSession{SessionID: "u6"},
					to("u4", protocol.Joined{SessionID: "u6", Peers: []string{"u1", "u2", "u3"}}),
					to("u1", protocol.PeerJoined{SessionID: "u6", PeerID: "u4"}),
					to("u2", protocol.PeerJoined{SessionID: "u6", PeerID: "u4"}),
					to("u3", protocol.PeerJoined{SessionID: "u6", PeerID: "u4"})),
				send("u5", protocol.JoinSession{SessionID: "u6"}, joinError("u5", "u6", protocol.JoinFull)),
				// Without To, a relay goes to every other member, in the order they joined.
				send("u3", protocol.Candidate{SessionID: "u6", EndOfCandidates: true},
					to("u1", protocol.Candidate{SessionID: "u6", From: "u3", EndOfCandidates: true}),
					to("u2", protocol.Candidate{SessionID: "u6", From: "u3", EndOfCandidates: true}),
					to("u4", protocol.Candidate{SessionID: "u6", From: "u3", EndOfCandidates: true})),
				send("u1", protocol.Offer{SessionID: "u6", To: "u4", SDP: "v=0"},
					to("u4", protocol.Offer{SessionID: "u6", From: "u1", To: "u4", SDP: "v=0"})),
				disconnect("u2",
					to("u1", protocol.PeerLeft{SessionID: "u6", PeerID: "u2"}),
					to("u3", protocol.PeerLeft{SessionID: "u6", PeerID: "u2"}),
					to("u4", protocol.PeerLeft{SessionID: "u6", PeerID: "u2"})),
				send("u5", protocol.JoinSession{SessionID: "u6"},
					to("u5", protocol.Joined{SessionID: "u6", Peers: []string{"u1", "u3", "u4"}}),
					to("u1", protocol.PeerJoined{SessionID: "u6", PeerID: "u5"}),
					to("u3", protocol.PeerJoined{SessionID: "u6", PeerID: "u5"}),
					to("u4", protocol.PeerJoined{SessionID: "u6", PeerID: "u5"})),
			},
			users: 4, count: 1,
		},
		{
			name: "a host alone relays to no one",
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u2"})),
				send("u1", protocol.Offer{SessionID: "u2", SDP: "v=0"}),
			},
			users: 1, count: 1,
		},
		{
			name: "RememberClosed forgets the oldest closed session first",
			cfg:  session.Config{RememberClosed: 2},
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u2"})),
				send("u1", protocol.LeaveSession{SessionID: "u2"}),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u3"})),
				send("u1", protocol.LeaveSession{SessionID: "u3"}),
				send("u1", protocol.JoinSession{SessionID: "u2"}, joinError("u1", "u2", protocol.JoinClosed)),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u4"})),
				send("u1", protocol.LeaveSession{SessionID: "u4"}),
				// Three closed, two remembered: u2 is forgotten.
				send("u1", protocol.JoinSession{SessionID: "u2"}, joinError("u1", "u2", protocol.JoinUnknown)),
				send("u1", protocol.JoinSession{SessionID: "u3"}, joinError("u1", "u3", protocol.JoinClosed)),
				send("u1", protocol.JoinSession{SessionID: "u4"}, joinError("u1", "u4", protocol.JoinClosed)),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u5"})),
				disconnect("u1"),
				// The ring wraps: u3 goes next, then u4.
				send("u1", protocol.Ping{}),
				connect("u6", welcome("u6")),
				send("u6", protocol.JoinSession{SessionID: "u3"}, joinError("u6", "u3", protocol.JoinUnknown)),
				send("u6", protocol.JoinSession{SessionID: "u4"}, joinError("u6", "u4", protocol.JoinClosed)),
				send("u6", protocol.JoinSession{SessionID: "u5"}, joinError("u6", "u5", protocol.JoinClosed)),
				send("u6", protocol.CreateSession{}, to("u6", protocol.SessionReady{SessionID: "u7"})),
				send("u6", protocol.LeaveSession{SessionID: "u7"}),
				send("u6", protocol.JoinSession{SessionID: "u4"}, joinError("u6", "u4", protocol.JoinUnknown)),
				send("u6", protocol.JoinSession{SessionID: "u5"}, joinError("u6", "u5", protocol.JoinClosed)),
				send("u6", protocol.JoinSession{SessionID: "u7"}, joinError("u6", "u7", protocol.JoinClosed)),
			},
			users: 1, count: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.ICEServers == nil {
				cfg.ICEServers = testICE
			}
			cfg.NewID = counter()
			c := session.New(cfg)
			run(t, c, tc.events)
			if c.Users() != tc.users || c.Sessions() != tc.count {
				t.Errorf("Users() = %d, Sessions() = %d; want %d, %d", c.Users(), c.Sessions(), tc.users, tc.count)
			}
		})
	}
}

// threeInGroup is u1 hosting group session u4 with u2 and u3, each join told to the SFU.
var threeInGroup = []event{
	connect("u1", welcome("u1")),
	connect("u2", welcome("u2")),
	connect("u3", welcome("u3")),
	send("u1", protocol.CreateSession{Group: true},
		to("u1", protocol.SessionReady{SessionID: "u4", Group: true}),
		to(sfu, protocol.PeerJoined{SessionID: "u4", PeerID: "u1"})),
	send("u2", protocol.JoinSession{SessionID: "u4"},
		to("u2", protocol.Joined{SessionID: "u4", Peers: []string{"u1"}, Group: true}),
		to("u1", protocol.PeerJoined{SessionID: "u4", PeerID: "u2"}),
		to(sfu, protocol.PeerJoined{SessionID: "u4", PeerID: "u2"})),
	send("u3", protocol.JoinSession{SessionID: "u4"},
		to("u3", protocol.Joined{SessionID: "u4", Peers: []string{"u1", "u2"}, Group: true}),
		to("u1", protocol.PeerJoined{SessionID: "u4", PeerID: "u3"}),
		to("u2", protocol.PeerJoined{SessionID: "u4", PeerID: "u3"}),
		to(sfu, protocol.PeerJoined{SessionID: "u4", PeerID: "u3"})),
}

const sfu = protocol.ServerPeer

func TestGroupSessions(t *testing.T) {
	cand := &protocol.ICECandidate{Candidate: "candidate:1 1 udp 2130706431 192.0.2.1 54400 typ host"}
	cases := []struct {
		name         string
		cfg          session.Config // NewID is set to a fresh counter; Groups is on unless noGroups
		noGroups     bool
		events       []event
		users, count int
	}{
		{
			name:   "joins are told to the members and to the SFU",
			events: threeInGroup,
			users:  3, count: 1,
		},
		{
			name: "offer, answer and candidates to the SFU, addressed or not, go to it stamped",
			events: then(threeInGroup,
				send("u2", protocol.Offer{SessionID: "u4", To: sfu, SDP: "v=0"},
					to(sfu, protocol.Offer{SessionID: "u4", From: "u2", To: sfu, SDP: "v=0"})),
				send("u2", protocol.Candidate{SessionID: "u4", Candidate: cand},
					to(sfu, protocol.Candidate{SessionID: "u4", From: "u2", Candidate: cand})),
				send("u3", protocol.Answer{SessionID: "u4", To: sfu, SDP: "v=0"},
					to(sfu, protocol.Answer{SessionID: "u4", From: "u3", To: sfu, SDP: "v=0"})),
				// A "from" a client sets is overwritten.
				send("u3", protocol.Offer{SessionID: "u4", From: "u1", SDP: "v=0"},
					to(sfu, protocol.Offer{SessionID: "u4", From: "u3", SDP: "v=0"})),
			),
			users: 3, count: 1,
		},
		{
			name: "a third participant moves a two-person call to the SFU",
			events: then(twoInCall,
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3"},
					to("u1", protocol.GroupStarted{SessionID: "u3"}),
					to("u2", protocol.GroupStarted{SessionID: "u3"}),
					to(sfu, protocol.PeerJoined{SessionID: "u3", PeerID: "u1"}),
					to(sfu, protocol.PeerJoined{SessionID: "u3", PeerID: "u2"}),
					to("u4", protocol.Joined{SessionID: "u3", Peers: []string{"u1", "u2"}, Group: true}),
					to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u4"}),
					to("u2", protocol.PeerJoined{SessionID: "u3", PeerID: "u4"}),
					to(sfu, protocol.PeerJoined{SessionID: "u3", PeerID: "u4"})),
				// From now on it is a group: no more peer-to-peer negotiation.
				send("u1", protocol.Offer{SessionID: "u3", To: "u2", SDP: "v=0"},
					failure("u1", protocol.CodeUnsupported, protocol.TypeOffer)),
				send("u1", protocol.Offer{SessionID: "u3", To: sfu, SDP: "v=0"},
					to(sfu, protocol.Offer{SessionID: "u3", From: "u1", To: sfu, SDP: "v=0"})),
				// And it stays one when it is back to two.
				send("u4", protocol.LeaveSession{SessionID: "u3"},
					to("u1", protocol.PeerLeft{SessionID: "u3", PeerID: "u4"}),
					to("u2", protocol.PeerLeft{SessionID: "u3", PeerID: "u4"}),
					to(sfu, protocol.PeerLeft{SessionID: "u3", PeerID: "u4"})),
			),
			users: 3, count: 1,
		},
		{
			name:     "without an SFU a third participant finds the call full",
			noGroups: true,
			events: then(twoInCall,
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3"}, joinError("u4", "u3", protocol.JoinFull))),
			users: 3, count: 1,
		},
		{
			name: "members do not negotiate with each other in a group",
			events: then(threeInGroup,
				send("u1", protocol.Offer{SessionID: "u4", To: "u2", SDP: "v=0"},
					failure("u1", protocol.CodeUnsupported, protocol.TypeOffer)),
				send("u1", protocol.Candidate{SessionID: "u4", To: "u3", EndOfCandidates: true},
					failure("u1", protocol.CodeUnsupported, protocol.TypeCandidate)),
				send("u2", protocol.Offer{SessionID: "nope", To: sfu, SDP: "v=0"},
					failure("u2", protocol.CodeNotInSession, protocol.TypeOffer)),
			),
			users: 3, count: 1,
		},
		{
			name: "the SFU's messages reach members stamped from it, and nothing else does",
			events: then(threeInGroup,
				fromSFU("u2", protocol.Offer{SessionID: "u4", SDP: "v=0"},
					to("u2", protocol.Offer{SessionID: "u4", From: sfu, To: "u2", SDP: "v=0"})),
				fromSFU("u1", protocol.Answer{SessionID: "u4", From: "u3", SDP: "v=0"},
					to("u1", protocol.Answer{SessionID: "u4", From: sfu, To: "u1", SDP: "v=0"})),
				fromSFU("u3", protocol.Candidate{SessionID: "u4", EndOfCandidates: true},
					to("u3", protocol.Candidate{SessionID: "u4", From: sfu, To: "u3", EndOfCandidates: true})),
				fromSFU("u3", protocol.Error{Code: protocol.CodeUnsupported, Ref: protocol.TypeOffer, Message: "no"},
					to("u3", protocol.Error{Code: protocol.CodeUnsupported, Ref: protocol.TypeOffer, Message: "no"})),
				// For another session, an unknown user, or a message the SFU does not send: dropped.
				fromSFU("u3", protocol.Offer{SessionID: "old", SDP: "v=0"}),
				fromSFU("u9", protocol.Offer{SessionID: "u4", SDP: "v=0"}),
				fromSFU("u3", protocol.PeerLeft{SessionID: "u4", PeerID: "u1"}),
				send("u3", protocol.LeaveSession{SessionID: "u4"},
					to("u1", protocol.PeerLeft{SessionID: "u4", PeerID: "u3"}),
					to("u2", protocol.PeerLeft{SessionID: "u4", PeerID: "u3"}),
					to(sfu, protocol.PeerLeft{SessionID: "u4", PeerID: "u3"})),
				fromSFU("u3", protocol.Offer{SessionID: "u4", SDP: "v=0"}),
			),
			users: 3, count: 1,
		},
		{
			name: "leaves and disconnects are told to the SFU, the last one too",
			events: then(threeInGroup,
				disconnect("u2",
					to("u1", protocol.PeerLeft{SessionID: "u4", PeerID: "u2"}),
					to("u3", protocol.PeerLeft{SessionID: "u4", PeerID: "u2"}),
					to(sfu, protocol.PeerLeft{SessionID: "u4", PeerID: "u2"})),
				send("u1", protocol.LeaveSession{SessionID: "u4"},
					to("u3", protocol.PeerLeft{SessionID: "u4", PeerID: "u1"}),
					to(sfu, protocol.PeerLeft{SessionID: "u4", PeerID: "u1"})),
				disconnect("u3", to(sfu, protocol.PeerLeft{SessionID: "u4", PeerID: "u3"})),
				send("u1", protocol.JoinSession{SessionID: "u4"}, joinError("u1", "u4", protocol.JoinClosed)),
			),
			users: 1, count: 0,
		},
		{
			name: "MaxGroupPeers bounds a group; MaxPeers still bounds a two-person session",
			cfg:  session.Config{MaxGroupPeers: 3},
			events: then(threeInGroup,
				connect("u5", welcome("u5")),
				send("u5", protocol.JoinSession{SessionID: "u4"}, joinError("u5", "u4", protocol.JoinFull)),
				connect("u6", welcome("u6")),
				send("u5", protocol.CreateSession{}, to("u5", protocol.SessionReady{SessionID: "u7"})),
				send("u6", protocol.JoinSession{SessionID: "u7"},
					to("u6", protocol.Joined{SessionID: "u7", Peers: []string{"u5"}}),
					to("u5", protocol.PeerJoined{SessionID: "u7", PeerID: "u6"})),
				// Two-person sessions know no SFU.
				send("u6", protocol.Offer{SessionID: "u7", To: sfu, SDP: "v=0"},
					failure("u6", protocol.CodeNotInSession, protocol.TypeOffer)),
				fromSFU("u6", protocol.Offer{SessionID: "u7", SDP: "v=0"}),
				disconnect("u6", to("u5", protocol.PeerLeft{SessionID: "u7", PeerID: "u6"})),
			),
			users: 4, count: 2,
		},
		{
			name: "the default group holds 16",
			events: func() []event {
				ev := []event{connect("u1", welcome("u1")),
					send("u1", protocol.CreateSession{Group: true},
						to("u1", protocol.SessionReady{SessionID: "u2", Group: true}),
						to(sfu, protocol.PeerJoined{SessionID: "u2", PeerID: "u1"}))}
				members := []string{"u1"}
				for i := 3; i <= 18; i++ {
					u := "u" + strconv.Itoa(i)
					ev = append(ev, connect(u, welcome(u)))
					if len(members) == 16 {
						ev = append(ev, send(u, protocol.JoinSession{SessionID: "u2"}, joinError(u, "u2", protocol.JoinFull)))
						continue
					}
					want := []session.Out{to(u, protocol.Joined{SessionID: "u2", Peers: slices.Clone(members), Group: true})}
					for _, m := range members {
						want = append(want, to(m, protocol.PeerJoined{SessionID: "u2", PeerID: u}))
					}
					want = append(want, to(sfu, protocol.PeerJoined{SessionID: "u2", PeerID: u}))
					ev = append(ev, send(u, protocol.JoinSession{SessionID: "u2"}, want...))
					members = append(members, u)
				}
				return ev
			}(),
			users: 17, count: 1,
		},
		{
			name:     "without Groups, a group session is refused",
			noGroups: true,
			events: []event{
				connect("u1", welcome("u1")),
				send("u1", protocol.CreateSession{Group: true}, failure("u1", protocol.CodeUnsupported, protocol.TypeCreateSession)),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u2"})),
			},
			users: 1, count: 1,
		},
		{
			name: "no user is ever called sfu",
			cfg: session.Config{NewID: func() func() string {
				ids := []string{sfu, "u1", "u2"}
				return func() string { id := ids[0]; ids = ids[1:]; return id }
			}()},
			events: []event{connect("u1", welcome("u1"))},
			users:  1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ICEServers = testICE
			cfg.Groups = !tc.noGroups
			if cfg.NewID == nil {
				cfg.NewID = counter()
			}
			c := session.New(cfg)
			run(t, c, tc.events)
			if c.Users() != tc.users || c.Sessions() != tc.count {
				t.Errorf("Users() = %d, Sessions() = %d; want %d, %d", c.Users(), c.Sessions(), tc.users, tc.count)
			}
		})
	}
}

// TestServerOnlyMessages checks that a client cannot send what only the server sends, and
// that doing so changes nothing.
func TestServerOnlyMessages(t *testing.T) {
	msgs := []protocol.Message{
		protocol.Welcome{UserID: "u2", ProtocolVersion: protocol.Version},
		protocol.SessionReady{SessionID: "u3"},
		protocol.Joined{SessionID: "u3", Peers: []string{"u1"}},
		protocol.JoinError{SessionID: "u3", Code: protocol.JoinFull},
		protocol.PeerJoined{SessionID: "u3", PeerID: "u2"},
		protocol.PeerLeft{SessionID: "u3", PeerID: "u1"},
		protocol.Error{Code: protocol.CodeBusy},
	}
	for _, m := range msgs {
		t.Run(m.Type(), func(t *testing.T) {
			c := session.New(session.Config{NewID: counter(), ICEServers: testICE})
			run(t, c, then(twoInCall,
				send("u2", m, failure("u2", protocol.CodeNotAllowed, m.Type())),
				connect("u4", welcome("u4")),
				send("u4", m, failure("u4", protocol.CodeNotAllowed, m.Type())),
				// The call is as it was, and u4 is in no session.
				send("u2", protocol.Answer{SessionID: "u3", SDP: "v=0"},
					to("u1", protocol.Answer{SessionID: "u3", From: "u2", SDP: "v=0"})),
				send("u4", protocol.LeaveSession{SessionID: "u3"},
					failure("u4", protocol.CodeNotInSession, protocol.TypeLeaveSession)),
			))
			if c.Users() != 3 || c.Sessions() != 1 {
				t.Errorf("Users() = %d, Sessions() = %d; want 3, 1", c.Users(), c.Sessions())
			}
		})
	}
}

// TestNoLeaks runs many calls that end every way a call can end and checks that the core
// keeps no user and no session afterwards.
func TestNoLeaks(t *testing.T) {
	c := session.New(session.Config{NewID: counter(), MaxPeers: 3, RememberClosed: 5})
	const cycles = 200
	for i := range cycles {
		host, _ := c.Connect()
		guest, _ := c.Connect()
		third, _ := c.Connect()
		out := c.Handle(host, protocol.CreateSession{})
		sid := out[0].Msg.(protocol.SessionReady).SessionID
		c.Handle(guest, protocol.JoinSession{SessionID: sid})
		if i%2 == 0 {
			c.Handle(third, protocol.JoinSession{SessionID: sid})
		}
		c.Handle(host, protocol.Offer{SessionID: sid, SDP: "v=0"})
		c.Handle(guest, protocol.Answer{SessionID: sid, To: host, SDP: "v=0"})
		c.Handle(guest, protocol.Candidate{SessionID: sid, EndOfCandidates: true})
		switch i % 4 {
		case 0: // everyone hangs up, then disconnects
			c.Handle(guest, protocol.LeaveSession{SessionID: sid})
			c.Handle(host, protocol.LeaveSession{SessionID: sid})
			c.Handle(third, protocol.LeaveSession{SessionID: sid})
		case 1: // the host's connection drops first
			c.Disconnect(host)
		case 2: // the guest hangs up and rejoins
			c.Handle(guest, protocol.LeaveSession{SessionID: sid})
			c.Handle(guest, protocol.JoinSession{SessionID: sid})
		case 3: // the third one joins a session that is over
			c.Disconnect(host)
			c.Disconnect(guest)
			c.Handle(third, protocol.JoinSession{SessionID: sid})
		}
		for _, u := range []string{guest, third, host} {
			c.Disconnect(u)
		}
		if c.Users() != 0 || c.Sessions() != 0 {
			t.Fatalf("cycle %d (kind %d): Users() = %d, Sessions() = %d after everyone left; want 0, 0",
				i, i%4, c.Users(), c.Sessions())
		}
	}
}

func TestIDCollisions(t *testing.T) {
	// NewID may repeat itself (it is random); the core must draw again rather than reuse an ID
	// that is connected, live or remembered as closed.
	ids := []string{"a", "a", "b", "a", "s1", "s1", "b", "s2", "a", "s1", "s2", "s3"}
	c := session.New(session.Config{NewID: func() string { id := ids[0]; ids = ids[1:]; return id }})
	run(t, c, []event{
		connect("a", to("a", protocol.Welcome{UserID: "a", ProtocolVersion: protocol.Version, ICEServers: []protocol.ICEServer{}})),
		connect("b", to("b", protocol.Welcome{UserID: "b", ProtocolVersion: protocol.Version, ICEServers: []protocol.ICEServer{}})),
		// User IDs and session IDs are separate namespaces: "a" is a user, so may be a session.
		send("a", protocol.CreateSession{}, to("a", protocol.SessionReady{SessionID: "a"})),
		send("a", protocol.LeaveSession{SessionID: "a"}),
		send("a", protocol.CreateSession{}, to("a", protocol.SessionReady{SessionID: "s1"})),
		send("b", protocol.CreateSession{}, to("b", protocol.SessionReady{SessionID: "b"})),
		send("b", protocol.LeaveSession{SessionID: "b"}),
		send("b", protocol.CreateSession{}, to("b", protocol.SessionReady{SessionID: "s2"})),
		send("b", protocol.LeaveSession{SessionID: "s2"}),
		// "a" is closed, "s1" live and "s2" closed: all skipped.
		send("b", protocol.CreateSession{}, to("b", protocol.SessionReady{SessionID: "s3"})),
	})
	if len(ids) != 0 {
		t.Errorf("NewID values left over: %v", ids)
	}
}

func TestNewWithoutNewIDPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(Config{}) did not panic")
		}
	}()
	session.New(session.Config{})
}

func TestPasswords(t *testing.T) {
	n := 0
	c := session.New(session.Config{ICEServers: testICE, NewID: func() string { n++; return fmt.Sprintf("u%d", n) }})
	run(t, c, []event{
		connect("u1", welcome("u1")),
		connect("u2", welcome("u2")),
		connect("u3", welcome("u3")),
		send("u1", protocol.CreateSession{Password: "hunter2"}, to("u1", protocol.SessionReady{SessionID: "u4"})),
		send("u2", protocol.JoinSession{SessionID: "u4"}, joinError("u2", "u4", protocol.JoinWrongPassword)),
		send("u2", protocol.JoinSession{SessionID: "u4", Password: "hunter3"}, joinError("u2", "u4", protocol.JoinWrongPassword)),
		send("u2", protocol.JoinSession{SessionID: "u4", Password: "hunter2"},
			to("u2", protocol.Joined{SessionID: "u4", Peers: []string{"u1"}}),
			to("u1", protocol.PeerJoined{SessionID: "u4", PeerID: "u2"})),
		send("u2", protocol.LeaveSession{SessionID: "u4"}, to("u1", protocol.PeerLeft{SessionID: "u4", PeerID: "u2"})),
	})
	// A verified token admits without the password; it does not admit past a full session
	// or into one that does not exist.
	if got, want := c.JoinWithToken("u3", "u4", "Carol"), []session.Out{
		to("u3", protocol.Joined{SessionID: "u4", Peers: []string{"u1"}}),
		to("u1", protocol.PeerJoined{SessionID: "u4", PeerID: "u3", Name: "Carol"}),
	}; !sameOut(got, want) {
		t.Errorf("JoinWithToken:\ngot\n%swant\n%s", format(got), format(want))
	}
	if got, want := c.JoinWithToken("u2", "u4", ""), []session.Out{joinError("u2", "u4", protocol.JoinFull)}; !sameOut(got, want) {
		t.Errorf("JoinWithToken into a full session:\ngot\n%swant\n%s", format(got), format(want))
	}
	if got := c.JoinWithToken("nobody", "u4", ""); got != nil {
		t.Errorf("JoinWithToken for an unknown user: %s", format(got))
	}
}

// TestNames: a member's display name, given with its create or join, reaches the others in
// peer_joined and newcomers in joined's names; members without one are left out of names,
// and the SFU is not told names. A name lasts as long as the membership it came with.
func TestNames(t *testing.T) {
	cases := []struct {
		name   string
		groups bool
		events []event
	}{
		{
			name: "two-person call: each hears the other's name",
			events: []event{
				connect("u1", welcome("u1")),
				connect("u2", welcome("u2")),
				send("u1", protocol.CreateSession{Name: "Ada"}, to("u1", protocol.SessionReady{SessionID: "u3"})),
				send("u2", protocol.JoinSession{SessionID: "u3", Name: "Grace Hopper"},
					to("u2", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}, Names: map[string]string{"u1": "Ada"}}),
					to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u2", Name: "Grace Hopper"})),
				// Asking to join again answers with the same names, and a new name is ignored:
				// the others were told the first.
				send("u2", protocol.JoinSession{SessionID: "u3", Name: "Someone else"},
					to("u2", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}, Names: map[string]string{"u1": "Ada"}})),
				send("u1", protocol.JoinSession{SessionID: "u3"},
					to("u1", protocol.Joined{SessionID: "u3", Peers: []string{"u2"}, Names: map[string]string{"u2": "Grace Hopper"}})),
			},
		},
		{
			name: "a member without a name is left out of names",
			events: []event{
				connect("u1", welcome("u1")),
				connect("u2", welcome("u2")),
				send("u1", protocol.CreateSession{}, to("u1", protocol.SessionReady{SessionID: "u3"})),
				send("u2", protocol.JoinSession{SessionID: "u3", Name: "Grace"},
					to("u2", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}}),
					to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u2", Name: "Grace"})),
			},
		},
		{
			name:   "group: the newcomer gets the names of those there; the SFU gets none",
			groups: true,
			events: []event{
				connect("u1", welcome("u1")),
				connect("u2", welcome("u2")),
				connect("u3", welcome("u3")),
				connect("u4", welcome("u4")),
				send("u1", protocol.CreateSession{Group: true, Name: "Ada"},
					to("u1", protocol.SessionReady{SessionID: "u5", Group: true}),
					to(sfu, protocol.PeerJoined{SessionID: "u5", PeerID: "u1"})),
				send("u2", protocol.JoinSession{SessionID: "u5"},
					to("u2", protocol.Joined{SessionID: "u5", Peers: []string{"u1"}, Group: true, Names: map[string]string{"u1": "Ada"}}),
					to("u1", protocol.PeerJoined{SessionID: "u5", PeerID: "u2"}),
					to(sfu, protocol.PeerJoined{SessionID: "u5", PeerID: "u2"})),
				send("u3", protocol.JoinSession{SessionID: "u5", Name: "李小龍"},
					to("u3", protocol.Joined{SessionID: "u5", Peers: []string{"u1", "u2"}, Group: true, Names: map[string]string{"u1": "Ada"}}),
					to("u1", protocol.PeerJoined{SessionID: "u5", PeerID: "u3", Name: "李小龍"}),
					to("u2", protocol.PeerJoined{SessionID: "u5", PeerID: "u3", Name: "李小龍"}),
					to(sfu, protocol.PeerJoined{SessionID: "u5", PeerID: "u3"})),
				// Ada leaves: her name goes with her.
				send("u1", protocol.LeaveSession{SessionID: "u5"},
					to("u2", protocol.PeerLeft{SessionID: "u5", PeerID: "u1"}),
					to("u3", protocol.PeerLeft{SessionID: "u5", PeerID: "u1"}),
					to(sfu, protocol.PeerLeft{SessionID: "u5", PeerID: "u1"})),
				send("u4", protocol.JoinSession{SessionID: "u5", Name: "Dee"},
					to("u4", protocol.Joined{SessionID: "u5", Peers: []string{"u2", "u3"}, Group: true, Names: map[string]string{"u3": "李小龍"}}),
					to("u2", protocol.PeerJoined{SessionID: "u5", PeerID: "u4", Name: "Dee"}),
					to("u3", protocol.PeerJoined{SessionID: "u5", PeerID: "u4", Name: "Dee"}),
					to(sfu, protocol.PeerJoined{SessionID: "u5", PeerID: "u4"})),
				// She comes back under another name, and that is the one the others hear.
				send("u1", protocol.JoinSession{SessionID: "u5", Name: "Ada L."},
					to("u1", protocol.Joined{SessionID: "u5", Peers: []string{"u2", "u3", "u4"}, Group: true,
						Names: map[string]string{"u3": "李小龍", "u4": "Dee"}}),
					to("u2", protocol.PeerJoined{SessionID: "u5", PeerID: "u1", Name: "Ada L."}),
					to("u3", protocol.PeerJoined{SessionID: "u5", PeerID: "u1", Name: "Ada L."}),
					to("u4", protocol.PeerJoined{SessionID: "u5", PeerID: "u1", Name: "Ada L."}),
					to(sfu, protocol.PeerJoined{SessionID: "u5", PeerID: "u1"})),
			},
		},
		{
			name:   "a two-person call that becomes a group keeps its names",
			groups: true,
			events: []event{
				connect("u1", welcome("u1")),
				connect("u2", welcome("u2")),
				send("u1", protocol.CreateSession{Name: "Ada"}, to("u1", protocol.SessionReady{SessionID: "u3"})),
				send("u2", protocol.JoinSession{SessionID: "u3", Name: "Grace"},
					to("u2", protocol.Joined{SessionID: "u3", Peers: []string{"u1"}, Names: map[string]string{"u1": "Ada"}}),
					to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u2", Name: "Grace"})),
				connect("u4", welcome("u4")),
				send("u4", protocol.JoinSession{SessionID: "u3", Name: "Carol"},
					to("u1", protocol.GroupStarted{SessionID: "u3"}),
					to("u2", protocol.GroupStarted{SessionID: "u3"}),
					to(sfu, protocol.PeerJoined{SessionID: "u3", PeerID: "u1"}),
					to(sfu, protocol.PeerJoined{SessionID: "u3", PeerID: "u2"}),
					to("u4", protocol.Joined{SessionID: "u3", Peers: []string{"u1", "u2"}, Group: true,
						Names: map[string]string{"u1": "Ada", "u2": "Grace"}}),
					to("u1", protocol.PeerJoined{SessionID: "u3", PeerID: "u4", Name: "Carol"}),
					to("u2", protocol.PeerJoined{SessionID: "u3", PeerID: "u4", Name: "Carol"}),
					to(sfu, protocol.PeerJoined{SessionID: "u3", PeerID: "u4"})),
				send("u1", protocol.JoinSession{SessionID: "u3"},
					to("u1", protocol.Joined{SessionID: "u3", Peers: []string{"u2", "u4"}, Group: true,
						Names: map[string]string{"u2": "Grace", "u4": "Carol"}})),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, session.New(session.Config{NewID: counter(), ICEServers: testICE, Groups: tc.groups}), tc.events)
		})
	}
}
