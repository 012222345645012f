// Package session is the sans-I/O core of Parley's signaling: who is connected, who is in
// which session as host or guest, and which messages go to whom. It holds no sockets,
// goroutines, locks or clocks; the signaling server feeds it events and delivers what it
// returns.
//
// A group session's members negotiate with the server's SFU, not with each other: what
// they address to protocol.ServerPeer (or to no one) comes back as an Out to ServerPeer,
// and so do the session's joins and leaves, for the shell to hand to the SFU.
package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/parley-rtc/parley/protocol"
)

// Config sets up a Core. The zero value, with NewID set, is a working two-person core.
type Config struct {
	// NewID returns a fresh unguessable ID for a user or a session. Required.
	NewID func() string
	// MaxPeers is how many participants a session holds; 0 means 2 (a peer-to-peer call).
	MaxPeers int
	// Groups allows group sessions (CreateSession with Group set); the shell must then hand
	// every Out to protocol.ServerPeer to an SFU. Without it such a create is refused with
	// an error of code unsupported.
	Groups bool
	// MaxGroupPeers is how many participants a group session holds; 0 means 16.
	MaxGroupPeers int
	// ICEServers is what Welcome hands every client.
	ICEServers []protocol.ICEServer
	// RememberClosed is how many ended session IDs are kept so that a late join gets
	// "closed" rather than "unknown"; 0 means 10,000. The oldest are forgotten first.
	RememberClosed int
}

// Out is one message to deliver to one connected user, or, when To is
// protocol.ServerPeer, to the SFU.
type Out struct {
	To  string
	Msg protocol.Message
}

// Core is the signaling state. Its methods are not safe for concurrent use: one owner
// calls them, one event at a time.
type Core struct {
	cfg      Config
	users    map[string]*user
	sessions map[string]*session
	closed   map[string]struct{}
	closedQ  []string // FIFO of closed IDs, bounding closed
	closedAt int      // next slot of closedQ to overwrite once it is full
}

type user struct {
	id      string
	session *session // nil while in no session
	// name is the display name given with the create or join that put the user in its
	// session ("" for none); the others hear it in PeerJoined and Joined.
	name string
}

type session struct {
	id       string
	members  []*user   // host first, in the order they joined
	password *[32]byte // SHA-256 of the password, nil for none
	group    bool      // members negotiate with the SFU
}

// New returns an empty Core.
func New(cfg Config) *Core {
	if cfg.NewID == nil {
		panic("session.New: Config.NewID is required")
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 2
	}
	if cfg.MaxGroupPeers <= 0 {
		cfg.MaxGroupPeers = 16
	}
	if cfg.ICEServers == nil {
		cfg.ICEServers = []protocol.ICEServer{} // "ice_servers": [] on the wire, never null
	}
	if cfg.RememberClosed <= 0 {
		cfg.RememberClosed = 10000
	}
	return &Core{
		cfg:      cfg,
		users:    make(map[string]*user),
		sessions: make(map[string]*session),
		closed:   make(map[string]struct{}),
	}
}

// Users is the number of connected users.
func (c *Core) Users() int { return len(c.users) }

// Sessions is the number of live sessions.
func (c *Core) Sessions() int { return len(c.sessions) }

// Connect registers a new connection and returns its user ID and the Welcome to send it.
func (c *Core) Connect() (userID string, out []Out) {
	id := c.cfg.NewID()
	for c.users[id] != nil || id == protocol.ServerPeer {
		id = c.cfg.NewID()
	}
	c.users[id] = &user{id: id}
	return id, []Out{{To: id, Msg: protocol.Welcome{
		UserID:          id,
		ProtocolVersion: protocol.Version,
		ICEServers:      c.cfg.ICEServers,
	}}}
}

// Disconnect removes a user whose connection ended; the others in its session get PeerLeft.
func (c *Core) Disconnect(userID string) []Out {
	u := c.users[userID]
	if u == nil {
		return nil
	}
	out := c.leave(u)
	delete(c.users, userID)
	return out
}

// Handle acts on one message from a connected user and returns what to send.
func (c *Core) Handle(userID string, m protocol.Message) []Out {
	u := c.users[userID]
	if u == nil {
		return nil
	}
	switch m := m.(type) {
	case protocol.Ping:
		return reply(u, protocol.Pong{})
	case protocol.Pong:
		return nil
	case protocol.CreateSession:
		return c.create(u, m.Password, m.Group, m.Name)
	case protocol.JoinSession:
		return c.join(u, m.SessionID, m.Password, m.Name, false)
	case protocol.LeaveSession:
		if u.session == nil || u.session.id != m.SessionID {
			return notIn(u, m.Type(), m.SessionID)
		}
		return c.leave(u)
	case protocol.Offer:
		return c.relay(u, m.SessionID, m.To, func(from string) protocol.Message { m.From = from; return m })
	case protocol.Answer:
		return c.relay(u, m.SessionID, m.To, func(from string) protocol.Message { m.From = from; return m })
	case protocol.Candidate:
		return c.relay(u, m.SessionID, m.To, func(from string) protocol.Message { m.From = from; return m })
	default:
		return reply(u, protocol.Error{Code: protocol.CodeNotAllowed, Ref: m.Type(),
			Message: fmt.Sprintf("%s is a message the server sends, not one it accepts", m.Type())})
	}
}

