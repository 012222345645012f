//go:build linux

package web_test

// End-to-end tests of the browser client in a real Firefox (Debian's firefox-esr), driven
// over WebDriver BiDi (package internal/bidi: chromedp speaks only Chrome's protocol),
// calling a native peer with media both ways.
//
// Firefox makes no WebRTC call over loopback alone: it gathers no loopback ICE candidates
// (media.peerconnection.ice.loopback is off). So Firefox runs in a network namespace of its
// own, joined to the host's by a veth pair, and the signaling server listens on the host's
// end of it, where the native peer, in the host's namespace, reaches the call too:
//
//	Firefox 10.95.N.2 ── 10.95.N.1 host: signaling server, native peer
//
// N is 1 + PID mod 250, so that two test processes do not share addresses. Firefox's
// remote-control port listens on the namespace's loopback; the test connects to it from
// inside (netns.NS.Dial). Firefox's fake camera and microphone (media.navigator.streams.fake)
// send a test pattern and a tone. Without Firefox the tests fail, unless
// PARLEY_SKIP_BROWSER=1; without root they follow netns.Require (PARLEY_SKIP_NETNS=1).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-rtc/parley/internal/bidi"
	"github.com/parley-rtc/parley/internal/netns"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/sfu"
)

// TestFirefox calls a native peer (peer.Run, as `parley call` does) from Firefox and the
// other way round: Firefox decodes the peer's VP8 video and receives its audio, and the
// peer receives Firefox's fake camera and microphone.
func TestFirefox(t *testing.T) {
	ff := startFirefox(t)
	srv := startServer(t, ff.gateway+":0")

	check := func(t *testing.T, done <-chan nativeResult) {
		t.Helper()
		st := ff.waitMedia(t, 30, 60)
		if !strings.EqualFold(st.DecoderCodec, "video/VP8") {
			t.Errorf("Firefox decodes %q from the native peer, want video/VP8", st.DecoderCodec)
		}
		// The native peer has no chat channel, and the page says so.
		ff.waitState(t, "chat unavailable", 15*time.Second, func(s pageState) bool { return s.Chat == "unavailable" })
		ff.click(t, "hang-up")
		checkNativeReport(t, waitNative(t, done), "Firefox")
	}

	t.Run("firefox hosts", func(t *testing.T) {
		ff.open(t, srv.URL+"/")
		cfg := foxNativeConfig(t, srv.URL)
		cfg.Join = ff.newCall(t)
		check(t, runNative(t, cfg))
	})

	t.Run("native hosts", func(t *testing.T) {
		id, done := startNativeHost(t, foxNativeConfig(t, srv.URL))
		ff.open(t, srv.URL+"/s/"+id)
		check(t, done)
	})
}

