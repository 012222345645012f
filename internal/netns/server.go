package netns

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sfu"
	"github.com/parley-rtc/parley/signaling"
)

// Server is a signaling server with an SFU, run in the test's process so that the test
// reads the SFU's counters.
type Server struct {
	SFU *sfu.SFU
	URL string // http://host:port
	// Log writes to the log shown when the test fails: for the test's peers too.
	Log  *slog.Logger
	t    testing.TB
	name string
	logs SyncBuffer
	sig  *signaling.Server
	srv  *http.Server
}

// StartServer starts a Server listening on host (a link's address in the host
// namespace), on a port the system picks. Warnings and errors are logged to the test if it
// fails. Close stops it.
func StartServer(t testing.TB, name, host string) *Server {
	t.Helper()
	s := &Server{t: t, name: name}
	log := slog.New(slog.NewTextHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s.Log = log
	media, err := sfu.New(sfu.Config{Logger: log, Send: func(to string, m protocol.Message) { s.sig.SendFromSFU(to, m) }})
	if err != nil {
		t.Fatal(err)
	}
	s.SFU = media
	s.sig = signaling.New(signaling.Config{SFU: media, Logger: log})
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		media.Close()
		t.Fatal(err)
	}
	s.srv = &http.Server{Handler: s.sig, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	s.URL = "http://" + ln.Addr().String()
	return s
}

// Close stops the server: signaling, then the SFU.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.sig.Close(ctx); err != nil {
		s.t.Errorf("%s: close signaling: %v", s.name, err)
	}
	s.srv.Close()
	s.SFU.Close()
	if s.t.Failed() {
		s.t.Logf("%s: server log:\n%s", s.name, s.logs.String())
	}
}