func reply(u *user, m protocol.Message) []Out { return []Out{{To: u.id, Msg: m}} }

func notIn(u *user, typ, sessionID string) []Out {
	return reply(u, protocol.Error{Code: protocol.CodeNotInSession, Ref: typ,
		Message: fmt.Sprintf("%s for session %q: you are not in that session", typ, sessionID)})
}

func busy(u *user, typ string) []Out {
	return reply(u, protocol.Error{Code: protocol.CodeBusy, Ref: typ,
		Message: fmt.Sprintf("%s: you are already in session %q; leave it first", typ, u.session.id)})
}

// JoinWithToken joins userID to sessionID, with display name name, as Handle does for a
// JoinSession, but without the session's password: the shell calls it once it has verified
// a join token for that session.
func (c *Core) JoinWithToken(userID, sessionID, name string) []Out {
	u := c.users[userID]
	if u == nil {
		return nil
	}
	return c.join(u, sessionID, "", name, true)
}

func (c *Core) create(u *user, password string, group bool, name string) []Out {
	if u.session != nil {
		return busy(u, protocol.TypeCreateSession)
	}
	if group && !c.cfg.Groups {
		return reply(u, protocol.Error{Code: protocol.CodeUnsupported, Ref: protocol.TypeCreateSession,
			Message: "this server has no SFU, so it cannot host group sessions"})
	}
	id := c.cfg.NewID()
	for c.sessions[id] != nil || c.isClosed(id) {
		id = c.cfg.NewID()
	}
	s := &session{id: id, group: group, members: make([]*user, 0, min(c.maxPeers(group), 16))}
	if password != "" {
		sum := sha256.Sum256([]byte(password))
		s.password = &sum
	}
	s.members = append(s.members, u)
	c.sessions[id] = s
	u.session, u.name = s, name
	out := reply(u, protocol.SessionReady{SessionID: id, Group: group})
	if group {
		out = append(out, Out{To: protocol.ServerPeer, Msg: protocol.PeerJoined{SessionID: id, PeerID: u.id}})
	}
	return out
}

func (c *Core) maxPeers(group bool) int {
	if group {
		return c.cfg.MaxGroupPeers
	}
	return c.cfg.MaxPeers
}

func (c *Core) join(u *user, id, password, name string, viaToken bool) []Out {
	if u.session != nil {
		if u.session.id == id {
			// The others were told this user's name when it joined; it stays.
			return reply(u, protocol.Joined{SessionID: id, Peers: others(u.session, u),
				Group: u.session.group, Names: names(u.session, u)})
		}
		return busy(u, protocol.TypeJoinSession)
	}
	s := c.sessions[id]
	switch {
	case s == nil && c.isClosed(id):
		return reply(u, protocol.JoinError{SessionID: id, Code: protocol.JoinClosed,
			Message: fmt.Sprintf("session %q has ended", id)})
	case s == nil:
		return reply(u, protocol.JoinError{SessionID: id, Code: protocol.JoinUnknown,
			Message: fmt.Sprintf("session %q does not exist", id)})
	case s.password != nil && !viaToken && !samePassword(s.password, password):
		msg := fmt.Sprintf("session %q needs a password", id)
		if password != "" {
			msg = fmt.Sprintf("wrong password for session %q", id)
		}
		return reply(u, protocol.JoinError{SessionID: id, Code: protocol.JoinWrongPassword, Message: msg})
	case len(s.members) >= c.maxPeers(s.group) && (s.group || !c.cfg.Groups || len(s.members) >= c.cfg.MaxGroupPeers):
		return reply(u, protocol.JoinError{SessionID: id, Code: protocol.JoinFull,
			Message: fmt.Sprintf("session %q is full (%d participants)", id, c.maxPeers(s.group))})
	}
	out := make([]Out, 0, 2*len(s.members)+2)
	if !s.group && len(s.members) >= c.cfg.MaxPeers {
		// A third participant: the peer-to-peer call moves to the SFU. The members hear
		// it before they hear of the newcomer, so that none offers to it directly.
		s.group = true
		for _, m := range s.members {
			out = append(out, Out{To: m.id, Msg: protocol.GroupStarted{SessionID: id}})
		}
		for _, m := range s.members {
			out = append(out, Out{To: protocol.ServerPeer, Msg: protocol.PeerJoined{SessionID: id, PeerID: m.id}})
		}
	}
	out = append(out, Out{To: u.id, Msg: protocol.Joined{SessionID: id, Peers: others(s, nil), Group: s.group,
		Names: names(s, nil)}})
	for _, m := range s.members {
		out = append(out, Out{To: m.id, Msg: protocol.PeerJoined{SessionID: id, PeerID: u.id, Name: name}})
	}
	if s.group {
		out = append(out, Out{To: protocol.ServerPeer, Msg: protocol.PeerJoined{SessionID: id, PeerID: u.id}})
	}
	s.members = append(s.members, u)
	u.session, u.name = s, name
	return out
}

