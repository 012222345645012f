// Package protocol defines Parley's signaling messages: the JSON objects that the server, the
// native client and the browser client exchange over a WebSocket. Each wire type is defined
// here once; docs/protocol.md describes the exchange.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Version is the protocol version the server announces in Welcome. A client that receives
// another major version must not assume it understands every message.
const Version = 1

// MaxMessageSize is the largest signaling message, in bytes, that a peer may send. The
// server answers a larger one with an Error of code CodeTooLarge and keeps the connection.
const MaxMessageSize = 64 << 10

// ServerPeer is the address of the server's media peer, the SFU, in a group session: a
// member sends its offer, answer and candidates with To set to ServerPeer, and those the
// server sends come with From set to it. No user ID is ever ServerPeer.
const ServerPeer = "sfu"

// MaxNameLen is the longest display name, in bytes of UTF-8 (see CheckName).
const MaxNameLen = 64

// Message types, the value of every message's "type" field.
const (
	TypeWelcome       = "welcome"
	TypeCreateSession = "create_session"
	TypeSessionReady  = "session_ready"
	TypeJoinSession   = "join_session"
	TypeJoined        = "joined"
	TypeJoinError     = "join_error"
	TypeLeaveSession  = "leave_session"
	TypePeerJoined    = "peer_joined"
	TypePeerLeft      = "peer_left"
	TypeOffer         = "offer"
	TypeAnswer        = "answer"
	TypeCandidate     = "candidate"
	TypeError         = "error"
	TypePing          = "ping"
	TypePong          = "pong"
	TypeGroupStarted  = "group_started"
)

// Join error codes (JoinError.Code).
const (
	JoinUnknown = "unknown" // no session has that ID
	JoinFull    = "full"    // the session already has its participants
	JoinClosed  = "closed"  // the session existed and has ended
	// JoinWrongPassword: the session has a password and the join carried another one (or
	// none). Ask the person for it and join again.
	JoinWrongPassword = "wrong_password"
	// JoinBadToken: the join token is malformed, badly signed, expired or for another
	// session; or the server requires a token and the join carried none.
	JoinBadToken = "bad_token"
)

// Error codes (Error.Code).
const (
	CodeBadMessage   = "bad_message"    // not JSON, or a field is missing or malformed
	CodeUnknownType  = "unknown_type"   // the "type" is not one of this protocol's
	CodeTooLarge     = "too_large"      // over MaxMessageSize
	CodeNotInSession = "not_in_session" // the message names a session the sender is not in
	CodeNotAllowed   = "not_allowed"    // a client sent a message only the server sends
	CodeBusy         = "busy"           // the sender is already in a session
	// CodeRateLimited: the sender sent more messages than its rate allows; the message was
	// dropped. A sender that keeps on is disconnected (WebSocket status 1008).
	CodeRateLimited = "rate_limited"
	// CodeTooManyConnections: the sender's IP address has too many connections open; the
	// server closes this one (status 1008) right after the error.
	CodeTooManyConnections = "too_many_connections"
	// CodeShuttingDown: the server is stopping; it closes the connection (status 1001).
	CodeShuttingDown = "shutting_down"
	// CodeUnsupported: the server understood the message but does not do what it asks: a
	// group session on a server without an SFU, or an offer from one member of a group
	// session to another.
	CodeUnsupported = "unsupported"
	// CodeGlare: the sender's offer to the SFU crossed an offer the SFU had sent it (glare,
	// RFC 3264 §4); the SFU ignored it. Answer the SFU's offer, then offer again.
	CodeGlare = "glare"
	// CodeTooManyTracks: the sender's offer to the SFU publishes more tracks than the
	// server forwards of one participant; the SFU's answer declines the media sections
	// beyond the limit (a=inactive), and forwards the others.
	CodeTooManyTracks = "too_many_tracks"
)

// Message is any signaling message. Its Type is the value of the "type" field.
type Message interface {
	Type() string
}

// ICEServer is one STUN or TURN server, in the shape of the WebRTC RTCIceServer dictionary
// (W3C webrtc-pc §4.2.4).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICECandidate is a trickled ICE candidate, in the shape of RTCIceCandidateInit
// (W3C webrtc-pc §4.8.1); Candidate is an SDP "candidate:" attribute value (RFC 8839 §5.1).
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Welcome is the server's first message on a new connection.
type Welcome struct {
	UserID          string      `json:"user_id"`
	ProtocolVersion int         `json:"protocol_version"`
	ICEServers      []ICEServer `json:"ice_servers"`
}

