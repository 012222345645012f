package rtcapi

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// lockedBuffer is a bytes.Buffer that Pion's goroutines may write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogger: with Options.Logger, a peer connection's Pion logs reach the slog logger
// with their scope, debug and trace lines each at their level, and a logger at error
// level gets none of a call that goes well.
func TestLogger(t *testing.T) {
	var verbose lockedBuffer
	quiet := &countHandler{level: slog.LevelError}
	apiA, err := New(Options{LoopbackOnly: true, Logger: slog.New(slog.NewTextHandler(&verbose, &slog.HandlerOptions{Level: LevelTrace}))})
	if err != nil {
		t.Fatal(err)
	}
	apiB, err := New(Options{LoopbackOnly: true, Logger: slog.New(quiet)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := apiA.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := apiB.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	opened := make(chan struct{})
	dc, err := a.CreateDataChannel("log", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { close(opened) })
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(b)
	if err := b.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := a.SetRemoteDescription(*b.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("data channel not open within 10 s")
	}

	logs := verbose.String()
	seen := map[string]bool{} // level and scope
	for _, line := range strings.Split(logs, "\n") {
		level, scope := field(line, "level"), field(line, "pion")
		seen[level+" "+scope], seen[level], seen[scope] = true, true, true
	}
	for _, want := range []string{"DEBUG ice", "DEBUG-4", "dtls", "pc"} {
		if !seen[want] {
			t.Errorf("no line of level and scope %q in A's logs:\n%s", want, logs)
		}
	}
	if n := quiet.handled.Load(); n != 0 {
		t.Errorf("B's logger at error level got %d lines of a call that went well", n)
	}
	if n := quiet.asked.Load(); n == 0 {
		t.Error("B's logger was never asked: Pion's logs do not reach it")
	}
}

// field is the value of key in a line of slog's text handler, "" if none.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// countHandler counts what it is asked and what it handles, at or above level.
type countHandler struct {
	level          slog.Level
	asked, handled atomic.Int64
}

func (h *countHandler) Enabled(_ context.Context, l slog.Level) bool {
	h.asked.Add(1)
	return l >= h.level
}
func (h *countHandler) Handle(context.Context, slog.Record) error { h.handled.Add(1); return nil }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countHandler) WithGroup(string) slog.Handler             { return h }
