package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-rtc/parley/protocol"
)

// sdpOffer is a trimmed but well-formed offer (RFC 8866 syntax, CRLF line ends as on the wire).
const sdpOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:0\r\n" +
	"a=ice-ufrag:EsAw\r\n" +
	"a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n" +
	"a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n" +
	"a=setup:actpass\r\n" +
	"a=sendrecv\r\n" +
	"a=rtpmap:96 VP8/90000\r\n"

const (
	userA   = "Yq3n0c2bJ5mG8Jx1rX9a2w" // 22 characters, like a real ID
	userB   = "k3QzP0sVb7tLwE4nH6uR1A"
	session = "c8Uu4s0Nf2oR5pXq1Wm7Zg"
)

// wireCase is one message, fully populated, and its exact encoding. zero names the fields
// deliberately left at their zero value (an Offer's "from" as a client sends it, say); every
// other exported field must be set, so a field added later without a test here fails.
type wireCase struct {
	name string
	msg  protocol.Message
	zero []string
	wire string
}

var wireCases = []wireCase{
	{
		name: "welcome",
		msg: protocol.Welcome{UserID: userA, ProtocolVersion: 1, ICEServers: []protocol.ICEServer{
			{URLs: []string{"stun:stun.example.org:3478"}},
			{URLs: []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"},
				Username: "1700000000:alice", Credential: "s3cr<e>t&"},
		}},
		wire: `{"type":"welcome","user_id":"Yq3n0c2bJ5mG8Jx1rX9a2w","protocol_version":1,"ice_servers":[` +
			`{"urls":["stun:stun.example.org:3478"]},` +
			`{"urls":["turn:turn.example.org:3478?transport=udp","turns:turn.example.org:5349"],` +
			`"username":"1700000000:alice","credential":"s3cr<e>t&"}]}`,
	},
	{
		name: "welcome without ICE servers",
		msg:  protocol.Welcome{UserID: userA, ProtocolVersion: 1, ICEServers: []protocol.ICEServer{}},
		wire: `{"type":"welcome","user_id":"Yq3n0c2bJ5mG8Jx1rX9a2w","protocol_version":1,"ice_servers":[]}`,
	},
	{
		name: "create_session",
		msg:  protocol.CreateSession{Password: "open sesame", Group: true, Name: "Ada Lovelace"},
		wire: `{"type":"create_session","password":"open sesame","group":true,"name":"Ada Lovelace"}`,
	},
	{
		name: "create_session for a two-person call",
		msg:  protocol.CreateSession{},
		zero: []string{"Password", "Group", "Name"},
		wire: `{"type":"create_session"}`,
	},
	{
		name: "session_ready",
		msg:  protocol.SessionReady{SessionID: session, Group: true},
		wire: `{"type":"session_ready","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","group":true}`,
	},
	{
		name: "session_ready for a two-person call",
		msg:  protocol.SessionReady{SessionID: session},
		zero: []string{"Group"},
		wire: `{"type":"session_ready","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg"}`,
	},
	{
		name: "join_session",
		msg: protocol.JoinSession{SessionID: session, Password: "open sesame", Token: "eyJhbGciOiJIUzI1NiJ9.e30.sig",
			Name: "Zoë <Grace> & Co"},
		wire: `{"type":"join_session","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","password":"open sesame","token":"eyJhbGciOiJIUzI1NiJ9.e30.sig","name":"Zoë <Grace> & Co"}`,
	},
	{
		name: "join_session without a name",
		msg:  protocol.JoinSession{SessionID: session},
		zero: []string{"Password", "Token", "Name"},
		wire: `{"type":"join_session","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg"}`,
	},
	{
		name: "joined",
		msg: protocol.Joined{SessionID: session, Peers: []string{userA, userB}, Group: true,
			Names: map[string]string{userB: "Grace", userA: "Ada"}},
		// Names' keys are sorted on the wire, whatever the order of Peers.
		wire: `{"type":"joined","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","peers":["Yq3n0c2bJ5mG8Jx1rX9a2w","k3QzP0sVb7tLwE4nH6uR1A"],"group":true,` +
			`"names":{"Yq3n0c2bJ5mG8Jx1rX9a2w":"Ada","k3QzP0sVb7tLwE4nH6uR1A":"Grace"}}`,
	},
	{
		name: "joined a two-person call",
		msg:  protocol.Joined{SessionID: session, Peers: []string{userA}},
		zero: []string{"Group", "Names"},
		wire: `{"type":"joined","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","peers":["Yq3n0c2bJ5mG8Jx1rX9a2w"]}`,
	},
	{
		name: "offer to the SFU in a group session",
		msg:  protocol.Offer{SessionID: session, From: userA, To: protocol.ServerPeer, SDP: "v=0\r\n"},
		wire: `{"type":"offer","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","from":"Yq3n0c2bJ5mG8Jx1rX9a2w","to":"sfu","sdp":"v=0\r\n"}`,
	},
	{
		name: "join_error",
		msg:  protocol.JoinError{SessionID: session, Code: protocol.JoinFull, Message: "session is full (2 participants)"},
		wire: `{"type":"join_error","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","code":"full","message":"session is full (2 participants)"}`,
	},
	{
		name: "leave_session",
		msg:  protocol.LeaveSession{SessionID: session},
		wire: `{"type":"leave_session","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg"}`,
	},
	{
		name: "peer_joined",
		msg:  protocol.PeerJoined{SessionID: session, PeerID: userB, Name: "Grace"},
		wire: `{"type":"peer_joined","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","peer_id":"k3QzP0sVb7tLwE4nH6uR1A","name":"Grace"}`,
	},
	{
		name: "peer_joined without a name",
		msg:  protocol.PeerJoined{SessionID: session, PeerID: userB},
		zero: []string{"Name"},
		wire: `{"type":"peer_joined","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","peer_id":"k3QzP0sVb7tLwE4nH6uR1A"}`,
	},
	{
		name: "peer_left",
		msg:  protocol.PeerLeft{SessionID: session, PeerID: userB},
		wire: `{"type":"peer_left","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","peer_id":"k3QzP0sVb7tLwE4nH6uR1A"}`,
	},
	{
		name: "offer",
		msg:  protocol.Offer{SessionID: session, From: userA, To: userB, SDP: sdpOffer},
		wire: `{"type":"offer","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","from":"Yq3n0c2bJ5mG8Jx1rX9a2w","to":"k3QzP0sVb7tLwE4nH6uR1A","sdp":` +
			strconv.Quote(sdpOffer) + `}`,
	},
	{
		name: "offer as a client sends it",
		msg:  protocol.Offer{SessionID: session, SDP: "v=0\r\n"},
		zero: []string{"From", "To"},
		wire: `{"type":"offer","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","sdp":"v=0\r\n"}`,
	},
	{
		name: "answer",
		msg:  protocol.Answer{SessionID: session, From: userB, To: userA, SDP: "v=0\r\na=setup:active\r\n"},
		wire: `{"type":"answer","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","from":"k3QzP0sVb7tLwE4nH6uR1A","to":"Yq3n0c2bJ5mG8Jx1rX9a2w","sdp":"v=0\r\na=setup:active\r\n"}`,
	},
	{
		name: "candidate",
		msg: protocol.Candidate{SessionID: session, From: userA, To: userB, Candidate: &protocol.ICECandidate{
			Candidate:        "candidate:1 1 udp 2130706431 192.0.2.1 54400 typ host",
			SDPMid:           new("0"),
			SDPMLineIndex:    new(uint16(0)),
			UsernameFragment: new("EsAw"),
		}},
		zero: []string{"EndOfCandidates"}, // exclusive with Candidate
		wire: `{"type":"candidate","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","from":"Yq3n0c2bJ5mG8Jx1rX9a2w","to":"k3QzP0sVb7tLwE4nH6uR1A",` +
			`"candidate":{"candidate":"candidate:1 1 udp 2130706431 192.0.2.1 54400 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"EsAw"}}`,
	},
	{
		name: "candidate with only the candidate line",
		msg: protocol.Candidate{SessionID: session, Candidate: &protocol.ICECandidate{
			Candidate: "candidate:2 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active",
		}},
		zero: []string{"From", "To", "EndOfCandidates"},
		wire: `{"type":"candidate","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","candidate":{"candidate":"candidate:2 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active"}}`,
	},
	{
		name: "end of candidates",
		msg:  protocol.Candidate{SessionID: session, From: userB, To: userA, EndOfCandidates: true},
		zero: []string{"Candidate"}, // exclusive with EndOfCandidates
		wire: `{"type":"candidate","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg","from":"k3QzP0sVb7tLwE4nH6uR1A","to":"Yq3n0c2bJ5mG8Jx1rX9a2w","end_of_candidates":true}`,
	},
	{
		name: "error",
		msg:  protocol.Error{Code: protocol.CodeNotInSession, Message: "offer for session \"x\": you are not in that session", Ref: protocol.TypeOffer},
		wire: `{"type":"error","code":"not_in_session","message":"offer for session \"x\": you are not in that session","ref":"offer"}`,
	},
	{
		name: "ping",
		msg:  protocol.Ping{},
		wire: `{"type":"ping"}`,
	},
	{
		name: "pong",
		msg:  protocol.Pong{},
		wire: `{"type":"pong"}`,
	},
	{
		name: "group_started",
		msg:  protocol.GroupStarted{SessionID: session},
		wire: `{"type":"group_started","session_id":"c8Uu4s0Nf2oR5pXq1Wm7Zg"}`,
	},
}