// CreateSession asks the server for a new session with the sender as its host. With a
// Password, only joins that give the same password (or a valid token) are let in. With
// Group, the session is a group call: every member negotiates one peer connection with the
// server's SFU (ServerPeer) instead of one with each other member. Name is the sender's
// display name for the others in the session, empty for none (see CheckName).
type CreateSession struct {
	Password string `json:"password,omitempty"`
	Group    bool   `json:"group,omitempty"`
	Name     string `json:"name,omitempty"`
}

// SessionReady answers CreateSession: the session exists and the sender is its host. Group
// says it is a group session: the host offers to ServerPeer at once.
type SessionReady struct {
	SessionID string `json:"session_id"`
	Group     bool   `json:"group,omitempty"`
}

// JoinSession asks to join an existing session as a guest. Password is the session's
// password, if it has one. Token is a signed join token (a JWT, RFC 7519, signed HS256 with
// the server's token secret, whose "session" claim is SessionID and whose "exp" has not
// passed); a valid token admits without the password. Name is the sender's display name,
// as in CreateSession.
type JoinSession struct {
	SessionID string `json:"session_id"`
	Password  string `json:"password,omitempty"`
	Token     string `json:"token,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Joined answers JoinSession: the sender is in the session. Peers lists the user IDs
// already there; in a two-person session they will send the offer. Group says it is a group
// session: the newcomer offers to ServerPeer at once, and Peers is only who is there.
// Names maps the user IDs in Peers to their display names; members without a name are not
// in it, and it is nil (absent on the wire) when none has one.
type Joined struct {
	SessionID string            `json:"session_id"`
	Peers     []string          `json:"peers"`
	Group     bool              `json:"group,omitempty"`
	Names     map[string]string `json:"names,omitempty"`
}

// JoinError answers a JoinSession that failed; Code is JoinUnknown, JoinFull or JoinClosed.
type JoinError struct {
	SessionID string `json:"session_id"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// LeaveSession hangs up: the sender leaves the session and the others get PeerLeft.
type LeaveSession struct {
	SessionID string `json:"session_id"`
}

// PeerJoined tells a session's members that a peer joined. A member that receives it sends
// that peer an offer. Name is the peer's display name, empty if it gave none.
type PeerJoined struct {
	SessionID string `json:"session_id"`
	PeerID    string `json:"peer_id"`
	Name      string `json:"name,omitempty"`
}

// PeerLeft tells a session's members that a peer left, hung up or lost its connection.
type PeerLeft struct {
	SessionID string `json:"session_id"`
	PeerID    string `json:"peer_id"`
}

// Offer carries an SDP offer (RFC 8829 §5.2). A client sets To (or leaves it empty for "the
// other peer"); the server sets From when it relays.
type Offer struct {
	SessionID string `json:"session_id"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	SDP       string `json:"sdp"`
}

// Answer carries an SDP answer (RFC 8829 §5.3), addressed like Offer.
type Answer struct {
	SessionID string `json:"session_id"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	SDP       string `json:"sdp"`
}

// Candidate carries one trickled ICE candidate (RFC 8838), addressed like Offer. With
// EndOfCandidates set and Candidate nil it says the sender has gathered all its candidates
// (RFC 8838).
type Candidate struct {
	SessionID       string        `json:"session_id"`
	From            string        `json:"from,omitempty"`
	To              string        `json:"to,omitempty"`
	Candidate       *ICECandidate `json:"candidate,omitempty"`
	EndOfCandidates bool          `json:"end_of_candidates,omitempty"`
}

// Error reports a message the server could not act on. Code is one of the Code constants;
// Message is for a person; Ref is the type of the offending message when it was known.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

// GroupStarted tells the members of a two-person session that it has become a group
// session, because a third participant joined and the server has an SFU. Each member closes
// its peer-to-peer connection and negotiates with the SFU as in any group session: it
// offers to ServerPeer. The session stays a group until it ends.
type GroupStarted struct {
	SessionID string `json:"session_id"`
}

// Ping asks for a Pong; either side may send it. The server sends one every few seconds and
// drops a connection from which it hears nothing for its idle timeout.
type Ping struct{}

// Pong answers Ping.
type Pong struct{}

func (Welcome) Type() string       { return TypeWelcome }
func (CreateSession) Type() string { return TypeCreateSession }
func (SessionReady) Type() string  { return TypeSessionReady }
func (JoinSession) Type() string   { return TypeJoinSession }
func (Joined) Type() string        { return TypeJoined }
func (JoinError) Type() string     { return TypeJoinError }
func (LeaveSession) Type() string  { return TypeLeaveSession }
func (PeerJoined) Type() string    { return TypePeerJoined }
func (PeerLeft) Type() string      { return TypePeerLeft }
func (Offer) Type() string         { return TypeOffer }
func (Answer) Type() string        { return TypeAnswer }
func (Candidate) Type() string     { return TypeCandidate }
func (Error) Type() string         { return TypeError }
func (Ping) Type() string          { return TypePing }
func (Pong) Type() string          { return TypePong }
func (GroupStarted) Type() string  { return TypeGroupStarted }

// ErrDecode is wrapped by every error Decode returns.
var ErrDecode = errors.New("bad signaling message")

// DecodeError says why a message could not be decoded, with the Error code to answer it.
type DecodeError struct {
	Code string // CodeBadMessage, CodeUnknownType or CodeTooLarge
	Type string // the message's type, when it could be read
	Err  error
}

func (e *DecodeError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("%s message: %v", e.Type, e.Err)
	}
	return e.Err.Error()
}