// TestFirefoxGroup: Firefox hosts a group session through the SFU, which two native peers
// join: it sends its camera as simulcast layers (RFC 8853) and decodes both peers' video,
// and each peer receives Firefox's video and audio. The SFU measures the layers in the order
// of their resolution: Firefox probes its bandwidth by sending its lowest layer's recent
// packets again (RTX), which the SFU once counted, measuring that layer as the costliest.
// Hanging up ends the call, although the SFU's offer about the peers who left may cross
// the hang-up: the page once answered it as a peer-to-peer offer, whose ICE then failed.
func TestFirefoxGroup(t *testing.T) {
	ff := startFirefox(t)
	gsrv := startGroupServerAt(t, ff.gateway+":0", false)
	ff.open(t, gsrv.URL+"/")
	ff.click(t, "new-group")
	s := ff.waitState(t, "group session ready", 30*time.Second, func(s pageState) bool {
		return s.State == "waiting" && s.Group && s.SessionID != ""
	})
	var natives []<-chan nativeResult
	for range 2 {
		cfg := foxNativeConfig(t, gsrv.URL)
		cfg.Join = s.SessionID
		// Long enough for Firefox's checks below, which run while the peers are in.
		cfg.Duration = 20 * time.Second
		natives = append(natives, runNative(t, cfg))
	}
	gs := ff.waitGroup(t, 2)
	// Firefox decodes the natives' videos sent through the SFU's own SRTP write path;
	// checked now, while the natives are in.
	checkSRTPDirect(t, gsrv.sfu, 3)

	// Firefox's camera reaches the SFU on the three simulcast layers the page asks for, and
	// the full-size layer f measures as costlier than the quarter-size q.
	var layers []sfu.LayerStats
	ff.waitFor(t, "Firefox's video on three simulcast layers, 0 < q < f kbit/s", 30*time.Second, func() (bool, string) {
		layers = layers[:0]
		kbps := map[string]int{}
		for _, p := range gsrv.sfu.Stats().Participants {
			if slices.Contains(gs.Participants, p.ID) {
				continue // a native peer's
			}
			for _, l := range p.Layers {
				if l.RID != "" && l.Packets > 0 {
					layers = append(layers, l)
					kbps[l.RID] = l.Kbps
				}
			}
		}
		return len(layers) >= 3 && kbps["q"] > 0 && kbps["q"] < kbps["f"], fmt.Sprintf("layers %+v", layers)
	})
	t.Logf("Firefox's simulcast layers: %+v", layers)

	for i, done := range natives {
		rep := waitNative(t, done)
		if rep.End != "duration" {
			t.Errorf("native peer %d's call ended with %q, want duration", i+1, rep.End)
		}
		var video, audio int64
		for _, tr := range rep.RemoteTracks {
			if !slices.Contains(gs.Participants, tr.Participant) { // Firefox's
				video += tr.VideoFrames
				audio += tr.AudioPackets
			}
		}
		if video < 30 || audio == 0 {
			t.Errorf("native peer %d received %d video frames and %d audio packets from Firefox, want >= 30 and > 0",
				i+1, video, audio)
		}
	}
	// A newcomer's tracks get media sections of their own: the SFU does not reuse those of
	// the members who left for Firefox, which would not decode video in them (Firefox 153
	// ESR counts the packets of a section taken over so, and assembles no frame).
	var foxID string // the one member that is not a native peer
	for _, p := range gsrv.sfu.Stats().Participants {
		if !slices.Contains(gs.Participants, p.ID) {
			foxID = p.ID
		}
	}
	foxSections := func() (n int) {
		for _, p := range gsrv.sfu.Stats().Participants {
			if p.ID == foxID {
				n = p.Sections
			}
		}
		return n
	}
	var old map[string]int
	if err := ff.eval(framesBySSRCJS, &old); err != nil {
		t.Fatal(err)
	}
	before := foxSections()
	cfg := foxNativeConfig(t, gsrv.URL)
	cfg.Join, cfg.Duration = s.SessionID, 10*time.Second
	newcomer := runNative(t, cfg)
	ff.waitFor(t, "Firefox decoding the newcomer's video", 60*time.Second, func() (bool, string) {
		var now map[string]int
		if err := ff.eval(framesBySSRCJS, &now); err != nil {
			return false, err.Error()
		}
		return newStream(old, now, 30), fmt.Sprintf("frames decoded by SSRC %v (before the newcomer: %v)", now, old)
	})
	if after := foxSections(); after != before+2 {
		t.Errorf("Firefox's peer connection has %d media sections with the newcomer in, %d before: want 2 more", after, before)
	}
	waitNative(t, newcomer)
	ff.click(t, "hang-up")
	ff.waitState(t, "ended", 15*time.Second, func(s pageState) bool { return s.State == "ended" })
}

// waitGroup waits until Firefox is connected in a group call, shows a tile for each of
// others remote participants, and decodes at least 20 frames of each of their videos.
func (ff *firefox) waitGroup(t *testing.T, others int) groupState {
	t.Helper()
	var gs groupState
	ff.waitFor(t, fmt.Sprintf("a group call decoding %d remote videos", others), 90*time.Second, func() (bool, string) {
		gs = groupState{}
		if err := ff.eval(groupStateJS, &gs); err != nil {
			return false, err.Error()
		}
		if gs.State == "ended" || gs.State == "idle" {
			t.Fatalf("Firefox: the group call ended: state %s, status %q", gs.State, gs.Status)
		}
		decoding := 0
		for _, f := range gs.Frames {
			if f >= 20 {
				decoding++
			}
		}
		return gs.Group && gs.State == "connected" && len(gs.Participants) == others && gs.Tiles == others &&
				decoding >= others,
			fmt.Sprintf("group %v, state %s, participants %v, tiles %d, frames decoded %v",
				gs.Group, gs.State, gs.Participants, gs.Tiles, gs.Frames)
	})
	t.Logf("Firefox: participants %v, frames decoded %v", gs.Participants, gs.Frames)
	return gs
}

