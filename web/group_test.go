package web_test

// Group calls in real Chromium tabs through the server's SFU: three tabs in a group
// session, and a two-person call that becomes a group when a third tab joins.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sfu"
	"github.com/parley-rtc/parley/signaling"
)

// startGroupServer is startServer with an SFU, wired as `parley serve` does: the SFU sends
// through the signaling server, which hands it the group sessions' messages.
func startGroupServer(t *testing.T) *server {
	t.Helper()
	return startGroupServerAt(t, "", true)
}

// startGroupServerAt is startGroupServer listening on addr ("" picks a free port on
// 127.0.0.1), its SFU gathering only loopback ICE candidates if loopbackOnly.
func startGroupServerAt(t *testing.T, addr string, loopbackOnly bool) *server {
	t.Helper()
	return startGroupServerWith(t, addr, sfu.Config{LoopbackOnly: loopbackOnly})
}

// startGroupServerWith is startGroupServerAt with the SFU configured as cfg.
func startGroupServerWith(t *testing.T, addr string, cfg sfu.Config) *server {
	t.Helper()
	var sig atomic.Pointer[signaling.Server]
	cfg.Logger = quietLogger()
	cfg.Send = func(to string, m protocol.Message) {
		if s := sig.Load(); s != nil {
			s.SendFromSFU(to, m)
		}
	}
	media, err := sfu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the server stops, then the SFU closes and waits for its
	// goroutines.
	t.Cleanup(func() { media.Close() })
	srv := startServerWith(t, addr, signaling.Config{SFU: media})
	sig.Store(srv.sig)
	srv.sfu = media
	return srv
}

// groupState is a tab's group call: its page state, and the frames decoded of each
// inbound video (getStats inbound-rtp), one number per remote video track.
type groupState struct {
	pageState
	Frames []int `json:"frames"`
}

// framesBySSRCJS gives the frames decoded of each inbound video RTP stream (getStats
// inbound-rtp), by SSRC: a stream that ended keeps its entry, so a new one is told apart.
const framesBySSRCJS = `(async () => {
	const out = {};
	const pc = window.parley && window.parley.pc;
	if (pc) (await pc.getStats()).forEach(r => {
		if (r.type === "inbound-rtp" && r.kind === "video") out[String(r.ssrc)] = r.framesDecoded || 0;
	});
	return out;
})()`

// newStream reports whether now (framesBySSRCJS) has a stream that old had not, with at
// least min frames decoded.
func newStream(old, now map[string]int, min int) bool {
	for ssrc, n := range now {
		if _, seen := old[ssrc]; !seen && n >= min {
			return true
		}
	}
	return false
}

var groupStateJS = `(async () => {
	const s = ` + pageStateJS + `;
	s.frames = [];
	const pc = window.parley && window.parley.pc;
	if (pc && s.group) {
		(await pc.getStats()).forEach(r => {
			if (r.type === "inbound-rtp" && r.kind === "video") s.frames.push(r.framesDecoded || 0);
		});
	}
	return s;
})()`

// waitGroup waits until the tab is connected in a group call, shows a tile for each of
// others remote participants, and decodes at least 20 frames of each of their videos.
// While it waits, the page must never show the call as ended or the peer as gone.
func (tb *tab) waitGroup(others int) groupState {
	tb.t.Helper()
	var gs groupState
	tb.waitFor(fmt.Sprintf("a group call decoding %d remote videos", others), 90*time.Second, func() (bool, string) {
		var err error
		gs, err = eval[groupState](tb, groupStateJS)
		if err != nil {
			return false, err.Error()
		}
		tb.checkNotEnded(gs.pageState)
		decoding := 0
		for _, f := range gs.Frames {
			if f >= 20 {
				decoding++
			}
		}
		ok := gs.Group && gs.State == "connected" && len(gs.Participants) == others && gs.Tiles == others &&
			decoding >= others
		return ok, fmt.Sprintf("group %v, state %s, participants %v, tiles %d, frames decoded %v",
			gs.Group, gs.State, gs.Participants, gs.Tiles, gs.Frames)
	})
	tb.t.Logf("tab %s: participants %v, frames decoded %v", tb.name, gs.Participants, gs.Frames)
	return gs
}