func (e *DecodeError) Unwrap() []error { return []error{ErrDecode, e.Err} }

// newMessage returns a pointer to a zero message of the given type, or nil.
func newMessage(typ string) Message {
	switch typ {
	case TypeWelcome:
		return &Welcome{}
	case TypeCreateSession:
		return &CreateSession{}
	case TypeSessionReady:
		return &SessionReady{}
	case TypeJoinSession:
		return &JoinSession{}
	case TypeJoined:
		return &Joined{}
	case TypeJoinError:
		return &JoinError{}
	case TypeLeaveSession:
		return &LeaveSession{}
	case TypePeerJoined:
		return &PeerJoined{}
	case TypePeerLeft:
		return &PeerLeft{}
	case TypeOffer:
		return &Offer{}
	case TypeAnswer:
		return &Answer{}
	case TypeCandidate:
		return &Candidate{}
	case TypeError:
		return &Error{}
	case TypePing:
		return &Ping{}
	case TypePong:
		return &Pong{}
	case TypeGroupStarted:
		return &GroupStarted{}
	}
	return nil
}

// Decode parses one message and checks its required fields. It returns the message as a
// value (Offer, not *Offer). Every error is a *DecodeError.
func Decode(data []byte) (Message, error) {
	if len(data) > MaxMessageSize {
		return nil, &DecodeError{Code: CodeTooLarge,
			Err: fmt.Errorf("%d bytes is over the %d-byte limit", len(data), MaxMessageSize)}
	}
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &DecodeError{Code: CodeBadMessage, Err: fmt.Errorf("not a JSON object: %w", err)}
	}
	if head.Type == nil {
		return nil, &DecodeError{Code: CodeBadMessage, Err: errors.New(`no "type" field`)}
	}
	typ := *head.Type
	m := newMessage(typ)
	if m == nil {
		return nil, &DecodeError{Code: CodeUnknownType, Type: typ,
			Err: fmt.Errorf("unknown message type %q", typ)}
	}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, &DecodeError{Code: CodeBadMessage, Type: typ, Err: err}
	}
	v := deref(m)
	if err := validate(v); err != nil {
		return nil, &DecodeError{Code: CodeBadMessage, Type: typ, Err: err}
	}
	return v, nil
}

func deref(m Message) Message {
	switch p := m.(type) {
	case *Welcome:
		return *p
	case *CreateSession:
		return *p
	case *SessionReady:
		return *p
	case *JoinSession:
		return *p
	case *Joined:
		if len(p.Names) == 0 {
			p.Names = nil // "names":{} and no names are the same, and encode the same
		}
		return *p
	case *JoinError:
		return *p
	case *LeaveSession:
		return *p
	case *PeerJoined:
		return *p
	case *PeerLeft:
		return *p
	case *Offer:
		return *p
	case *Answer:
		return *p
	case *Candidate:
		return *p
	case *Error:
		return *p
	case *Ping:
		return *p
	case *Pong:
		return *p
	case *GroupStarted:
		return *p
	}
	return m
}

// Bounds on what a peer may send: real IDs are 22 characters.
const (
	maxIDLen     = 64
	maxSecretLen = 256  // a session password, in bytes
	maxTokenLen  = 2048 // a join token, in bytes
)

func checkID(field, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is missing", field)
		}
		return nil
	}
	if len(v) > maxIDLen {
		return fmt.Errorf("%s is %d bytes long, over %d", field, len(v), maxIDLen)
	}
	return nil
}

// ErrBadName is wrapped by CheckName's errors.
var ErrBadName = errors.New("bad display name")