// samePassword compares in constant time, so response timing tells nothing of the password.
func samePassword(want *[32]byte, got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], sum[:]) == 1
}

func others(s *session, except *user) []string {
	ids := make([]string, 0, len(s.members))
	for _, m := range s.members {
		if m != except {
			ids = append(ids, m.id)
		}
	}
	return ids
}

// names maps the members of s other than except who have a display name to that name;
// nil if none has one.
func names(s *session, except *user) map[string]string {
	var n map[string]string
	for _, m := range s.members {
		if m != except && m.name != "" {
			if n == nil {
				n = make(map[string]string, len(s.members))
			}
			n[m.id] = m.name
		}
	}
	return n
}

// leave takes u out of its session, ending the session when it empties.
func (c *Core) leave(u *user) []Out {
	s := u.session
	if s == nil {
		return nil
	}
	u.session, u.name = nil, ""
	for i, m := range s.members {
		if m == u {
			s.members = append(s.members[:i], s.members[i+1:]...)
			break
		}
	}
	var out []Out
	if len(s.members) == 0 {
		delete(c.sessions, s.id)
		c.rememberClosed(s.id)
	} else {
		out = make([]Out, 0, len(s.members)+1)
		for _, m := range s.members {
			out = append(out, Out{To: m.id, Msg: protocol.PeerLeft{SessionID: s.id, PeerID: u.id}})
		}
	}
	if s.group {
		out = append(out, Out{To: protocol.ServerPeer, Msg: protocol.PeerLeft{SessionID: s.id, PeerID: u.id}})
	}
	return out
}

// relay forwards an offer, answer or candidate to the peer named by to, or to every other
// member when to is empty. withFrom returns the message stamped with its sender.
func (c *Core) relay(u *user, sessionID, to string, withFrom func(string) protocol.Message) []Out {
	m := withFrom(u.id)
	if u.session == nil || u.session.id != sessionID {
		return notIn(u, m.Type(), sessionID)
	}
	s := u.session
	if s.group {
		// In a group the only negotiations are member↔SFU.
		if to != "" && to != protocol.ServerPeer {
			return reply(u, protocol.Error{Code: protocol.CodeUnsupported, Ref: m.Type(),
				Message: fmt.Sprintf("%s to %q: in group session %q, negotiate with the server (to %q)",
					m.Type(), to, sessionID, protocol.ServerPeer)})
		}
		return []Out{{To: protocol.ServerPeer, Msg: m}}
	}
	if to != "" {
		for _, p := range s.members {
			if p.id == to && p != u {
				return []Out{{To: to, Msg: m}}
			}
		}
		return reply(u, protocol.Error{Code: protocol.CodeNotInSession, Ref: m.Type(),
			Message: fmt.Sprintf("%s to %q: no such peer in session %q", m.Type(), to, sessionID)})
	}
	out := make([]Out, 0, len(s.members)-1)
	for _, p := range s.members {
		if p != u {
			out = append(out, Out{To: p.id, Msg: m})
		}
	}
	return out
}

// FromServerPeer delivers a message the SFU sends to user to: an Offer, Answer or Candidate
// for the user's group session, stamped From ServerPeer and To the user, or an Error. It
// returns nothing when the user is gone, in no group session or in another session than
// the message names (the SFU spoke about a session the user has left), and for any other
// message.
func (c *Core) FromServerPeer(to string, m protocol.Message) []Out {
	u := c.users[to]
	if u == nil || u.session == nil || !u.session.group {
		return nil
	}
	id := u.session.id
	switch v := m.(type) {
	case protocol.Offer:
		if v.SessionID != id {
			return nil
		}
		v.From, v.To = protocol.ServerPeer, to
		m = v
	case protocol.Answer:
		if v.SessionID != id {
			return nil
		}
		v.From, v.To = protocol.ServerPeer, to
		m = v
	case protocol.Candidate:
		if v.SessionID != id {
			return nil
		}
		v.From, v.To = protocol.ServerPeer, to
		m = v
	case protocol.Error:
	default:
		return nil
	}
	return reply(u, m)
}

func (c *Core) isClosed(id string) bool {
	_, ok := c.closed[id]
	return ok
}

func (c *Core) rememberClosed(id string) {
	if len(c.closedQ) < c.cfg.RememberClosed {
		c.closedQ = append(c.closedQ, id)
	} else {
		delete(c.closed, c.closedQ[c.closedAt])
		c.closedQ[c.closedAt] = id
		c.closedAt = (c.closedAt + 1) % len(c.closedQ)
	}
	c.closed[id] = struct{}{}
}