// typeConstants reads the package source for every Type* string constant, so that a message
// type added to protocol.go without a case in wireCases fails TestWireCasesCoverEveryType.
func typeConstants(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := make(map[string]string)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Type") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: %s is not a string literal", fset.Position(id.Pos()), id.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					consts[id.Name] = v
				}
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("found no Type* constants in the package source")
	}
	return consts
}

func TestWireCasesCoverEveryType(t *testing.T) {
	covered := make(map[string]bool)
	for _, c := range wireCases {
		covered[c.msg.Type()] = true
	}
	for name, typ := range typeConstants(t) {
		if !covered[typ] {
			t.Errorf("message type %s = %q has no case in wireCases", name, typ)
		}
		delete(covered, typ)
	}
	for typ := range covered {
		t.Errorf("wireCases has type %q, which is no Type* constant", typ)
	}
}

// zeroFields lists the exported fields of a struct value that hold their zero value.
func zeroFields(v any) []string {
	rv := reflect.ValueOf(v)
	var zero []string
	for i := range rv.NumField() {
		if rv.Type().Field(i).IsExported() && rv.Field(i).IsZero() {
			zero = append(zero, rv.Type().Field(i).Name)
		}
	}
	return zero
}

func TestWireCasesAreFullyPopulated(t *testing.T) {
	for _, c := range wireCases {
		got := zeroFields(c.msg)
		if !slices.Equal(got, c.zero) {
			t.Errorf("%s: zero fields %v, want %v (populate new fields in the case)", c.name, got, c.zero)
		}
		if cand, ok := c.msg.(protocol.Candidate); ok && cand.Candidate != nil && c.zero == nil {
			if z := zeroFields(*cand.Candidate); z != nil {
				t.Errorf("%s: ICE candidate has zero fields %v", c.name, z)
			}
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range wireCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := protocol.Encode(c.msg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(b) != c.wire {
				t.Errorf("Encode =\n%s\nwant\n%s", b, c.wire)
			}
			got, err := protocol.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, c.msg) {
				t.Errorf("Decode(Encode(m)) = %#v, want %#v", got, c.msg)
			}
			if got.Type() != c.msg.Type() {
				t.Errorf("Type() = %q, want %q", got.Type(), c.msg.Type())
			}
		})
	}
}

