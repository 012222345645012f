// Package signaling is Parley's signaling server: the thin I/O shell that accepts WebSocket
// connections at /ws, decodes their messages, feeds them to the sans-I/O session core and
// delivers what the core returns.
package signaling

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/parley-rtc/parley/jointoken"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/session"
)

// Config sets up a Server. Its zero value is a working default.
type Config struct {
	// ICEServers returns the STUN/TURN servers, with credentials, that Welcome hands the
	// user; nil hands none.
	ICEServers func(userID string) []protocol.ICEServer
	// AllowedOrigins are host patterns (path.Match syntax, e.g. "example.com",
	// "*.example.com") of web pages allowed to open /ws besides the server's own origin.
	// Requests from other origins are refused with HTTP 403; requests without an Origin
	// header (native clients) are always allowed.
	AllowedOrigins []string
	// MaxConnsPerIP bounds the open connections from one IP address; 0 means 20, -1 none.
	MaxConnsPerIP int
	// MessageRate is how many messages per second a connection may send on average, and
	// MessageBurst how many at once; 0 means 20/s and a burst of 60.
	MessageRate  float64
	MessageBurst int
	// TokenSecret, if set, lets joins carry a join token (package jointoken) that admits
	// without the session's password. RequireToken refuses joins without a valid token.
	TokenSecret  []byte
	RequireToken bool
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
	// PingInterval is how often the server pings each client; 0 means 10 s.
	PingInterval time.Duration
	// IdleTimeout drops a connection the server has heard nothing from for this long; 0
	// means 25 s, so a dead peer is gone within 30 s.
	IdleTimeout time.Duration
	// SendQueue is how many outgoing messages may wait for a slow client before it is
	// dropped; 0 means 64.
	SendQueue int
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// NewID returns fresh user and session IDs; nil means NewID (128 random bits).
	NewID func() string
	// SFU, if set, carries the media of group sessions (package sfu is one); without it,
	// a group session is refused with an error of code unsupported.
	SFU SFU
	// MaxGroupPeers is how many participants a group session holds; 0 means 16.
	MaxGroupPeers int
}

// SFU is the server's media peer in group sessions: the seam between signaling and the
// selective forwarding unit.
type SFU interface {
	// Handle takes one message the session core addressed to protocol.ServerPeer: PeerJoined
	// and PeerLeft for a group session's membership (its host included), and Offer, Answer
	// and Candidate from a member, with From set. The server calls it from one goroutine,
	// in the order the core produced the messages, and never while holding its own lock, so
	// Handle may call Server.SendFromSFU; it should not block for long.
	Handle(m protocol.Message)
}

// discardLimit is the size above which a message is not even read to its end: the
// connection is closed with status 1009 (RFC 6455 §7.4.1). Between MaxMessageSize and this,
// the message is skipped and answered with an error.
const discardLimit = 1 << 20

// floodLimit is how many messages in a row a connection may have dropped by its rate limit
// before it is closed with status 1008 (policy violation).
const floodLimit = 200

// Server serves signaling over WebSocket. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu      sync.Mutex // guards core and conns; held only while the core runs and queues fill
	core    *session.Core
	conns   map[string]*conn
	perIP   map[netip.Addr]int // open connections per client IP
	closing bool

	wg sync.WaitGroup // one per live connection

	// Messages for the SFU wait in sfuQ (guarded by mu) for the pump goroutine, which hands
	// them over outside the lock: the SFU calls back into the server from its own
	// goroutines. The queue is unbounded so that queueing never waits under mu; each
	// connection's rate limit bounds what it can add.
	sfuQ    []protocol.Message
	sfuWake chan struct{} // capacity 1: something is in sfuQ, or the pump should stop
	sfuStop bool          // guarded by mu: the pump ends once sfuQ is empty
	sfuDone chan struct{} // closed when the pump has ended
}

type conn struct {
	id   string
	ws   *websocket.Conn
	send chan []byte
	// stop is closed, once, to make the writer send a close frame (RFC 6455 §5.5.1) with
	// reason and why; the reader then ends when the close handshake does.
	stop     chan struct{}
	stopOnce sync.Once
	reason   websocket.StatusCode
	why      string

	limit   *rate.Limiter // owned by the reader
	dropped int           // messages dropped in a row by limit
}

