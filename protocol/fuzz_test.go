package protocol_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/parley-rtc/parley/protocol"
)

// FuzzDecode feeds Decode arbitrary bytes, as a hostile peer can. Decode must not panic, must
// fail only with a *DecodeError, and what it accepts must survive Encode and Decode again
// unchanged; after one Encode the bytes are canonical (Encode∘Decode is the identity on them).
// The seed corpus is testdata/fuzz/FuzzDecode plus every case of wireCases.
func FuzzDecode(f *testing.F) {
	for _, c := range wireCases {
		f.Add([]byte(c.wire))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := protocol.Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned %#v with error %v", m, err)
			}
			var de *protocol.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, protocol.ErrDecode) {
				t.Fatalf("Decode error %v (%T) is not a *DecodeError wrapping ErrDecode", err, err)
			}
			switch de.Code {
			case protocol.CodeBadMessage, protocol.CodeUnknownType, protocol.CodeTooLarge:
			default:
				t.Fatalf("DecodeError code %q is not one Decode may return", de.Code)
			}
			return
		}
		if m == nil {
			t.Fatal("Decode returned nil and no error")
		}
		if k := reflect.TypeOf(m).Kind(); k != reflect.Struct {
			t.Fatalf("Decode returned a %v (%T), want a message value", k, m)
		}

		b, err := protocol.Encode(m)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", m, err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":`)) {
			t.Fatalf("Encode(%#v) = %s: type is not first", m, b)
		}
		if len(b) > protocol.MaxMessageSize {
			// Encode escapes <, >, & (6 bytes each) and Decode turns each invalid UTF-8 byte
			// into U+FFFD (3 bytes), so an accepted message near the limit can re-encode over
			// it. Inputs that large are out of this fuzzer's reach; the server's relay path
			// has the same issue (see the report on protocol.Encode).
			return
		}
		m2, err := protocol.Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(m)) = %v\nm = %#v\nEncode(m) = %s", err, m, b)
		}
		if !reflect.DeepEqual(m2, m) {
			t.Fatalf("Decode(Encode(m)) = %#v, want %#v\nEncode(m) = %s", m2, m, b)
		}
		b2, err := protocol.Encode(m2)
		if err != nil {
			t.Fatalf("second Encode: %v", err)
		}
		if !bytes.Equal(b2, b) {
			t.Fatalf("Encode is not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzCleanName: whatever a person types, CleanName makes a name the server accepts, and
// cleaning it again changes nothing.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"", " Ada ", "a\tb", "\xff\xfe", "é🚀\u0085\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		name := protocol.CleanName(typed)
		if err := protocol.CheckName(name); err != nil {
			t.Fatalf("CheckName(CleanName(%q)) = %v (name %q)", typed, err, name)
		}
		if again := protocol.CleanName(name); again != name {
			t.Fatalf("CleanName is not idempotent on %q: %q, then %q", typed, name, again)
		}
	})
}