// TestEncodeTypeFirst checks that "type" is the first key, so a reader can dispatch on it
// without buffering the rest (and so that the wire is easy to read in logs).
func TestEncodeTypeFirst(t *testing.T) {
	for _, c := range wireCases {
		b, err := protocol.Encode(c.msg)
		if err != nil {
			t.Fatalf("%s: Encode: %v", c.name, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		var toks []json.Token
		for range 3 {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("%s: %s: %v", c.name, b, err)
			}
			toks = append(toks, tok)
		}
		want := []json.Token{json.Delim('{'), "type", c.msg.Type()}
		if !reflect.DeepEqual(toks, want) {
			t.Errorf("%s: Encode begins with %v, want %v", c.name, toks, want)
		}
		// The rest is one object with no second "type".
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(b, &keys); err != nil {
			t.Fatalf("%s: Encode output is not an object: %v", c.name, err)
		}
		if n := bytes.Count(b, []byte(`"type":`)); n != 1 {
			t.Errorf("%s: %q appears %d times in %s", c.name, `"type":`, n, b)
		}
	}
}

func TestEncodePointer(t *testing.T) {
	// A *Offer is a Message too (value-receiver methods); it must encode as the Offer does.
	m := protocol.Offer{SessionID: session, SDP: "v=0\r\n"}
	want, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Encode(&m) = %s, want %s", got, want)
	}
}

