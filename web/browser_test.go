package web_test

// End-to-end tests of the browser client in a real Chromium, driven by chromedp: two tabs
// calling each other, a tab and a native peer both ways, a tab without camera permission,
// sessions that cannot be joined, and a restart of the server.
//
// Chromium's fake camera and microphone (--use-fake-device-for-media-stream) send a test
// pattern and a beep. Without Chromium the tests fail, unless PARLEY_SKIP_BROWSER=1.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-rtc/parley/certs"
	"github.com/parley-rtc/parley/jointoken"
	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sfu"
	"github.com/parley-rtc/parley/sigclient"
	"github.com/parley-rtc/parley/signaling"
	"github.com/parley-rtc/parley/web"
)

// server is a signaling server with the web client mounted, as `parley serve` runs it.
type server struct {
	URL string
	sig *signaling.Server
	srv *httptest.Server
	sfu *sfu.SFU // in group tests
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer serves the freshly built client on 127.0.0.1, on addr if given ("" picks a
// free port).
func startServer(t *testing.T, addr string) *server {
	t.Helper()
	return startServerWith(t, addr, signaling.Config{})
}

func startServerWith(t *testing.T, addr string, cfg signaling.Config) *server {
	t.Helper()
	return startServerTLS(t, addr, cfg, nil)
}

// startServerTLS serves HTTPS with tlsConf, or plain HTTP when it is nil.
func startServerTLS(t *testing.T, addr string, cfg signaling.Config, tlsConf *tls.Config) *server {
	t.Helper()
	dir, _ := builtClient(t)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// A port just freed by a stopped server can take a moment to be free again.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cfg.Logger = quietLogger()
	sig := signaling.New(cfg)
	sig.Handle("/", web.Handler(os.DirFS(dir)))
	srv := httptest.NewUnstartedServer(sig)
	srv.Listener = ln
	if tlsConf != nil {
		srv.TLS = tlsConf
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s := &server{URL: srv.URL, sig: sig, srv: srv}
	t.Cleanup(s.stop)
	return s
}

// stop closes the server and every client connection; it may be called more than once.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.sig.Close(ctx)
	s.srv.Close()
}

// chromiumPath finds Chromium, or fails the test (skips it with PARLEY_SKIP_BROWSER=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("PARLEY_SKIP_BROWSER") == "1" {
		t.Skip("PARLEY_SKIP_BROWSER=1: browser tests skipped")
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is needed for the browser tests and was not found: install it " +
		"(Debian: apt-get install chromium; `make deps` does it), or set PARLEY_SKIP_BROWSER=1 to skip them")
	return ""
}

type browserOpts struct {
	denyMedia   bool // camera and microphone permission refused
	insecureTLS bool // accept the server's self-signed certificate
}

// newBrowser starts a headless Chromium with fake media devices; it ends with the test.
func newBrowser(t *testing.T, o browserOpts) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-component-update", true),
		// Host candidates as plain addresses, not mDNS names a native peer cannot resolve.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	)
	if o.insecureTLS {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors", true))
	}
	if o.denyMedia {
		// What denies in Chromium 156: no fake UI, and prompts answered "no". (With the
		// fake UI flag, Browser.setPermission "denied" is overridden and access granted.)
		opts = append(opts, chromedp.Flag("deny-permission-prompts", true))
	} else {
		opts = append(opts, chromedp.Flag("use-fake-ui-for-media-stream", true))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for Chromium to exit
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tab is one browser tab with the page's console kept for the test's log on failure.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []string
}

func newTab(t *testing.T, browserCtx context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	tb := &tab{t: t, name: name, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m.String())
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			tb.mu.Lock()
			defer tb.mu.Unlock()
			t.Logf("tab %s: %s\nconsole:\n  %s", name, tb.describe(), strings.Join(tb.console, "\n  "))
		}
	})
	return tb
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("tab %s: %v (page: %s)", tb.name, err, tb.describe())
	}
}

