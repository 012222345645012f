// Package jointoken issues and verifies Parley's join tokens: JWTs (RFC 7519) signed with
// HMAC-SHA256 (HS256, RFC 7518 §3.2) that admit their bearer to one session until they
// expire. An application that knows the server's token secret mints them for its users.
package jointoken

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest secret accepted, in bytes: HS256 keys should be at least as
// long as the hash output (RFC 7518 §3.2).
const MinSecretLen = 32

// Claims is a join token's payload: the standard "exp" (and optionally "iat", "nbf") plus
// "session", the session ID the token admits to.
type Claims struct {
	Session string `json:"session"`
	jwt.RegisteredClaims
}

// Errors Verify wraps, for callers that branch on them.
var (
	ErrInvalid      = errors.New("invalid join token")
	ErrWrongSession = errors.New("join token is for another session")
)

// Issue returns a token admitting to sessionID until now+ttl.
func Issue(secret []byte, sessionID string, now time.Time, ttl time.Duration) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("token secret is %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if sessionID == "" || ttl <= 0 {
		return "", errors.New("issue join token: need a session ID and a positive lifetime")
	}
	c := Claims{Session: sessionID, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// Verify checks token's signature, algorithm (only HS256), expiry (required) at now, and
// that it admits to sessionID.
func Verify(secret []byte, token, sessionID string, now time.Time) error {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c.Session != sessionID {
		return fmt.Errorf("%w %q", ErrWrongSession, c.Session)
	}
	return nil
}