// validOffer returns an offer whose encoding is exactly size bytes.
func validOffer(t *testing.T, size int) []byte {
	t.Helper()
	head := `{"type":"offer","session_id":"s","sdp":"`
	tail := `"}`
	n := size - len(head) - len(tail)
	if n < 1 {
		t.Fatalf("size %d too small", size)
	}
	return []byte(head + strings.Repeat("a", n) + tail)
}

func id(n int) string { return strings.Repeat("x", n) }

func TestDecodeAccepts(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want protocol.Message
	}{
		{"unknown fields are ignored", `{"type":"ping","extra":1,"nested":{"a":[1,2,{"b":null}]}}`, protocol.Ping{}},
		{"unknown fields beside known ones",
			`{"type":"offer","session_id":"s","sdp":"v=0","simulcast":{"layers":3},"from_version":2}`,
			protocol.Offer{SessionID: "s", SDP: "v=0"}},
		{"unknown fields in the ICE candidate",
			`{"type":"candidate","session_id":"s","candidate":{"candidate":"candidate:1","relayProtocol":"udp"}}`,
			protocol.Candidate{SessionID: "s", Candidate: &protocol.ICECandidate{Candidate: "candidate:1"}}},
		{"type not first", `{"session_id":"s","type":"join_session"}`, protocol.JoinSession{SessionID: "s"}},
		{"whitespace around and inside", " \n\t{ \"type\" : \"pong\" }\r\n", protocol.Pong{}},
		{"escaped type", `{"type":"p\u0069ng"}`, protocol.Ping{}},
		{"join_error without session", `{"type":"join_error","code":"unknown","message":""}`,
			protocol.JoinError{Code: "unknown"}},
		{"error with only a code", `{"type":"error","code":"busy"}`, protocol.Error{Code: "busy"}},
		{"end_of_candidates with null candidate",
			`{"type":"candidate","session_id":"s","candidate":null,"end_of_candidates":true}`,
			protocol.Candidate{SessionID: "s", EndOfCandidates: true}},
		{"candidate with end_of_candidates false",
			`{"type":"candidate","session_id":"s","candidate":{"candidate":""},"end_of_candidates":false}`,
			protocol.Candidate{SessionID: "s", Candidate: &protocol.ICECandidate{}}},
		{"sdpMLineIndex at its maximum",
			`{"type":"candidate","session_id":"s","candidate":{"candidate":"c","sdpMLineIndex":65535}}`,
			protocol.Candidate{SessionID: "s", Candidate: &protocol.ICECandidate{Candidate: "c", SDPMLineIndex: new(uint16(65535))}}},
		{"64-byte IDs", `{"type":"offer","session_id":"` + id(64) + `","from":"` + id(64) + `","to":"` + id(64) + `","sdp":"v=0"}`,
			protocol.Offer{SessionID: id(64), From: id(64), To: id(64), SDP: "v=0"}},
		{"64-byte peer_id", `{"type":"peer_left","session_id":"s","peer_id":"` + id(64) + `"}`,
			protocol.PeerLeft{SessionID: "s", PeerID: id(64)}},
		{"unknown error code", `{"type":"error","code":"from_the_future"}`, protocol.Error{Code: "from_the_future"}},
		{"64-byte name", `{"type":"create_session","name":"` + strings.Repeat("é", 32) + `"}`,
			protocol.CreateSession{Name: strings.Repeat("é", 32)}},
		{"name with inner spaces, emoji and right-to-left text", `{"type":"join_session","session_id":"s","name":"Ada  L. 🚀 שלום"}`,
			protocol.JoinSession{SessionID: "s", Name: "Ada  L. 🚀 שלום"}},
		{"empty name is no name", `{"type":"create_session","name":""}`, protocol.CreateSession{}},
		{"empty names object", `{"type":"joined","session_id":"s","peers":["a"],"names":{}}`,
			protocol.Joined{SessionID: "s", Peers: []string{"a"}}},
		{"null names", `{"type":"joined","session_id":"s","peers":["a"],"names":null}`,
			protocol.Joined{SessionID: "s", Peers: []string{"a"}}},
		{"newer protocol version", `{"type":"welcome","user_id":"u","protocol_version":2,"ice_servers":null}`,
			protocol.Welcome{UserID: "u", ProtocolVersion: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := protocol.Decode([]byte(c.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", c.in, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Decode(%s) = %#v, want %#v", c.in, got, c.want)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	at := validOffer(t, protocol.MaxMessageSize)
	if _, err := protocol.Decode(at); err != nil {
		t.Errorf("Decode of a %d-byte offer: %v", len(at), err)
	}
	over := validOffer(t, protocol.MaxMessageSize+1)
	_, err := protocol.Decode(over)
	var de *protocol.DecodeError
	if !errors.As(err, &de) || de.Code != protocol.CodeTooLarge {
		t.Fatalf("Decode of a %d-byte offer: %v, want a %s DecodeError", len(over), err, protocol.CodeTooLarge)
	}
	if de.Type != "" {
		t.Errorf("DecodeError.Type = %q for a message that was not parsed", de.Type)
	}
	if !errors.Is(err, protocol.ErrDecode) {
		t.Errorf("errors.Is(%v, ErrDecode) = false", err)
	}
	// The size is checked before anything else: even garbage gets too_large, not bad_message.
	_, err = protocol.Decode(bytes.Repeat([]byte{0xff}, protocol.MaxMessageSize+1))
	if !errors.As(err, &de) || de.Code != protocol.CodeTooLarge {
		t.Errorf("Decode of oversized garbage: %v, want %s", err, protocol.CodeTooLarge)
	}
}

func TestDecodeRejects(t *testing.T) {
	const bad, unknown = protocol.CodeBadMessage, protocol.CodeUnknownType
	cases := []struct {
		name string
		in   string
		code string // DecodeError.Code
		typ  string // DecodeError.Type
		why  string // in the error text
	}{
		// Not a JSON object.
		{"empty", ``, bad, "", "not a JSON object"},
		{"not JSON", `hello`, bad, "", "not a JSON object"},
		{"truncated", `{"type":"ping"`, bad, "", "not a JSON object"},
		{"trailing data", `{"type":"ping"}{"type":"ping"}`, bad, "", "not a JSON object"},
		{"array", `[{"type":"ping"}]`, bad, "", "not a JSON object"},
		{"string", `"ping"`, bad, "", "not a JSON object"},
		{"number", `42`, bad, "", "not a JSON object"},
		{"boolean", `true`, bad, "", "not a JSON object"},
		{"null", `null`, bad, "", `no "type" field`},

		// The type field.
		{"missing type", `{}`, bad, "", `no "type" field`},
		{"missing type with fields", `{"session_id":"s","sdp":"v=0"}`, bad, "", `no "type" field`},
		{"null type", `{"type":null}`, bad, "", `no "type" field`},
		{"type is a number", `{"type":1}`, bad, "", "not a JSON object"},
		{"type is an array", `{"type":["ping"]}`, bad, "", "not a JSON object"},
		{"type is an object", `{"type":{"name":"ping"}}`, bad, "", "not a JSON object"},
		{"type is a boolean", `{"type":true}`, bad, "", "not a JSON object"},
		{"unknown type", `{"type":"hello"}`, unknown, "hello", `unknown message type "hello"`},
		{"empty type", `{"type":""}`, unknown, "", `unknown message type ""`},
		{"type in the wrong case", `{"type":"Ping"}`, unknown, "Ping", `unknown message type "Ping"`},
		{"type with a space", `{"type":"ping "}`, unknown, "ping ", "unknown message type"},

		// Required fields.
		{"welcome without user_id", `{"type":"welcome","protocol_version":1}`, bad, "welcome", "user_id is missing"},
		{"session_ready without session_id", `{"type":"session_ready"}`, bad, "session_ready", "session_id is missing"},
		{"join_session without session_id", `{"type":"join_session"}`, bad, "join_session", "session_id is missing"},
		{"join_session with empty session_id", `{"type":"join_session","session_id":""}`, bad, "join_session", "session_id is missing"},
		{"joined without session_id", `{"type":"joined","peers":["a"]}`, bad, "joined", "session_id is missing"},
		{"join_error without code", `{"type":"join_error","session_id":"s","message":"m"}`, bad, "join_error", "code is missing"},
		{"join_error with empty code", `{"type":"join_error","session_id":"s","code":""}`, bad, "join_error", "code is missing"},
		{"leave_session without session_id", `{"type":"leave_session"}`, bad, "leave_session", "session_id is missing"},
		{"peer_joined without session_id", `{"type":"peer_joined","peer_id":"p"}`, bad, "peer_joined", "session_id is missing"},
		{"peer_joined without peer_id", `{"type":"peer_joined","session_id":"s"}`, bad, "peer_joined", "peer_id is missing"},
		{"peer_left without session_id", `{"type":"peer_left","peer_id":"p"}`, bad, "peer_left", "session_id is missing"},
		{"peer_left without peer_id", `{"type":"peer_left","session_id":"s"}`, bad, "peer_left", "peer_id is missing"},
		{"offer without session_id", `{"type":"offer","sdp":"v=0"}`, bad, "offer", "session_id is missing"},
		{"offer without sdp", `{"type":"offer","session_id":"s"}`, bad, "offer", "sdp is missing"},
		{"offer with empty sdp", `{"type":"offer","session_id":"s","sdp":""}`, bad, "offer", "sdp is missing"},
		{"answer without session_id", `{"type":"answer","sdp":"v=0"}`, bad, "answer", "session_id is missing"},
		{"answer without sdp", `{"type":"answer","session_id":"s"}`, bad, "answer", "sdp is missing"},
		{"candidate without session_id", `{"type":"candidate","candidate":{"candidate":"c"}}`, bad, "candidate", "session_id is missing"},
		{"candidate without candidate or end_of_candidates", `{"type":"candidate","session_id":"s"}`, bad, "candidate", "candidate is missing"},
		{"candidate with null candidate", `{"type":"candidate","session_id":"s","candidate":null}`, bad, "candidate", "candidate is missing"},
		{"candidate with end_of_candidates false", `{"type":"candidate","session_id":"s","end_of_candidates":false}`, bad, "candidate", "candidate is missing"},
		{"candidate and end_of_candidates", `{"type":"candidate","session_id":"s","candidate":{"candidate":"c"},"end_of_candidates":true}`,
			bad, "candidate", "both set"},
		{"error without code", `{"type":"error","message":"m"}`, bad, "error", "code is missing"},
		{"error with empty code", `{"type":"error","code":"","message":"m"}`, bad, "error", "code is missing"},

		// IDs over 64 bytes.
		{"long user_id", `{"type":"welcome","user_id":"` + id(65) + `"}`, bad, "welcome", "user_id is 65 bytes long"},
		{"long session_id", `{"type":"join_session","session_id":"` + id(65) + `"}`, bad, "join_session", "session_id is 65 bytes long"},
		{"long password", `{"type":"join_session","session_id":"s","password":"` + id(257) + `"}`, bad, "join_session", "password is 257 bytes long"},
		{"long token", `{"type":"join_session","session_id":"s","token":"` + id(2049) + `"}`, bad, "join_session", "token is 2049 bytes long"},
		{"long create password", `{"type":"create_session","password":"` + id(257) + `"}`, bad, "create_session", "password is 257 bytes long"},
		{"long session_id in session_ready", `{"type":"session_ready","session_id":"` + id(65) + `"}`, bad, "session_ready", "session_id is 65 bytes"},
		{"long session_id in joined", `{"type":"joined","session_id":"` + id(65) + `"}`, bad, "joined", "session_id is 65 bytes"},
		{"long session_id in join_error", `{"type":"join_error","session_id":"` + id(65) + `","code":"full"}`, bad, "join_error", "session_id is 65 bytes"},
		{"long session_id in leave", `{"type":"leave_session","session_id":"` + id(65) + `"}`, bad, "leave_session", "session_id is 65 bytes"},
		{"long peer_id", `{"type":"peer_joined","session_id":"s","peer_id":"` + id(65) + `"}`, bad, "peer_joined", "peer_id is 65 bytes"},
		{"long peer_id in peer_left", `{"type":"peer_left","session_id":"s","peer_id":"` + id(65) + `"}`, bad, "peer_left", "peer_id is 65 bytes"},
		{"long session_id in offer", `{"type":"offer","session_id":"` + id(65) + `","sdp":"v=0"}`, bad, "offer", "session_id is 65 bytes"},
		{"long from", `{"type":"offer","session_id":"s","from":"` + id(65) + `","sdp":"v=0"}`, bad, "offer", "from is 65 bytes"},
		{"long to", `{"type":"answer","session_id":"s","to":"` + id(65) + `","sdp":"v=0"}`, bad, "answer", "to is 65 bytes"},
		{"long to in candidate", `{"type":"candidate","session_id":"s","to":"` + id(65) + `","end_of_candidates":true}`, bad, "candidate", "to is 65 bytes"},
		{"long multi-byte ID", `{"type":"join_session","session_id":"` + strings.Repeat("é", 33) + `"}`, bad, "join_session", "66 bytes"},

		// Display names.
		{"long name", `{"type":"create_session","name":"` + id(65) + `"}`, bad, "create_session", "name: bad display name: 65 bytes long, over 64"},
		{"long multi-byte name", `{"type":"join_session","session_id":"s","name":"` + strings.Repeat("é", 33) + `"}`, bad, "join_session", "66 bytes long"},
		{"name with a newline", `{"type":"join_session","session_id":"s","name":"Ada\nLovelace"}`, bad, "join_session", "control character U+000A"},
		{"name with a NUL", `{"type":"create_session","name":"Ada\u0000"}`, bad, "create_session", "control character U+0000"},
		{"name with DEL", `{"type":"create_session","name":"Ada\u007f"}`, bad, "create_session", "control character U+007F"},
		{"name with a C1 control", `{"type":"create_session","name":"Ada\u0085"}`, bad, "create_session", "control character U+0085"},
		{"name with a tab", `{"type":"create_session","name":"A\tB"}`, bad, "create_session", "control character U+0009"},
		{"name with a leading space", `{"type":"join_session","session_id":"s","name":" Ada"}`, bad, "join_session", "white space"},
		{"name of spaces", `{"type":"join_session","session_id":"s","name":"   "}`, bad, "join_session", "white space"},
		{"name with a trailing no-break space", `{"type":"create_session","name":"Ada\u00a0"}`, bad, "create_session", "white space"},
		{"name a number", `{"type":"create_session","name":7}`, bad, "create_session", "name"},
		{"bad name in peer_joined", `{"type":"peer_joined","session_id":"s","peer_id":"p","name":"a\rb"}`, bad, "peer_joined", "control character"},
		{"bad name in joined", `{"type":"joined","session_id":"s","peers":["p"],"names":{"p":"` + id(65) + `"}}`, bad, "joined", `names["p"]: bad display name`},
		{"long user ID in names", `{"type":"joined","session_id":"s","names":{"` + id(65) + `":"Ada"}}`, bad, "joined", "a user ID in names is 65 bytes"},
		{"empty user ID in names", `{"type":"joined","session_id":"s","names":{"":"Ada"}}`, bad, "joined", "a user ID in names is missing"},
		{"names an array", `{"type":"joined","session_id":"s","names":["Ada"]}`, bad, "joined", "names"},

		// Fields of the wrong JSON type.
		{"session_id is a number", `{"type":"join_session","session_id":7}`, bad, "join_session", "session_id"},
		{"session_id is an object", `{"type":"leave_session","session_id":{}}`, bad, "leave_session", "session_id"},
		{"sdp is an object", `{"type":"offer","session_id":"s","sdp":{"type":"offer","sdp":"v=0"}}`, bad, "offer", "sdp"},
		{"candidate is a string", `{"type":"candidate","session_id":"s","candidate":"candidate:1 1 udp 1 192.0.2.1 9 typ host"}`, bad, "candidate", "candidate"},
		{"end_of_candidates is a string", `{"type":"candidate","session_id":"s","end_of_candidates":"true"}`, bad, "candidate", "end_of_candidates"},
		{"sdpMLineIndex negative", `{"type":"candidate","session_id":"s","candidate":{"candidate":"c","sdpMLineIndex":-1}}`, bad, "candidate", "sdpMLineIndex"},
		{"sdpMLineIndex too big", `{"type":"candidate","session_id":"s","candidate":{"candidate":"c","sdpMLineIndex":65536}}`, bad, "candidate", "sdpMLineIndex"},
		{"sdpMLineIndex a string", `{"type":"candidate","session_id":"s","candidate":{"candidate":"c","sdpMLineIndex":"0"}}`, bad, "candidate", "sdpMLineIndex"},
		{"sdpMLineIndex fractional", `{"type":"candidate","session_id":"s","candidate":{"candidate":"c","sdpMLineIndex":0.5}}`, bad, "candidate", "sdpMLineIndex"},
		{"protocol_version a string", `{"type":"welcome","user_id":"u","protocol_version":"1"}`, bad, "welcome", "protocol_version"},
		{"ice_servers an object", `{"type":"welcome","user_id":"u","ice_servers":{"urls":["stun:x"]}}`, bad, "welcome", "ice_servers"},
		{"ice server urls a string", `{"type":"welcome","user_id":"u","ice_servers":[{"urls":"stun:x"}]}`, bad, "welcome", "urls"},
		{"peers a string", `{"type":"joined","session_id":"s","peers":"a"}`, bad, "joined", "peers"},
		{"code a number", `{"type":"error","code":1}`, bad, "error", "code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := protocol.Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("Decode(%s) = %#v, want an error", c.in, m)
			}
			if m != nil {
				t.Errorf("Decode(%s) returned %#v with its error", c.in, m)
			}
			if !errors.Is(err, protocol.ErrDecode) {
				t.Errorf("errors.Is(%v, ErrDecode) = false", err)
			}
			var de *protocol.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%s) error %T is not a *DecodeError", c.in, err)
			}
			if de.Code != c.code {
				t.Errorf("Code = %q, want %q (%v)", de.Code, c.code, err)
			}
			if de.Type != c.typ {
				t.Errorf("Type = %q, want %q (%v)", de.Type, c.typ, err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("error %q does not say %q", err, c.why)
			}
		})
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	_, err := protocol.Decode([]byte(`{"type":"offer","session_id":"s"}`))
	if got, want := err.Error(), "offer message: sdp is missing"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var de *protocol.DecodeError
	errors.As(err, &de)
	if de.Err == nil || !errors.Is(err, de.Err) {
		t.Errorf("the cause %v is not reachable with errors.Is", de.Err)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"", "Ada", "Ada Lovelace", strings.Repeat("x", protocol.MaxNameLen), "李小龍", "👩🏽‍💻 dev"} {
		if err := protocol.CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{strings.Repeat("x", protocol.MaxNameLen+1), "a\x1bb", "a\x00", " a", "a\n", "\u3000a"} {
		err := protocol.CheckName(bad)
		if !errors.Is(err, protocol.ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want an error wrapping ErrBadName", bad, err)
		}
	}
}

func TestCleanName(t *testing.T) {
	cases := []struct{ typed, want string }{
		{"", ""},
		{"   ", ""},
		{"  Ada Lovelace\n", "Ada Lovelace"},
		{"Ada\tLovelace", "Ada Lovelace"},
		{"Ada\x00\x7f\u0085", "Ada"},
		{"bad \xff byte", "bad \ufffd byte"},
		{strings.Repeat("x", 70), strings.Repeat("x", 64)},
		// 31 "é" (62 bytes) and a 4-byte emoji: the emoji does not fit and goes whole.
		{strings.Repeat("é", 31) + "🚀", strings.Repeat("é", 31)},
		{strings.Repeat("é", 32) + "x", strings.Repeat("é", 32)},
		// A cut that leaves a space at the end trims it too.
		{strings.Repeat("x", 63) + " yz", strings.Repeat("x", 63)},
	}
	for _, c := range cases {
		got := protocol.CleanName(c.typed)
		if got != c.want {
			t.Errorf("CleanName(%q) = %q, want %q", c.typed, got, c.want)
		}
		if err := protocol.CheckName(got); err != nil {
			t.Errorf("CheckName(CleanName(%q)) = %v", c.typed, err)
		}
	}
}