func (c *conn) close(code websocket.StatusCode, why string) {
	c.stopOnce.Do(func() {
		c.reason, c.why = code, why
		close(c.stop)
	})
}

// NewID returns a URL-safe ID of 128 bits from crypto/rand (22 characters).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// New returns a Server; mount it as an http.Handler.
func New(cfg Config) *Server {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 25 * time.Second
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NewID == nil {
		cfg.NewID = NewID
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 20
	}
	if cfg.MessageRate <= 0 {
		cfg.MessageRate = 20
	}
	if cfg.MessageBurst <= 0 {
		cfg.MessageBurst = 60
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Logger,
		core: session.New(session.Config{NewID: cfg.NewID, Groups: cfg.SFU != nil,
			MaxGroupPeers: cfg.MaxGroupPeers}),
		conns: make(map[string]*conn),
		perIP: make(map[netip.Addr]int),
		mux:   http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /ws", s.serveWS)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	if cfg.SFU != nil {
		s.sfuWake = make(chan struct{}, 1)
		s.sfuDone = make(chan struct{})
		go s.pumpSFU()
	}
	return s
}

// pumpSFU hands the SFU its messages, in order, outside the lock, until Close.
func (s *Server) pumpSFU() {
	defer close(s.sfuDone)
	for range s.sfuWake {
		s.mu.Lock()
		q, stop := s.sfuQ, s.sfuStop
		s.sfuQ = nil
		s.mu.Unlock()
		for _, m := range q {
			s.cfg.SFU.Handle(m)
		}
		if stop {
			return
		}
	}
}

func (s *Server) wakeSFU() {
	select {
	case s.sfuWake <- struct{}{}:
	default:
	}
}

// SendFromSFU delivers a message from the SFU (From protocol.ServerPeer) to user to: an
// Offer, Answer or Candidate for the user's group session, or an Error. It is dropped when
// the user has left that session. Safe for concurrent use.
func (s *Server) SendFromSFU(to string, m protocol.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliverLocked(s.core.FromServerPeer(to, m), nil)
}

// ServeHTTP routes /ws and /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Handle mounts another handler on the server's mux (the web client, metrics).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Stats is a snapshot of the server's state, as /healthz reports it.
type Stats struct {
	Connections int `json:"connections"`
	Sessions    int `json:"sessions"`
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Connections: s.core.Users(), Sessions: s.core.Sessions()}
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
		Stats
	}{"ok", s.Stats()})
}

// Close tells every client the server is going away (an error of code shutting_down, then
// a close frame with status 1001) and waits for their connections to end. When ctx ends
// first, the connections still open are cut.
func (s *Server) Close(ctx context.Context) error {
	bye, _ := protocol.Encode(protocol.Error{Code: protocol.CodeShuttingDown,
		Message: "the server is shutting down; reconnect in a moment"})
	s.mu.Lock()
	s.closing = true
	open := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		s.queueLocked(c, bye)
		c.close(websocket.StatusGoingAway, "server shutting down")
		open = append(open, c)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range open {
			c.ws.CloseNow()
		}
		<-done
		err = fmt.Errorf("close signaling server: %d connections cut: %w", len(open), ctx.Err())
	}
	// Every connection has ended, so the SFU has been told of every leave; the pump ends
	// once it has handed them over.
	if s.sfuDone != nil {
		s.mu.Lock()
		s.sfuStop = true
		s.mu.Unlock()
		s.wakeSFU()
		<-s.sfuDone
	}
	return err
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		// Accept has answered (403 for a foreign Origin) and says why.
		s.log.Info("websocket upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	ws.SetReadLimit(discardLimit)
	c := &conn{ws: ws, send: make(chan []byte, s.cfg.SendQueue), stop: make(chan struct{}),
		limit: rate.NewLimiter(rate.Limit(s.cfg.MessageRate), s.cfg.MessageBurst)}
	ip := clientIP(r)

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		refuse(ws, protocol.CodeShuttingDown, "the server is shutting down", websocket.StatusGoingAway)
		return
	}
	if s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		s.mu.Unlock()
		s.log.Info("too many connections", "remote", r.RemoteAddr, "limit", s.cfg.MaxConnsPerIP)
		refuse(ws, protocol.CodeTooManyConnections,
			fmt.Sprintf("%s already has %d connections open, the most allowed", ip, s.cfg.MaxConnsPerIP),
			websocket.StatusPolicyViolation)
		return
	}
	s.perIP[ip]++
	s.wg.Add(1)
	id, out := s.core.Connect()
	if s.cfg.ICEServers != nil {
		w := out[0].Msg.(protocol.Welcome) // Connect's one message is the Welcome
		w.ICEServers = s.cfg.ICEServers(id)
		out[0].Msg = w
	}
	c.id = id
	s.conns[id] = c
	s.deliverLocked(out, nil)
	s.mu.Unlock()
	defer s.wg.Done()

	log := s.log.With("user", id, "remote", r.RemoteAddr)
	log.Debug("connected")

	writerDone := make(chan struct{})
	go func() { defer close(writerDone); s.writeLoop(c) }()
	err = s.readLoop(c, log)

	s.mu.Lock()
	delete(s.conns, id)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.deliverLocked(s.core.Disconnect(id), nil)
	s.mu.Unlock()

	// The client is forgotten (its peer told, its IP's count lowered) before it is told
	// it is closed, so it can reconnect at once.
	var ce *closeError
	if errors.As(err, &ce) {
		c.close(ce.code, ce.why)
	} else {
		c.close(websocket.StatusNormalClosure, "")
	}
	<-writerDone
	log.Debug("disconnected", "reason", err)
}