// foxNativeConfig is nativeConfig with every host candidate: Firefox reaches the native
// peer on the host's end of its link, not on loopback.
func foxNativeConfig(t *testing.T, server string) peer.Config {
	cfg := nativeConfig(t, server)
	cfg.LoopbackOnly = false
	return cfg
}

// firefoxPath finds Firefox, or fails the test (skips it with PARLEY_SKIP_BROWSER=1).
func firefoxPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("PARLEY_SKIP_BROWSER") == "1" {
		t.Skip("PARLEY_SKIP_BROWSER=1: browser tests skipped")
	}
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Firefox is needed for the Firefox tests and was not found: install it " +
		"(Debian: apt-get install firefox-esr; `make deps` does it), or set PARLEY_SKIP_BROWSER=1 to skip them")
	return ""
}

// firefox is a headless Firefox in a network namespace, with one tab, driven over
// WebDriver BiDi.
type firefox struct {
	gateway string // the host's end of Firefox's link, where the server listens
	bidi    *bidi.Client
	tab     string // the tab's browsing context ID

	mu      sync.Mutex
	console []string // the page's console messages and errors (log.entryAdded)
}

// bidiPort is where Firefox's remote agent listens, on the namespace's own loopback,
// which nothing else in the namespace uses.
const bidiPort = "9222"

var foxNSName = regexp.MustCompile(`^parleyff-(\d+)$`)

// startFirefox makes Firefox's namespace and starts Firefox in it; both are removed when
// the test ends, Firefox first.
func startFirefox(t *testing.T) *firefox {
	t.Helper()
	path := firefoxPath(t)
	netns.Require(t, "TestFirefox", "to run Firefox in a network namespace (Firefox makes no WebRTC call over loopback)")
	netns.RemoveStale(t, foxNSName)
	pid := os.Getpid()
	subnet := 1 + pid%250
	ns := netns.Add(t, fmt.Sprintf("parleyff-%d", pid))
	ff := &firefox{gateway: fmt.Sprintf("10.95.%d.1", subnet)}
	addr := fmt.Sprintf("10.95.%d.2", subnet)
	hostIf := fmt.Sprintf("pff%d", pid)
	netns.Link(netns.Host(t), hostIf, ff.gateway+"/24", ns, "eth0", addr+"/24")
	// Removing the namespace removes its veth pair later, asynchronously, once nothing
	// holds the namespace; the next run in this process (-count) reuses the names and
	// addresses. Deleting the host's end removes the pair at once, after Firefox is gone.
	t.Cleanup(func() { netns.Host(t).IP("link", "del", hostIf) })
	ns.IP("route", "add", "default", "via", ff.gateway)

	profile := t.TempDir()
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs(ff.gateway)), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir() // Firefox's caches and its ~/.mozilla, out of root's home

	// `ip netns exec` executes Firefox in place: the process is Firefox, the leader of a
	// process group of its own that its content processes join, all ended together. If
	// the test process dies without its cleanup (go test's -timeout), the kernel kills
	// Firefox, and its content processes end when their parent's IPC channel closes.
	cmd := exec.Command("ip", "netns", "exec", ns.Name, path, "--headless", "--no-remote",
		"--profile", profile, "--remote-debugging-port", bidiPort, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(netns.Environ(), "HOME="+home, "MOZ_HEADLESS=1", "DISPLAY=", "WAYLAND_DISPLAY=",
		"MOZ_CRASHREPORTER_DISABLE=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Firefox: %v", err)
	}
	out := &netns.SyncBuffer{}
	listening := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			out.Write([]byte(line + "\n"))
			if url, ok := strings.CutPrefix(line, "WebDriver BiDi listening on "); ok {
				select {
				case listening <- url:
				default:
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-copied // Wait closes the pipe: read it to its end first
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		// Firefox and its content processes; SIGKILL if they are not gone in 10 s.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		var err error
		select {
		case err = <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-exited
		}
		// Content processes still ending on their own are not waited for: they are not
		// the test's children. They go now.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("Firefox exited (%v); its output:\n%s", err, out.String())
		}
	})

	select {
	case url := <-listening:
		t.Logf("Firefox in namespace %s: %s", ns.Name, url)
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("Firefox exited (%v) before its remote agent listened:\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("Firefox's remote agent did not listen within 60 s:\n%s", out.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ff.bidi, err = bidi.Dial(ctx, "ws://127.0.0.1:"+bidiPort+"/session", bidi.Options{
		Dial:    ns.Dial,
		OnEvent: ff.onEvent,
	})
	if err != nil {
		t.Fatalf("connect to Firefox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ff.bidi.EndSession(ctx) // Firefox is killed next, session or not
		ff.bidi.Close()
		if t.Failed() {
			ff.mu.Lock()
			defer ff.mu.Unlock()
			t.Logf("Firefox console:\n  %s", strings.Join(ff.console, "\n  "))
		}
	})
	if err := ff.bidi.NewSession(ctx); err != nil {
		t.Fatalf("Firefox: %v", err)
	}
	if err := ff.bidi.Subscribe(ctx, "log.entryAdded"); err != nil {
		t.Fatalf("Firefox: %v", err)
	}
	if ff.tab, err = ff.bidi.TopContext(ctx); err != nil {
		t.Fatalf("Firefox: %v", err)
	}
	return ff
}

