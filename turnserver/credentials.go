package turnserver

import (
	"crypto/hmac"
	"crypto/sha1" // #nosec G505: HMAC-SHA1 is what the TURN REST API specifies; it is not used as a hash here
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pion/turn/v5"
)

// Credentials returns TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2, the
// scheme of coturn's use-auth-secret) for userID, valid until now+ttl: the username is
// "expiry:userID" with expiry in Unix seconds, and the password is
// base64(HMAC-SHA1(secret, username)). Any server that knows secret can check them without
// state, so an external coturn configured with the same static-auth-secret accepts them too.
func Credentials(secret, userID string, now time.Time, ttl time.Duration) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + userID
	return username, restPassword(secret, username)
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Why checkUsername refuses a username; the usernames themselves are not secret.
var (
	errMalformed = errors.New("not expiry:userID")
	errExpired   = errors.New("expired")
)

// checkUsername parses a TURN REST API username, "expiry:userID" (or a bare "expiry", as
// coturn also accepts), and refuses it once expiry, in Unix seconds, is in the past. It
// returns the user ID, or the whole username when there is none.
func checkUsername(username string, now time.Time) (userID string, err error) {
	expiry, id, hasID := strings.Cut(username, ":")
	if expiry == "" || strings.TrimLeft(expiry, "0123456789") != "" {
		return "", errMalformed
	}
	t, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		return "", errMalformed
	}
	if t < now.Unix() {
		return "", errExpired
	}
	if !hasID || id == "" {
		return username, nil
	}
	return id, nil
}

// authHandler checks TURN REST API credentials for each authenticated request (Allocate,
// Refresh, CreatePermission, ChannelBind), as coturn does: an allocation whose credentials
// expire can no longer be refreshed, and ends within its lifetime (10 min) after that.
//
// pion/turn has LongTermTURNRESTAuthHandler for the same scheme; this one differs in that it
// takes the clock (for tests), logs a refused username at debug level only (every refusal
// is a remote client's doing, and pion's logs each one as an error) and refuses malformed
// expiry fields such as "+1" that strconv.Atoi would take.
//
// pion/turn answers a refusal with 400 (Bad Request) where RFC 8489 §9.2.4 says 401.
func authHandler(secret string, now func() time.Time, log *slog.Logger) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		userID, err := checkUsername(ra.Username, now())
		if err != nil {
			log.Debug("TURN credentials refused", "username", ra.Username, "from", fmt.Sprint(ra.SrcAddr),
				"method", ra.Method.String(), "reason", err.Error())
			return "", nil, false
		}
		// RFC 8489 §9.2.2: key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).
		return userID, turn.GenerateAuthKey(ra.Username, ra.Realm, restPassword(secret, ra.Username)), true
	}
}