// closeError ends a connection with a WebSocket close status and reason.
type closeError struct {
	code websocket.StatusCode
	why  string
}

func (e *closeError) Error() string { return e.why }

// refuse tells a client why it cannot stay, in an error message (which a browser can read,
// unlike an HTTP status on a WebSocket upgrade) and in the close frame.
func refuse(ws *websocket.Conn, code, msg string, status websocket.StatusCode) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if b, err := protocol.Encode(protocol.Error{Code: code, Message: msg}); err == nil {
		_ = ws.Write(ctx, websocket.MessageText, b)
	}
	ws.Close(status, code)
}

// clientIP is the address the connection comes from. Behind a reverse proxy every client
// shares the proxy's address; raise MaxConnsPerIP there.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// readLoop reads messages until the connection ends; it returns why.
func (s *Server) readLoop(c *conn, log *slog.Logger) error {
	buf := make([]byte, 0, 512)
	for {
		// A read that outlives the idle timeout closes the connection (coder/websocket
		// closes it when the context ends), which is how dead peers are dropped.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.IdleTimeout)
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			cancel()
			return err
		}
		buf = buf[:0]
		var tooLarge bool
		buf, tooLarge, err = readLimited(r, buf, protocol.MaxMessageSize)
		cancel()
		if err != nil {
			return err
		}
		if !c.limit.Allow() {
			c.dropped++
			if c.dropped >= floodLimit {
				log.Info("message flood; closing", "dropped", c.dropped)
				return &closeError{websocket.StatusPolicyViolation, "message flood"}
			}
			if c.dropped == 1 { // one error per run of dropped messages, not one per message
				s.errorTo(c, protocol.Error{Code: protocol.CodeRateLimited, Message: fmt.Sprintf(
					"more than %g messages per second; messages are being dropped", s.cfg.MessageRate)})
			}
			continue
		}
		c.dropped = 0
		if typ != websocket.MessageText {
			s.errorTo(c, protocol.Error{Code: protocol.CodeBadMessage,
				Message: "binary WebSocket messages are not accepted; send JSON text"})
			continue
		}
		if tooLarge {
			s.errorTo(c, protocol.Error{Code: protocol.CodeTooLarge,
				Message: fmt.Sprintf("message is over the %d-byte limit and was ignored", protocol.MaxMessageSize)})
			continue
		}
		m, err := protocol.Decode(buf)
		if err != nil {
			var de *protocol.DecodeError
			errors.As(err, &de)
			log.Info("bad message", "err", err)
			s.errorTo(c, protocol.Error{Code: de.Code, Ref: de.Type, Message: err.Error()})
			continue
		}
		if j, ok := m.(protocol.JoinSession); ok && (j.Token != "" || s.cfg.RequireToken) {
			s.joinWithToken(c, j, log)
			continue
		}
		s.mu.Lock()
		s.deliverLocked(s.core.Handle(c.id, m), c)
		s.mu.Unlock()
	}
}