// onEvent keeps the page's console messages (#event-log-entryAdded), the last 500.
func (ff *firefox) onEvent(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e struct {
		Level string `json:"level"`
		Text  string `json:"text"`
	}
	json.Unmarshal(params, &e)
	ff.mu.Lock()
	defer ff.mu.Unlock()
	ff.console = append(ff.console, e.Level+": "+e.Text)
	if len(ff.console) > 500 {
		ff.console = ff.console[1:]
	}
}

// firefoxPrefs is the profile's user.js: fake camera and microphone without a prompt,
// plain host ICE candidates, the server's http:// origin treated as secure (browsers give
// the camera only to secure pages; Chromium's tests have the server on localhost), and
// nothing that phones home: updates, telemetry, remote settings, captive portal checks,
// safe browsing. (The remote agent sets some of these too, with remote.prefs.recommended;
// they are here so that nothing depends on its list.)
func firefoxPrefs(serverHost string) string {
	prefs := []struct {
		name  string
		value any
	}{
		{"media.navigator.streams.fake", true},
		{"media.navigator.permission.disabled", true},
		// The native peer cannot resolve mDNS names (RFC 8445 host candidates as .local).
		{"media.peerconnection.ice.obfuscate_host_addresses", false},
		{"dom.securecontext.allowlist", serverHost},

		{"app.update.disabledForTesting", true},
		{"app.update.auto", false},
		{"extensions.update.enabled", false},
		{"extensions.getAddons.cache.enabled", false},
		{"extensions.blocklist.enabled", false},
		{"media.gmp-manager.updateEnabled", false},
		{"datareporting.policy.dataSubmissionEnabled", false},
		{"datareporting.healthreport.uploadEnabled", false},
		{"toolkit.telemetry.enabled", false},
		{"toolkit.telemetry.unified", false},
		{"toolkit.telemetry.server", ""},
		{"services.settings.server", "data:,#remote-settings-off"},
		{"network.captive-portal-service.enabled", false},
		{"network.connectivity-service.enabled", false},
		{"network.trr.mode", 5}, // no DNS over HTTPS
		{"network.dns.disablePrefetch", true},
		{"network.prefetch-next", false},
		{"browser.safebrowsing.malware.enabled", false},
		{"browser.safebrowsing.phishing.enabled", false},
		{"browser.safebrowsing.downloads.enabled", false},
		{"browser.safebrowsing.blockedURIs.enabled", false},
		{"browser.region.update.enabled", false},
		{"browser.region.network.url", ""},
		{"browser.shell.checkDefaultBrowser", false},
		{"browser.startup.homepage_override.mstone", "ignore"},
		{"browser.startup.page", 0},
		{"browser.aboutwelcome.enabled", false},
		{"browser.newtabpage.enabled", false},
		{"security.OCSP.enabled", 0},
	}
	var b strings.Builder
	for _, p := range prefs {
		v, _ := json.Marshal(p.value)
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", p.name, v)
	}
	return b.String()
}