// checkNotEnded fails the test if the page shows the call as ended or its peer as gone.
func (tb *tab) checkNotEnded(s pageState) {
	tb.t.Helper()
	if s.State == "ended" || s.State == "idle" || strings.Contains(strings.ToLower(s.Status), "peer left") {
		tb.t.Fatalf("tab %s: the call ended or the peer left: state %s, status %q", tb.name, s.State, s.Status)
	}
}

// checkSRTPDirect checks that the SFU's own SRTP write path (sfu/srtpout.go) carries what
// it sends each of its n participants, whose browsers decode their remote videos, so
// decrypt it; and that its own SRTCP read path (sfu/rtcpin.go) took RTCP from each, which
// it decrypted with the keys it derived. The SFU turns the paths on as it handles each
// connection's news, so this waits a little for it.
func checkSRTPDirect(t *testing.T, s *sfu.SFU, n int) {
	t.Helper()
	var st sfu.Stats
	direct, rtcpIn := 0, 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, direct, rtcpIn = s.Stats(), 0, 0
		for _, p := range st.Participants {
			if p.SRTPDirect {
				direct++
			}
			if p.RTCPDirect > 0 {
				rtcpIn++
			}
		}
		if (direct == n && rtcpIn == n && len(st.Participants) == n && st.SRTPDirect > 0) || time.Now().After(deadline) {
			break
		}
	}
	for _, p := range st.Participants {
		if !p.SRTPDirect {
			t.Errorf("participant %s: the SFU sends it media through Pion's SRTP session, not its own", p.ID)
		}
		if p.RTCPDirect == 0 {
			t.Errorf("participant %s: the SFU took none of its RTCP on its own SRTCP read path", p.ID)
		}
	}
	if direct != n || len(st.Participants) != n || st.SRTPDirect == 0 {
		t.Errorf("%d of %d participants (want %d) on the SFU's SRTP write path, %d packets sent that way",
			direct, len(st.Participants), n, st.SRTPDirect)
	}
	t.Logf("RTCP packets taken by the SFU's SRTCP read path: %d", st.RTCPDirect)
}

// checkParticipants checks that the tabs see each other: three distinct user IDs, each
// shown by the two tabs that are not its own.
func checkParticipants(t *testing.T, states []groupState) {
	t.Helper()
	seen := map[string]int{}
	for _, s := range states {
		for _, id := range s.Participants {
			seen[id]++
		}
	}
	if len(seen) != len(states) {
		t.Errorf("the tabs show %d distinct participants, want %d: %v", len(seen), len(states), seen)
	}
	for id, n := range seen {
		if n != len(states)-1 {
			t.Errorf("participant %s is shown by %d tabs, want %d", id, n, len(states)-1)
		}
	}
}

// setName types name into the lobby's name field, as a person does, after clearing what is
// there (the name remembered from before; tabs of one browser share localStorage).
func (tb *tab) setName(name string) {
	tb.t.Helper()
	if _, err := eval[bool](tb, `(() => {
		const el = document.getElementById("display-name");
		el.value = "";
		el.dispatchEvent(new Event("input"));
		return true;
	})()`); err != nil {
		tb.t.Fatalf("tab %s: clear the name field: %v", tb.name, err)
	}
	if name != "" {
		tb.do(chromedp.SendKeys(chromedp.ID("display-name"), name))
	}
	tb.waitFor("the name remembered", 10*time.Second, func() (bool, string) {
		stored, err := eval[string](tb, `localStorage.getItem("parley.name") || ""`)
		return err == nil && stored == strings.TrimSpace(name), fmt.Sprintf("localStorage has %q (%v)", stored, err)
	})
}