// eval evaluates a JavaScript expression, awaiting it if it is a promise.
func eval[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// pageState is what the page shows, for assertions and for failure messages.
type pageState struct {
	State       string `json:"state"`
	SessionID   string `json:"sessionId"`
	Chat        string `json:"chat"`
	Status      string `json:"status"`
	MediaStatus string `json:"mediaStatus"`
	ConnState   string `json:"connState"`
	ChatLog     string `json:"chatLog"`
	// Group is whether the call goes through the SFU; Participants the remote participants
	// with a live video tile; Tiles how many remote tiles the grid shows.
	Group        bool     `json:"group"`
	Participants []string `json:"participants"`
	Tiles        int      `json:"tiles"`
}

const pageStateJS = `(() => {
	const text = id => (document.getElementById(id) || {}).textContent || "";
	const p = window.parley || {};
	return {state: p.state || "", sessionId: p.sessionId || "", chat: p.chat || "",
		status: text("status"), mediaStatus: text("media-status"), connState: text("conn-state"),
		chatLog: text("chat-log"), group: !!p.group, participants: p.participants || [],
		tiles: document.querySelectorAll("#grid .tile.peer").length};
})()`

func (tb *tab) state() pageState {
	s, err := eval[pageState](tb, pageStateJS)
	if err != nil {
		return pageState{Status: "(page state unreadable: " + err.Error() + ")"}
	}
	return s
}

func (tb *tab) describe() string {
	b, _ := json.Marshal(tb.state())
	return string(b)
}

// stats is what the tab's peer connection has received and sent, from getStats().
type stats struct {
	FramesDecoded int    `json:"framesDecoded"` // inbound video
	AudioPackets  int    `json:"audioPackets"`  // inbound audio
	AudioSamples  int    `json:"audioSamples"`  // inbound audio, played out
	FramesSent    int    `json:"framesSent"`    // outbound video
	OutboundAudio int    `json:"outboundAudio"` // outbound audio packets
	DecoderCodec  string `json:"videoCodec"`    // of the inbound video
}

const statsJS = `(async () => {
	const r = {framesDecoded: 0, audioPackets: 0, audioSamples: 0, framesSent: 0, outboundAudio: 0, videoCodec: ""};
	const pc = window.parley && window.parley.pc;
	if (!pc) return r;
	const report = await pc.getStats();
	report.forEach(s => {
		if (s.type === "inbound-rtp" && s.kind === "video") {
			r.framesDecoded += s.framesDecoded || 0;
			const c = s.codecId && report.get(s.codecId);
			if (c) r.videoCodec = c.mimeType;
		}
		if (s.type === "inbound-rtp" && s.kind === "audio") {
			r.audioPackets += s.packetsReceived || 0;
			r.audioSamples += s.totalSamplesReceived || 0;
		}
		if (s.type === "outbound-rtp" && s.kind === "video") r.framesSent += s.framesSent || 0;
		if (s.type === "outbound-rtp" && s.kind === "audio") r.outboundAudio += s.packetsSent || 0;
	});
	return r;
})()`

func (tb *tab) stats() (stats, error) { return eval[stats](tb, statsJS) }

// waitFor polls cond until it holds or timeout passes; then the test fails with what cond
// last reported and the page's state.
func (tb *tab) waitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			tb.t.Fatalf("tab %s: %s: not within %s (last: %s; page: %s)", tb.name, what, timeout, last, tb.describe())
		}
		select {
		case <-tb.ctx.Done():
			tb.t.Fatalf("tab %s: %s: %v", tb.name, what, tb.ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitState waits until the page's state passes check.
func (tb *tab) waitState(what string, timeout time.Duration, check func(pageState) bool) pageState {
	tb.t.Helper()
	var s pageState
	tb.waitFor(what, timeout, func() (bool, string) {
		s = tb.state()
		b, _ := json.Marshal(s)
		return check(s), string(b)
	})
	return s
}

// waitMedia waits until the tab has decoded frames video frames and received audio, and
// has sent sentFrames video frames.
func (tb *tab) waitMedia(frames, sentFrames int) stats {
	tb.t.Helper()
	var st stats
	tb.waitFor(fmt.Sprintf("decode %d frames, receive audio, send %d frames", frames, sentFrames), 60*time.Second,
		func() (bool, string) {
			var err error
			st, err = tb.stats()
			if err != nil {
				return false, err.Error()
			}
			return st.FramesDecoded >= frames && (st.AudioPackets > 0 || st.AudioSamples > 0) &&
				st.FramesSent >= sentFrames, fmt.Sprintf("%+v", st)
		})
	tb.t.Logf("tab %s: %+v", tb.name, st)
	return st
}

// open loads a page of the client and waits until the client runs.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url))
	tb.waitState("client started", 30*time.Second, func(s pageState) bool { return s.State != "" })
}

// newCall clicks New call and returns the session ID the page shows.
func (tb *tab) newCall() string {
	tb.t.Helper()
	tb.do(chromedp.WaitEnabled(chromedp.ID("new-session")), chromedp.Click(chromedp.ID("new-session")))
	tb.waitState("session ready", 30*time.Second, func(s pageState) bool { return s.State == "waiting" })
	id, err := eval[string](tb, `document.getElementById("session-id").textContent`)
	if err != nil || id == "" {
		tb.t.Fatalf("tab %s: no session ID shown (%v)", tb.name, err)
	}
	return id
}

func (tb *tab) chat(text string) {
	tb.t.Helper()
	tb.waitState("chat ready", 20*time.Second, func(s pageState) bool { return s.Chat == "ready" })
	tb.do(chromedp.SendKeys(chromedp.ID("chat-input"), text), chromedp.Click(chromedp.ID("chat-send")))
}

func (tb *tab) screenshot(path string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("tab %s: screenshot: %v", tb.name, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot of tab %s: %s", tb.name, path)
	// PARLEY_SCREENSHOT_DIR keeps a copy, to look at.
	if dir := os.Getenv("PARLEY_SCREENSHOT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), png, 0o644); err != nil {
			tb.t.Error(err)
		}
	}
}

func TestTwoTabs(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startServer(t, "")
	alice, bob := newTab(t, b, "alice"), newTab(t, b, "bob")

	alice.open(srv.URL + "/")
	id := alice.newCall()
	link, err := eval[string](alice, `document.getElementById("share-link").value`)
	if err != nil || link != srv.URL+"/s/"+id {
		t.Errorf("share link %q (%v), want %s/s/%s", link, err, srv.URL, id)
	}

	bob.open(link)
	for _, tb := range []*tab{alice, bob} {
		tb.waitState("connected", 30*time.Second, func(s pageState) bool { return s.State == "connected" })
	}
	for _, tb := range []*tab{alice, bob} {
		tb.waitMedia(30, 30)
	}

	alice.chat("hello from alice")
	bob.waitState("alice's chat message", 10*time.Second, func(s pageState) bool {
		return strings.Contains(s.ChatLog, "hello from alice")
	})
	bob.chat("hi alice, bob here")
	alice.waitState("bob's chat message", 10*time.Second, func(s pageState) bool {
		return strings.Contains(s.ChatLog, "hi alice, bob here")
	})

	// The page during a call, for the README, on a laptop-sized screen.
	alice.do(chromedp.EmulateViewport(1280, 800))
	shot := filepath.Join(t.TempDir(), "screenshot.png")
	alice.screenshot(shot)
	if os.Getenv("PARLEY_UPDATE_SCREENSHOT") == "1" {
		png, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(filepath.Join("..", "docs", "screenshot.png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("update docs/screenshot.png: %v", err)
		}
	}

	// On a phone-sized screen nothing overflows sideways.
	bob.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(3)))
	bob.waitFor("no horizontal overflow at 390x844", 5*time.Second, func() (bool, string) {
		w, err := eval[[]int](bob, `[document.documentElement.scrollWidth, window.innerWidth]`)
		if err != nil || len(w) != 2 {
			return false, fmt.Sprint(err)
		}
		return w[0] <= w[1], fmt.Sprintf("scrollWidth %d, innerWidth %d", w[0], w[1])
	})
	bob.screenshot(filepath.Join(t.TempDir(), "phone.png"))

	alice.do(chromedp.Click(chromedp.ID("hang-up")))
	alice.waitState("ended", 10*time.Second, func(s pageState) bool { return s.State == "ended" })
	bob.waitState(`"peer left" shown`, 15*time.Second, func(s pageState) bool {
		return strings.Contains(strings.ToLower(s.Status), "peer left")
	})
}