// eval evaluates a JavaScript expression in the tab, awaiting it if it is a promise, and
// unmarshals its JSON value into out.
func (ff *firefox) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return ff.bidi.Evaluate(ctx, ff.tab, expr, out)
}

func (ff *firefox) state() pageState {
	var s pageState
	if err := ff.eval(pageStateJS, &s); err != nil {
		return pageState{Status: "(page state unreadable: " + err.Error() + ")"}
	}
	return s
}

func (ff *firefox) describe() string {
	b, _ := json.Marshal(ff.state())
	return string(b)
}

// waitFor polls cond until it holds or timeout passes; then the test fails with what cond
// last reported and the page's state.
func (ff *firefox) waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Firefox: %s: not within %s (last: %s; page: %s)", what, timeout, detail, ff.describe())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (ff *firefox) waitState(t *testing.T, what string, timeout time.Duration, check func(pageState) bool) pageState {
	t.Helper()
	var s pageState
	ff.waitFor(t, what, timeout, func() (bool, string) {
		s = ff.state()
		b, _ := json.Marshal(s)
		return check(s), string(b)
	})
	return s
}

// waitMedia waits until Firefox has decoded frames video frames and received audio, and
// has sent sentFrames video frames.
func (ff *firefox) waitMedia(t *testing.T, frames, sentFrames int) stats {
	t.Helper()
	var st stats
	ff.waitFor(t, fmt.Sprintf("decode %d frames, receive audio, send %d frames", frames, sentFrames), 60*time.Second,
		func() (bool, string) {
			st = stats{}
			if err := ff.eval(statsJS, &st); err != nil {
				return false, err.Error()
			}
			return st.FramesDecoded >= frames && (st.AudioPackets > 0 || st.AudioSamples > 0) &&
				st.FramesSent >= sentFrames, fmt.Sprintf("%+v", st)
		})
	t.Logf("Firefox: %+v", st)
	return st
}

// open loads a page of the client and waits until the client runs.
func (ff *firefox) open(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ff.bidi.Navigate(ctx, ff.tab, url); err != nil {
		t.Fatalf("Firefox: open %s: %v", url, err)
	}
	ff.waitState(t, "client started", 30*time.Second, func(s pageState) bool { return s.State != "" })
}

// click clicks the button with the given ID once it is enabled.
func (ff *firefox) click(t *testing.T, id string) {
	t.Helper()
	ff.waitFor(t, "click #"+id, 30*time.Second, func() (bool, string) {
		var clicked bool
		err := ff.eval(fmt.Sprintf(`(() => {
			const b = document.getElementById(%q);
			if (!b || b.disabled) return false;
			b.click();
			return true;
		})()`, id), &clicked)
		if err != nil {
			var ee *bidi.EvaluateError
			if errors.As(err, &ee) {
				t.Fatalf("Firefox: click #%s: %v", id, err)
			}
			return false, err.Error()
		}
		return clicked, "not there or disabled"
	})
}

// newCall clicks New call and returns the session ID the page shows.
func (ff *firefox) newCall(t *testing.T) string {
	t.Helper()
	ff.click(t, "new-session")
	ff.waitState(t, "session ready", 30*time.Second, func(s pageState) bool { return s.State == "waiting" })
	var id string
	if err := ff.eval(`document.getElementById("session-id").textContent`, &id); err != nil || id == "" {
		t.Fatalf("Firefox: no session ID shown (%v)", err)
	}
	return id
}
