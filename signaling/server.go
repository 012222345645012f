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
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/session"
)

// Config sets up a Server. Its zero value is a working default.
type Config struct {
	// ICEServers are handed to every client in Welcome.
	ICEServers []protocol.ICEServer
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
}

// discardLimit is the size above which a message is not even read to its end: the
// connection is closed with status 1009 (RFC 6455 §7.4.1). Between MaxMessageSize and this,
// the message is skipped and answered with an error.
const discardLimit = 1 << 20

// Server serves signaling over WebSocket. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu      sync.Mutex // guards core and conns; held only while the core runs and queues fill
	core    *session.Core
	conns   map[string]*conn
	closing bool

	wg sync.WaitGroup // one per live connection
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
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		core:  session.New(session.Config{NewID: cfg.NewID, ICEServers: cfg.ICEServers}),
		conns: make(map[string]*conn),
		mux:   http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /ws", s.serveWS)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	return s
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

// Close tells every client the server is going away and waits for their connections to
// end, or for ctx.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, c := range s.conns {
		c.close(websocket.StatusGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close signaling server: %w", ctx.Err())
	}
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Info("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(discardLimit)
	c := &conn{ws: ws, send: make(chan []byte, s.cfg.SendQueue), stop: make(chan struct{})}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.wg.Add(1)
	id, out := s.core.Connect()
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
	s.deliverLocked(s.core.Disconnect(id), nil)
	s.mu.Unlock()

	c.close(websocket.StatusNormalClosure, "")
	<-writerDone
	log.Debug("disconnected", "reason", err)
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
		s.mu.Lock()
		s.deliverLocked(s.core.Handle(c.id, m), c)
		s.mu.Unlock()
	}
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