// joinNamed opens the lobby, sets the name (remembered by the page), then opens the
// session's link, which joins under the remembered name, and waits until it has joined.
func (tb *tab) joinNamed(base, session, name string) {
	tb.t.Helper()
	tb.open(base + "/")
	tb.setName(name)
	tb.open(base + "/s/" + session)
	tb.waitState("joined", 30*time.Second, func(s pageState) bool { return s.SessionID == session })
	if got, err := eval[string](tb, `document.getElementById("display-name").value`); err != nil || got != name {
		tb.t.Errorf("tab %s: the name field shows %q after a reload (%v), want the remembered %q", tb.name, got, err, name)
	}
}

// userID is the tab's user ID on the server.
func (tb *tab) userID() string {
	tb.t.Helper()
	id, err := eval[string](tb, `(window.parley && window.parley.userId) || ""`)
	if err != nil || id == "" {
		tb.t.Fatalf("tab %s: no user ID (%v)", tb.name, err)
	}
	return id
}

// checkTileNames waits until every tab's grid labels the others' tiles with their names, or
// "Guest " and the start of the user ID for a tab whose name is "".
func checkTileNames(t *testing.T, tabs []*tab, names []string) {
	t.Helper()
	ids := make([]string, len(tabs))
	for i, tb := range tabs {
		ids[i] = tb.userID()
	}
	for i, tb := range tabs {
		want := map[string]string{}
		for j := range tabs {
			if j == i {
				continue
			}
			want[ids[j]] = names[j]
			if names[j] == "" {
				want[ids[j]] = "Guest " + ids[j][:4]
			}
		}
		tb.waitFor(fmt.Sprintf("tiles named %v", want), 20*time.Second, func() (bool, string) {
			got, err := eval[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll("#grid .tile.peer")]
				.map(t => [t.dataset.peer, t.querySelector(".name").textContent]))`)
			if err != nil {
				return false, err.Error()
			}
			return maps.Equal(got, want), fmt.Sprintf("tiles %v", got)
		})
		if me, err := eval[string](tb, `document.querySelector("#grid .tile.me .name").textContent`); err != nil || me != "You" {
			t.Errorf("tab %s: own tile labelled %q (%v), want You", tb.name, me, err)
		}
	}
}

// newGroupCall clicks New group call and returns the session ID the page shows.
func (tb *tab) newGroupCall() string {
	tb.t.Helper()
	tb.do(chromedp.WaitEnabled(chromedp.ID("new-group")), chromedp.Click(chromedp.ID("new-group")))
	s := tb.waitState("group session ready", 30*time.Second, func(s pageState) bool {
		return s.State == "waiting" && s.Group && s.SessionID != ""
	})
	if s.Chat != "unavailable" {
		tb.t.Errorf("tab %s: chat is %q in a group call, want unavailable", tb.name, s.Chat)
	}
	return s.SessionID
}

// TestGroupTabs: three tabs in one group session each decode the two others' video and
// show them in two tiles.
//
// A and B have display names, set in the lobby's name field (B's with characters beyond
// ASCII); C has none. Each tab's tiles show the others' names, and C's short user ID.
func TestGroupTabs(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startGroupServer(t)
	tabs := []*tab{newTab(t, b, "A"), newTab(t, b, "B"), newTab(t, b, "C")}
	names := []string{"Ada Lovelace", "Zoë Ó Briain", ""}
	tabs[0].open(srv.URL + "/")
	tabs[0].setName("  " + names[0] + " ") // the page trims what is typed
	id := tabs[0].newGroupCall()
	for i, tb := range tabs[1:] {
		tb.joinNamed(srv.URL, id, names[i+1])
	}
	states := make([]groupState, len(tabs))
	for i, tb := range tabs {
		states[i] = tb.waitGroup(2)
	}
	checkParticipants(t, states)
	// The camera arrives as simulcast: at least one tab's video on two layers or more (how
	// many Chromium sends depends on the resolution and the CPU it has), measured by the
	// SFU at bitrates in the layers' resolution order, which its choice of layers assumes;
	// and the other tabs go on decoding what the SFU chose for them.
	var layers []sfu.LayerStats
	waitCond(t, 60*time.Second, "a tab's video arriving on two simulcast layers, measured in resolution order", func() bool {
		for _, p := range srv.sfu.Stats().Participants {
			layers = layers[:0]
			for _, l := range p.Layers { // in resolution order, lowest first
				if l.RID != "" && l.Packets > 0 && l.Kbps > 0 {
					layers = append(layers, l)
				}
			}
			ordered := true
			for i := 1; i < len(layers); i++ {
				ordered = ordered && layers[i].Kbps > layers[i-1].Kbps
			}
			if len(layers) >= 2 && ordered {
				return true
			}
		}
		return false
	})
	t.Logf("simulcast layers of one tab: %+v", layers)
	for i, tb := range tabs {
		before := states[i].Frames
		tb.waitFor("video frames still decoded", 30*time.Second, func() (bool, string) {
			gs, err := eval[groupState](tb, groupStateJS)
			if err != nil {
				return false, err.Error()
			}
			now := gs.Frames
			if len(now) != len(before) {
				return false, fmt.Sprintf("frames %v, were %v", now, before)
			}
			for j := range now {
				if now[j] <= before[j] {
					return false, fmt.Sprintf("frames %v, were %v", now, before)
				}
			}
			return true, ""
		})
	}
	checkTileNames(t, tabs, names)
	checkSRTPDirect(t, srv.sfu, 3)
	for _, tb := range tabs {
		if s := tb.state(); s.Chat != "unavailable" {
			t.Errorf("tab %s: chat is %q in a group call, want unavailable", tb.name, s.Chat)
		}
	}

	// The grid, for the README, on a laptop-sized screen; then on a phone, where nothing
	// overflows sideways.
	a := tabs[0]
	a.do(chromedp.EmulateViewport(1280, 800))
	shot := filepath.Join(t.TempDir(), "group.png")
	a.screenshot(shot)
	if os.Getenv("PARLEY_UPDATE_SCREENSHOT") == "1" {
		png, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(filepath.Join("..", "docs", "group.png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("update docs/group.png: %v", err)
		}
	}
	c := tabs[2]
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(3)))
	c.waitFor("no horizontal overflow at 390x844", 10*time.Second, func() (bool, string) {
		w, err := eval[[]int](c, `[document.documentElement.scrollWidth, window.innerWidth]`)
		if err != nil || len(w) != 2 {
			return false, fmt.Sprint(err)
		}
		return w[0] <= w[1], fmt.Sprintf("scrollWidth %d, innerWidth %d", w[0], w[1])
	})
	// Two tiles across, none wider than its column.
	c.waitFor("tiles within the grid at 390x844", 10*time.Second, func() (bool, string) {
		w, err := eval[[]float64](c, `(() => {
			const g = document.getElementById("grid").getBoundingClientRect();
			const tiles = [...document.querySelectorAll("#grid .tile")].map(e => e.getBoundingClientRect());
			return [g.left, g.right, ...tiles.map(r => r.right), ...tiles.map(r => r.width)];
		})()`)
		if err != nil || len(w) != 2+2*3 {
			return false, fmt.Sprint(w, err)
		}
		for _, right := range w[2:5] {
			if right > w[1]+1 {
				return false, fmt.Sprintf("grid %v, tiles' right edges %v", w[:2], w[2:5])
			}
		}
		widths := w[5:]
		return slices.Max(widths)-slices.Min(widths) < 1, fmt.Sprintf("tile widths %v", widths)
	})
	c.screenshot(filepath.Join(t.TempDir(), "group-phone.png"))

	// C hangs up: the others' tiles for C go, and their calls go on.
	cIDs := slices.DeleteFunc(slices.Clone(states[0].Participants), func(id string) bool {
		return !slices.Contains(states[1].Participants, id)
	})
	if len(cIDs) != 1 {
		t.Fatalf("A and B have %d participants in common, want C alone: %v", len(cIDs), cIDs)
	}
	c.do(chromedp.Click(chromedp.ID("hang-up")))
	for _, tb := range tabs[:2] {
		tb.waitState("the leaver's tile gone", 30*time.Second, func(s pageState) bool {
			tb.checkNotEnded(s)
			return s.Tiles == 1 && len(s.Participants) == 1 && !slices.Contains(s.Participants, cIDs[0])
		})
	}
}

// TestGroupMigration: a two-person call that a third tab joins becomes a group call
// through the SFU; the first two do not hang up, and all three get each other's video.
func TestGroupMigration(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startGroupServer(t)
	alice, bob, carol := newTab(t, b, "alice"), newTab(t, b, "bob"), newTab(t, b, "carol")
	alice.open(srv.URL + "/")
	alice.setName("Alice")
	id := alice.newCall()
	bob.joinNamed(srv.URL, id, "Bob")
	// The two-person call names the peer in its status line.
	for _, p := range []struct {
		tb   *tab
		peer string
	}{{alice, "Bob"}, {bob, "Alice"}} {
		p.tb.waitState("connected", 60*time.Second, func(s pageState) bool {
			return s.State == "connected" && !s.Group && strings.Contains(s.Status, "connected with "+p.peer)
		})
	}
	for _, tb := range []*tab{alice, bob} {
		tb.waitMedia(20, 20)
	}

	carol.joinNamed(srv.URL, id, "Carol")
	states := make([]groupState, 3)
	for i, tb := range []*tab{alice, bob, carol} {
		states[i] = tb.waitGroup(2)
	}
	checkParticipants(t, states)
	// Alice and Bob learnt each other's names before the call became a group; they keep them.
	checkTileNames(t, []*tab{alice, bob, carol}, []string{"Alice", "Bob", "Carol"})
	for _, tb := range []*tab{alice, bob} {
		tb.checkNotEnded(tb.state())
	}
}

// waitCond polls cond every 200 ms until it holds, or fails t after timeout.
func waitCond(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, timeout)
		}
	}
}

// TestGroupRejoin: once the SFU can offer a tab no more (here over 5 media sections; in
// production when an offer outgrows a signaling message), the tab leaves and joins again
// with a new peer connection, and shows the newcomer its old connection could not take.
// The SFU reuses the media sections of the tracks it forwarded, but the tab's own ended
// ones stay. The tab hosts; native member B comes and goes (its two sections stay, free);
// the tab shares its screen, stops, and shares again (two sections more, one ended): 6 in
// all, so when D joins, the SFU's offer is too large. The screen share goes on in the new
// connection (the tab's 3 and D's 2 sections), and D receives it. Then D leaves and E
// joins: the tab decodes E's video in the sections D's tracks had.
func TestGroupRejoin(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startGroupServerWith(t, "", sfu.Config{LoopbackOnly: true, MaxSections: 5})
	tb := newTab(t, b, "host")
	tb.open(srv.URL + "/")
	id := tb.newGroupCall()
	member := func(name string) (stop func() peer.Report) {
		cfg := nativeConfig(t, srv.URL)
		cfg.Join, cfg.Name = id, name
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan nativeResult, 1)
		go func() {
			rep, err := peer.Run(ctx, cfg)
			done <- nativeResult{rep, err}
		}()
		t.Cleanup(cancel)
		return func() peer.Report {
			cancel()
			r := <-done
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
			return r.rep
		}
	}
	// settled waits until the SFU has n participants, none with an offer in flight, and
	// the tab publishes the given number of tracks over a peer connection with the given
	// number of media sections.
	settled := func(what string, n, published, sections int) {
		t.Helper()
		tb.waitFor(what, 30*time.Second, func() (bool, string) {
			st := srv.sfu.Stats()
			ok := len(st.Participants) == n
			for _, p := range st.Participants {
				ok = ok && p.Stable
			}
			tab := slices.IndexFunc(st.Participants, func(p sfu.ParticipantStats) bool { return p.Published == published && p.Sections == sections })
			return ok && tab >= 0, fmt.Sprintf("%+v", st.Participants)
		})
	}
	stopB := member("B")
	tb.waitGroup(1)
	stopB()
	settled("the tab alone, B's sections ended", 1, 2, 4)
	share := func(want bool) {
		tb.do(chromedp.WaitEnabled(chromedp.ID("share-screen")), chromedp.Click(chromedp.ID("share-screen")))
		tb.waitScreen(fmt.Sprintf("the tab sharing its screen: %v", want), func(s screenState) bool {
			return s.Sharing == want && (s.MineWidth > 0) == want
		})
	}
	share(true)
	share(false)
	share(true)
	settled("the tab sharing again", 1, 3, 6)
	stopD := member("D")
	gs := tb.waitGroup(1)
	tb.waitScreen("the tab still sharing its screen after rejoining", func(s screenState) bool {
		return s.Sharing && s.MineWidth > 0 && s.ScreenTiles == 1
	})
	settled("the tab rejoined, sharing", 2, 3, 5)
	if len(gs.Frames) != 1 {
		t.Errorf("the tab decodes %d videos after rejoining, want D's only: %v", len(gs.Frames), gs.Frames)
	}
	if name, err := eval[string](tb, `document.querySelector("#grid .tile:not(.me):not(.mine) .name").textContent`); err != nil || name != "D" {
		t.Errorf("the tab's tile after rejoining is named %q (%v), want D", name, err)
	}
	time.Sleep(2 * time.Second)
	rep := stopD()
	if rep.VideoFramesReceived < 30 || rep.AudioPacketsReceived == 0 {
		t.Errorf("D received %d video frames and %d audio packets from the tab, want >= 30 and some",
			rep.VideoFramesReceived, rep.AudioPacketsReceived)
	}
	var screenFrames int64
	for _, tr := range rep.RemoteTracks {
		if strings.Contains(tr.Participant, "~") && tr.Kind == "video" {
			screenFrames += tr.VideoFrames
		}
	}
	if screenFrames < 10 {
		t.Errorf("D received %d frames of the tab's screen, want >= 10: %+v", screenFrames, rep.RemoteTracks)
	}
	// D leaves and E joins: E's tracks go in the sections D's had in the tab's connection,
	// where the tab decodes E's video, and the connection keeps its 5 sections.
	settled("the tab alone again, D's sections ended", 1, 3, 5)
	old, err := eval[map[string]int](tb, framesBySSRCJS)
	if err != nil {
		t.Fatal(err)
	}
	stopE := member("E")
	tb.waitFor("the tab decoding E's video", 60*time.Second, func() (bool, string) {
		now, err := eval[map[string]int](tb, framesBySSRCJS)
		return err == nil && newStream(old, now, 30), fmt.Sprintf("frames decoded by SSRC %v (before E: %v; %v)", now, old, err)
	})
	settled("E in, in D's sections", 2, 3, 5)
	stopE()
	if n, err := eval[int](tb, `window.parley.rejoins || 0`); err != nil || n != 1 {
		t.Errorf("the tab rejoined %d times (%v), want once: when D joined, not when E did", n, err)
	}
	for _, p := range srv.sfu.Stats().Participants {
		t.Logf("sfu: %s: %d offers, subscribed %d", p.ID, p.OffersSent, p.Subscribed)
	}
}