// joinWithToken verifies a join's token outside the lock, then lets the core admit it.
func (s *Server) joinWithToken(c *conn, j protocol.JoinSession, log *slog.Logger) {
	var err error
	switch {
	case j.Token == "":
		err = errors.New("this server admits only joins with a token")
	case len(s.cfg.TokenSecret) == 0:
		err = errors.New("this server has no token secret, so it cannot check tokens")
	default:
		err = jointoken.Verify(s.cfg.TokenSecret, j.Token, j.SessionID, s.cfg.Now())
	}
	if err != nil {
		log.Info("join refused", "session", j.SessionID, "err", err)
		s.mu.Lock()
		s.deliverLocked([]session.Out{{To: c.id, Msg: protocol.JoinError{SessionID: j.SessionID,
			Code: protocol.JoinBadToken, Message: err.Error()}}}, c)
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.deliverLocked(s.core.JoinWithToken(c.id, j.SessionID, j.Name), c)
	s.mu.Unlock()
}

// readLimited reads r into buf up to limit bytes; past that it discards the rest and
// reports tooLarge.
func readLimited(r io.Reader, buf []byte, limit int) ([]byte, bool, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				_, err := io.Copy(io.Discard, r)
				return buf[:0], true, err
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if len(buf) > limit {
				return buf[:0], true, nil
			}
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

func (s *Server) errorTo(c *conn, e protocol.Error) {
	b, err := protocol.Encode(e)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.queueLocked(c, b)
	s.mu.Unlock()
}

// deliverLocked encodes and queues out, the result of a message from sender (nil for the
// server's own events). Each message is encoded once even when it goes to several users.
// A relayed message that the server's "from" stamp pushes over MaxMessageSize is not
// relayed: its sender gets too_large, so no peer ever receives more than the limit.
func (s *Server) deliverLocked(out []session.Out, sender *conn) {
	var last protocol.Message
	var lastBytes []byte
	for _, o := range out {
		if o.To == protocol.ServerPeer {
			if s.sfuWake != nil && !s.sfuStop {
				s.sfuQ = append(s.sfuQ, o.Msg)
				s.wakeSFU()
			}
			continue
		}
		c := s.conns[o.To]
		if c == nil {
			continue
		}
		if last == nil || !sameMessage(last, o.Msg) {
			b, err := protocol.Encode(o.Msg)
			if err != nil {
				s.log.Error("encode", "type", o.Msg.Type(), "err", err)
				continue
			}
			last, lastBytes = o.Msg, b
		}
		if len(lastBytes) > protocol.MaxMessageSize && sender != nil && c != sender {
			b, _ := protocol.Encode(protocol.Error{Code: protocol.CodeTooLarge, Ref: o.Msg.Type(),
				Message: fmt.Sprintf("%s is %d bytes once relayed, over the %d-byte limit; not relayed",
					o.Msg.Type(), len(lastBytes), protocol.MaxMessageSize)})
			s.queueLocked(sender, b)
			continue
		}
		s.queueLocked(c, lastBytes)
	}
}

// sameMessage reports whether a and b are the same relayed message value, so a broadcast
// is encoded once. Only cheap comparable cases are recognised.
func sameMessage(a, b protocol.Message) bool {
	switch a := a.(type) {
	case protocol.PeerJoined, protocol.PeerLeft, protocol.Offer, protocol.Answer:
		return a == b
	}
	return false
}

func (s *Server) queueLocked(c *conn, b []byte) {
	select {
	case c.send <- b:
	default:
		c.close(websocket.StatusTryAgainLater, "too slow: outgoing queue is full")
	}
}

// flush writes what is still queued for c, so that a closing client learns why.
func (s *Server) flush(c *conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		select {
		case b := <-c.send:
			if c.ws.Write(ctx, websocket.MessageText, b) != nil {
				return
			}
		default:
			return
		}
	}
}

func (s *Server) writeLoop(c *conn) {
	ping, err := protocol.Encode(protocol.Ping{})
	if err != nil {
		panic(err)
	}
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		var b []byte
		select {
		case b = <-c.send:
		case <-t.C:
			b = ping
		case <-c.stop:
			s.flush(c)
			c.ws.Close(c.reason, c.why)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.ws.Write(ctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			c.close(websocket.StatusGoingAway, "write failed")
			c.ws.CloseNow()
			return
		}
	}
}