// TestHTTPS: two tabs complete a call over https:// with the self-signed certificate that
// `parley serve --tls auto` makes (certs.Auto), accepted with --ignore-certificate-errors.
func TestHTTPS(t *testing.T) {
	b := newBrowser(t, browserOpts{insecureTLS: true})
	tlsConf, cert, err := certs.TLSConfig(certs.Config{Mode: certs.Auto, DataDir: t.TempDir()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerTLS(t, "", signaling.Config{}, tlsConf)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("server URL %s is not https", srv.URL)
	}
	t.Logf("certificate fingerprint %s", certs.Fingerprint(*cert))
	alice, bob := newTab(t, b, "alice"), newTab(t, b, "bob")
	alice.open(srv.URL + "/")
	if secure, err := eval[bool](alice, `window.isSecureContext && location.protocol === "https:"`); err != nil || !secure {
		t.Fatalf("page is not a secure https context (%v)", err)
	}
	id := alice.newCall()
	bob.open(srv.URL + "/s/" + id)
	for _, tb := range []*tab{alice, bob} {
		tb.waitState("connected", 30*time.Second, func(s pageState) bool { return s.State == "connected" })
	}
	for _, tb := range []*tab{alice, bob} {
		tb.waitMedia(30, 30)
	}
}

// mediaDir is ../shared/media beside the project root, or $PARLEY_MEDIA.
func mediaDir() string {
	if d := os.Getenv("PARLEY_MEDIA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "media")
}

func nativeConfig(t *testing.T, server string) peer.Config {
	t.Helper()
	video, err := media.Load(filepath.Join(mediaDir(), "chrome-vp8.ivf"))
	if err != nil {
		t.Fatalf("sample media: %v", err)
	}
	audio, err := media.Load(filepath.Join(mediaDir(), "chrome-opus.ogg"))
	if err != nil {
		t.Fatalf("sample media: %v", err)
	}
	return peer.Config{Server: server, Video: video.Video, Audio: audio.Audio, LoopbackOnly: true,
		ConnectTimeout: 30 * time.Second, Logger: quietLogger()}
}

type nativeResult struct {
	rep peer.Report
	err error
}

// runNative runs a native call in the background until the tab hangs up.
func runNative(t *testing.T, cfg peer.Config) <-chan nativeResult {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	done := make(chan nativeResult, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		rep, err := peer.Run(ctx, cfg)
		done <- nativeResult{rep, err}
	}()
	// A call the test did not wait for (it failed first) ends with the test.
	t.Cleanup(func() {
		cancel()
		<-ended
	})
	return done
}

// startNativeHost runs a native peer that creates a session, and returns the session's ID.
func startNativeHost(t *testing.T, cfg peer.Config) (string, <-chan nativeResult) {
	t.Helper()
	cfg.Create = true
	ids := make(chan string, 1)
	cfg.OnSession = func(id string) { ids <- id }
	done := runNative(t, cfg)
	select {
	case id := <-ids:
		return id, done
	case r := <-done:
		t.Fatalf("native host ended before its session was ready: %v", r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("native host's session not ready within 20 s")
	}
	return "", nil
}

// checkNativeReport checks what a native peer received from a browser (who) in a call
// the browser hung up.
func checkNativeReport(t *testing.T, rep peer.Report, who string) {
	t.Helper()
	if rep.End != "peer_left" {
		t.Errorf("native call ended with %q, want peer_left", rep.End)
	}
	if rep.VideoFramesReceived < 30 {
		t.Errorf("native peer received %d video frames from %s, want >= 30", rep.VideoFramesReceived, who)
	}
	if rep.AudioPacketsReceived == 0 {
		t.Errorf("native peer received no audio from %s", who)
	}
}

func waitNative(t *testing.T, done <-chan nativeResult) peer.Report {
	t.Helper()
	select {
	case r := <-done:
		t.Logf("native peer: %+v", r.rep)
		if r.err != nil {
			t.Fatalf("native peer: %v", r.err)
		}
		return r.rep
	case <-time.After(30 * time.Second):
		t.Fatal("the native peer did not end within 30 s of the tab hanging up")
	}
	return peer.Report{}
}

// TestNativePeer calls a native peer (peer.Run, as `parley call` does) from a tab and
// the other way round, with media both ways.
func TestNativePeer(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startServer(t, "")

	check := func(t *testing.T, tb *tab, done <-chan nativeResult) {
		st := tb.waitMedia(30, 60)
		if !strings.EqualFold(st.DecoderCodec, "video/VP8") {
			t.Errorf("tab decodes %q from the native peer, want video/VP8", st.DecoderCodec)
		}
		// The native peer has no chat channel, and the page says so.
		tb.waitState("chat unavailable", 15*time.Second, func(s pageState) bool { return s.Chat == "unavailable" })
		tb.do(chromedp.Click(chromedp.ID("hang-up")))
		checkNativeReport(t, waitNative(t, done), "the tab")
	}

	t.Run("tab hosts", func(t *testing.T) {
		tb := newTab(t, b, "host")
		tb.open(srv.URL + "/")
		cfg := nativeConfig(t, srv.URL)
		cfg.Join = tb.newCall()
		check(t, tb, runNative(t, cfg))
	})

	t.Run("native hosts", func(t *testing.T) {
		id, done := startNativeHost(t, nativeConfig(t, srv.URL))
		tb := newTab(t, b, "guest")
		tb.open(srv.URL + "/s/" + id)
		check(t, tb, done)
	})
}

// TestNoCameraPermission joins a call from a tab that may use neither camera nor
// microphone: the page says so, and the call connects receive-only.
func TestNoCameraPermission(t *testing.T) {
	b := newBrowser(t, browserOpts{denyMedia: true})
	srv := startServer(t, "")
	tb := newTab(t, b, "denied")
	tb.open(srv.URL + "/")
	s := tb.waitState("camera message", 20*time.Second, func(s pageState) bool { return s.MediaStatus != "" })
	if !strings.Contains(strings.ToLower(s.MediaStatus), "camera") {
		t.Errorf("media message %q does not mention the camera", s.MediaStatus)
	}
	t.Logf("the page says: %s", s.MediaStatus)

	// The tab offers receive-only transceivers; the native peer sends into them.
	cfg := nativeConfig(t, srv.URL)
	cfg.Join = tb.newCall()
	done := runNative(t, cfg)
	st := tb.waitMedia(30, 0)
	if st.FramesSent != 0 || st.OutboundAudio != 0 {
		t.Errorf("a tab without camera and microphone sent %d video frames and %d audio packets", st.FramesSent, st.OutboundAudio)
	}
	tb.do(chromedp.Click(chromedp.ID("hang-up")))
	rep := waitNative(t, done)
	if rep.VideoFramesReceived != 0 || rep.AudioPacketsReceived != 0 {
		t.Errorf("native peer received %d frames and %d audio packets from a receive-only tab",
			rep.VideoFramesReceived, rep.AudioPacketsReceived)
	}
}

// TestJoinErrors opens links to sessions that cannot be joined: the page says why.
func TestJoinErrors(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startServer(t, "")
	tb := newTab(t, b, "lost")
	statusHas := func(what string, parts ...string) {
		t.Helper()
		tb.waitState(what, 20*time.Second, func(s pageState) bool {
			for _, p := range parts {
				if !strings.Contains(strings.ToLower(s.Status), p) {
					return false
				}
			}
			return s.State == "idle"
		})
	}
	tb.open(srv.URL + "/s/does-not-exist")
	statusHas("not-found message", "not found")

	// The join box says the same.
	join := func(id string) {
		t.Helper()
		tb.do(chromedp.SetValue(chromedp.ID("join-id"), id), chromedp.Click(chromedp.ID("join-session")))
	}
	join("also-missing")
	statusHas("not-found message for the typed ID", "also-missing", "not found")

	// A session with its two people, held by plain signaling connections.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host, guest := dial(ctx, t, srv.URL), dial(ctx, t, srv.URL)
	send(ctx, t, host, protocol.CreateSession{})
	id := expect[protocol.SessionReady](ctx, t, host).SessionID
	send(ctx, t, guest, protocol.JoinSession{SessionID: id})
	expect[protocol.Joined](ctx, t, guest)
	tb.open(srv.URL + "/s/" + id)
	statusHas("session-full message", "full")

	// Both leave, and the session ends; the server answers the ping after the leave.
	send(ctx, t, host, protocol.LeaveSession{SessionID: id})
	expect[protocol.PeerLeft](ctx, t, guest)
	send(ctx, t, guest, protocol.LeaveSession{SessionID: id})
	send(ctx, t, guest, protocol.Ping{})
	expect[protocol.Pong](ctx, t, guest)
	join(id)
	statusHas("session-ended message", "ended")
}

func dial(ctx context.Context, t *testing.T, server string) *sigclient.Conn {
	t.Helper()
	c, err := sigclient.Dial(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func send(ctx context.Context, t *testing.T, c *sigclient.Conn, m protocol.Message) {
	t.Helper()
	if err := c.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// expect reads messages until one of type M.
func expect[M protocol.Message](ctx context.Context, t *testing.T, c *sigclient.Conn) M {
	t.Helper()
	for {
		m, err := c.Read(ctx)
		if err != nil {
			var zero M
			t.Fatalf("waiting for %s: %v", zero.Type(), err)
		}
		if v, ok := m.(M); ok {
			return v
		}
	}
}

// TestProtectedSession joins a session that has a password: the page asks for it, and a
// link with a join token admits without it.
func TestProtectedSession(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv := startServerWith(t, "", signaling.Config{TokenSecret: secret})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host := dial(ctx, t, srv.URL)
	send(ctx, t, host, protocol.CreateSession{Password: "open sesame"})
	id := expect[protocol.SessionReady](ctx, t, host).SessionID

	tb := newTab(t, b, "guest")
	tb.open(srv.URL + "/s/" + id)
	tb.waitState("password asked for", 20*time.Second, func(s pageState) bool {
		return strings.Contains(s.Status, "password") && s.State == "idle"
	})
	if hidden, err := eval[bool](tb, `document.getElementById("join-password").hidden`); err != nil || hidden {
		t.Fatalf("the password box is not shown (hidden %v, %v)", hidden, err)
	}
	join := func(password string) {
		t.Helper()
		tb.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("join-session")))
	}
	join("wrong")
	tb.waitState("wrong password said", 20*time.Second, func(s pageState) bool {
		return strings.Contains(s.Status, "not the call's password") && s.State == "idle"
	})
	join("open sesame")
	tb.waitState("joined with the password", 20*time.Second, func(s pageState) bool { return s.State == "connecting" })
	expect[protocol.PeerJoined](ctx, t, host)

	// A link carrying a join token (in its fragment) needs no password.
	tok, err := jointoken.Issue(secret, id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tb.do(chromedp.Click(chromedp.ID("hang-up")))
	expect[protocol.PeerLeft](ctx, t, host)
	tb.open(srv.URL + "/s/" + id + "#token=" + tok)
	tb.waitState("joined with the token", 20*time.Second, func(s pageState) bool { return s.State == "connecting" })
	expect[protocol.PeerJoined](ctx, t, host)
}

// TestServerRestart stops the server under a waiting tab: the page says it is
// reconnecting, and once the server is back it hosts a new session, as the old one died
// with the server.
func TestServerRestart(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startServer(t, "")
	tb := newTab(t, b, "host")
	tb.open(srv.URL + "/")
	old := tb.newCall()

	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.stop()
	tb.waitState(`"reconnecting" shown`, 20*time.Second, func(s pageState) bool {
		return strings.Contains(strings.ToLower(s.Status), "reconnecting")
	})
	startServer(t, addr)
	s := tb.waitState("a new session", 30*time.Second, func(s pageState) bool {
		return s.State == "waiting" && s.SessionID != "" && s.SessionID != old
	})
	t.Logf("after the restart: %s", s.Status)
}
