package turnserver

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// hmacSHA1 is HMAC from its definition (RFC 2104 §2) over SHA-1, independent of crypto/hmac:
// H((K ^ opad) || H((K ^ ipad) || text)), with K zero-padded to SHA-1's 64-byte block.
func hmacSHA1(key, text []byte) []byte {
	if len(key) > 64 {
		k := sha1.Sum(key)
		key = k[:]
	}
	var ipad, opad [64]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner := sha1.Sum(append(ipad[:], text...))
	outer := sha1.Sum(append(opad[:], inner[:]...))
	return outer[:]
}

func TestHMACSHA1ByHand(t *testing.T) {
	// RFC 2202 §3, test cases 2 and 6 (a key longer than the block).
	for _, tc := range []struct{ key, text, want string }{
		{"Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{string(bytes.Repeat([]byte{0xaa}, 80)), "Test Using Larger Than Block-Size Key - Hash Key First",
			"aa4ae5e15272d00e95705637ce8a3b55ed402112"},
	} {
		if got := hex.EncodeToString(hmacSHA1([]byte(tc.key), []byte(tc.text))); got != tc.want {
			t.Errorf("HMAC-SHA1(%q, %q) = %s, want %s", tc.key, tc.text, got, tc.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	now := time.Unix(1700000000, 0)
	user, pass := Credentials("s3cret", "alice", now, time.Hour)
	if user != "1700003600:alice" {
		t.Errorf("username = %q, want 1700003600:alice (expiry = now + ttl, in Unix seconds)", user)
	}
	// Known answer, from: printf 1700003600:alice | openssl dgst -sha1 -hmac s3cret -binary | base64
	if pass != "YAFdW/YDZewZsR1QSgUk2IrfbRI=" {
		t.Errorf("password = %q, want YAFdW/YDZewZsR1QSgUk2IrfbRI=", pass)
	}
	for _, tc := range []struct{ secret, userID string }{
		{"s3cret", "alice"},
		{"", "Yq3n0c2bJ5mG8Jx1rX9a2w"},
		{string(bytes.Repeat([]byte("k"), 100)), "bob"},
	} {
		user, pass := Credentials(tc.secret, tc.userID, now, 90*time.Second)
		want := base64.StdEncoding.EncodeToString(hmacSHA1([]byte(tc.secret), []byte(user)))
		if user != "1700000090:"+tc.userID || pass != want {
			t.Errorf("Credentials(%q, %q) = %q, %q; want 1700000090:%s, %s", tc.secret, tc.userID,
				user, pass, tc.userID, want)
		}
	}
}

func TestCheckUsername(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		username string
		userID   string
		err      error
	}{
		{"1700003600:alice", "alice", nil},
		{"1700000000:alice", "alice", nil}, // valid through its expiry second, as in coturn
		{"1699999999:alice", "", errExpired},
		{"0:alice", "", errExpired},
		{"1700003600", "1700003600", nil}, // coturn accepts a bare expiry
		{"1700003600:", "1700003600:", nil},
		{"1700003600:a:b", "a:b", nil},
		{"", "", errMalformed},
		{"alice", "", errMalformed},
		{":alice", "", errMalformed},
		{"+1700003600:alice", "", errMalformed},
		{"-1:alice", "", errMalformed},
		{"17000036000000000000000:alice", "", errMalformed},
		{"alice:1700003600", "", errMalformed},
	} {
		userID, err := checkUsername(tc.username, now)
		if userID != tc.userID || err != tc.err {
			t.Errorf("checkUsername(%q) = %q, %v; want %q, %v", tc.username, userID, err, tc.userID, tc.err)
		}
	}
}

func TestAuthHandler(t *testing.T) {
	now := time.Unix(1700000000, 0)
	auth := authHandler("s3cret", func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))

	user, pass := Credentials("s3cret", "alice", now, time.Hour)
	userID, key, ok := auth(&turn.RequestAttributes{Username: user, Realm: "parley"})
	// RFC 8489 §9.2.2: the long-term key is MD5(username ":" realm ":" password).
	want := md5.Sum([]byte(user + ":parley:" + pass))
	if !ok || userID != "alice" || !bytes.Equal(key, want[:]) {
		t.Errorf("auth(%s) = %q, %x, %v; want alice, %x, true", user, userID, key, ok, want)
	}

	expired, _ := Credentials("s3cret", "alice", now, -time.Second)
	if _, _, ok := auth(&turn.RequestAttributes{Username: expired, Realm: "parley"}); ok {
		t.Errorf("auth accepted the expired username %s", expired)
	}
}