// CheckName reports whether name may be a display name: at most MaxNameLen bytes of UTF-8,
// no control characters (Unicode category Cc: C0, DEL, C1; a name is one line of plain
// text) and no white space at either end (a client trims what a person typed, so that a
// name is never blank). The empty name, meaning "no name", passes. Decode has already
// turned invalid UTF-8 into U+FFFD. The error wraps ErrBadName.
func CheckName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes long, over %d", ErrBadName, len(name), MaxNameLen)
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrBadName, r, i)
		}
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: white space at the start or end (trim it)", ErrBadName)
	}
	return nil
}

// CleanName makes what a person typed into a name CheckName accepts: control characters
// become spaces, white space at either end goes, and a name over MaxNameLen bytes is cut
// at the last whole character that fits. Clients call it; the server only checks.
func CleanName(typed string) string {
	name := strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(typed, "\uFFFD")))
	for len(name) > MaxNameLen { // drop whole characters from the end
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return strings.TrimSpace(name)
}

func checkNameField(field, name string) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func validate(m Message) error {
	switch v := m.(type) {
	case Welcome:
		return checkID("user_id", v.UserID, true)
	case SessionReady:
		return checkID("session_id", v.SessionID, true)
	case CreateSession:
		if len(v.Password) > maxSecretLen {
			return fmt.Errorf("password is %d bytes long, over %d", len(v.Password), maxSecretLen)
		}
		return checkNameField("name", v.Name)
	case JoinSession:
		if len(v.Password) > maxSecretLen {
			return fmt.Errorf("password is %d bytes long, over %d", len(v.Password), maxSecretLen)
		}
		if len(v.Token) > maxTokenLen {
			return fmt.Errorf("token is %d bytes long, over %d", len(v.Token), maxTokenLen)
		}
		if err := checkNameField("name", v.Name); err != nil {
			return err
		}
		return checkID("session_id", v.SessionID, true)
	case Joined:
		for id, name := range v.Names {
			if err := checkID("a user ID in names", id, true); err != nil {
				return err
			}
			if err := checkNameField(fmt.Sprintf("names[%q]", id), name); err != nil {
				return err
			}
		}
		return checkID("session_id", v.SessionID, true)
	case JoinError:
		if err := checkID("session_id", v.SessionID, false); err != nil {
			return err
		}
		if v.Code == "" {
			return errors.New("code is missing")
		}
	case LeaveSession:
		return checkID("session_id", v.SessionID, true)
	case GroupStarted:
		return checkID("session_id", v.SessionID, true)
	case PeerJoined:
		if err := checkID("session_id", v.SessionID, true); err != nil {
			return err
		}
		if err := checkNameField("name", v.Name); err != nil {
			return err
		}
		return checkID("peer_id", v.PeerID, true)
	case PeerLeft:
		if err := checkID("session_id", v.SessionID, true); err != nil {
			return err
		}
		return checkID("peer_id", v.PeerID, true)
	case Offer:
		return checkRelayed(v.SessionID, v.From, v.To, v.SDP == "", "sdp is missing")
	case Answer:
		return checkRelayed(v.SessionID, v.From, v.To, v.SDP == "", "sdp is missing")
	case Candidate:
		if v.Candidate == nil && !v.EndOfCandidates {
			return checkRelayed(v.SessionID, v.From, v.To, true, "candidate is missing (or set end_of_candidates)")
		}
		if v.Candidate != nil && v.EndOfCandidates {
			return errors.New("candidate and end_of_candidates are both set")
		}
		return checkRelayed(v.SessionID, v.From, v.To, false, "")
	case Error:
		if v.Code == "" {
			return errors.New("code is missing")
		}
	}
	return nil
}

func checkRelayed(session, from, to string, missing bool, what string) error {
	if err := checkID("session_id", session, true); err != nil {
		return err
	}
	if err := checkID("from", from, false); err != nil {
		return err
	}
	if err := checkID("to", to, false); err != nil {
		return err
	}
	if missing {
		return errors.New(what)
	}
	return nil
}

// Encode returns m as one JSON object with its "type" field first. It does not escape
// <, > and & (an SDP is not HTML), so a relayed message is its sender's size plus "from".
func Encode(m Message) ([]byte, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Type(), err)
	}
	fields := bytes.TrimSuffix(body.Bytes(), []byte("\n"))
	var b bytes.Buffer
	b.Grow(len(fields) + len(m.Type()) + 12)
	b.WriteString(`{"type":"`)
	b.WriteString(m.Type()) // a constant of this package: no escaping needed
	b.WriteByte('"')
	if len(fields) > 2 { // fields is "{...}" with at least one field
		b.WriteByte(',')
		b.Write(fields[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes(), nil
}
