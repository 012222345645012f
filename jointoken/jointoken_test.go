package jointoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := Issue(secret, "sess1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(secret, tok, "sess1", now.Add(59*time.Minute)); err != nil {
		t.Errorf("fresh token: %v", err)
	}
	cases := []struct {
		name    string
		secret  []byte
		token   string
		session string
		at      time.Time
		want    error
	}{
		{"expired", secret, tok, "sess1", now.Add(61 * time.Minute), ErrInvalid},
		{"other session", secret, tok, "sess2", now, ErrWrongSession},
		{"other secret", []byte("another secret of thirty-two by!"), tok, "sess1", now, ErrInvalid},
		{"garbage", secret, "not.a.token", "sess1", now, ErrInvalid},
		{"empty", secret, "", "sess1", now, ErrInvalid},
		{"alg none", secret, unsigned(`{"alg":"none","typ":"JWT"}`, `{"session":"sess1","exp":1900000000}`), "sess1", now, ErrInvalid},
		{"no exp", secret, signed(`{"alg":"HS256","typ":"JWT"}`, `{"session":"sess1"}`), "sess1", now, ErrInvalid},
		{"HS512 header", secret, signed(`{"alg":"HS512","typ":"JWT"}`, `{"session":"sess1","exp":1900000000}`), "sess1", now, ErrInvalid},
	}
	for _, tc := range cases {
		err := Verify(tc.secret, tc.token, tc.session, tc.at)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A token made by hand from the definition (RFC 7519 §3, RFC 7518 §3.2) verifies, so
	// any JWT library can mint Parley's tokens.
	if err := Verify(secret, signed(`{"alg":"HS256","typ":"JWT"}`, `{"session":"sess1","exp":1900000000}`), "sess1", now); err != nil {
		t.Errorf("hand-made token: %v", err)
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := Issue([]byte("short"), "s", time.Now(), time.Hour); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short secret: %v", err)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func unsigned(header, payload string) string { return b64(header) + "." + b64(payload) + "." }

func signed(header, payload string) string {
	in := b64(header) + "." + b64(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
