package web_test

// Screen sharing in a group call, in real Chromium tabs through the server's SFU. Headless
// Chromium can capture a screen: with --use-fake-ui-for-media-stream the picker is
// skipped and, with --use-fake-device-for-media-stream, getDisplayMedia gives Chromium's
// fake desktop capturer ("screen:-3:0", 800x450 at 30 fps, displaySurface "monitor").

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenState is what a tab shows of screen shares.
type screenState struct {
	Screens     []string `json:"screens"`     // window.parley.screens: remote screen stream IDs
	Sharing     bool     `json:"sharing"`     // this tab shares its screen
	ScreenTiles int      `json:"screenTiles"` // tiles of screens, its own included
	Label       string   `json:"label"`       // the first remote screen tile's name
	Width       int      `json:"width"`       // its video's width in pixels
	Frames      int      `json:"frames"`      // frames decoded of its track (getStats inbound-rtp)
	MineWidth   int      `json:"mineWidth"`   // the width of one's own screen tile's video
	Button      string   `json:"button"`      // the share button's text
	Status      string   `json:"status"`
}

const screenStateJS = `(async () => {
	const p = window.parley || {};
	const s = {screens: p.screens || [], sharing: !!p.sharing, label: "", width: 0, frames: 0, mineWidth: 0,
		screenTiles: document.querySelectorAll("#grid .tile.screen").length,
		button: document.getElementById("share-screen").textContent,
		status: document.getElementById("status").textContent};
	const remote = document.querySelector("#grid .tile.screen:not(.mine)");
	if (remote) {
		s.label = remote.querySelector(".name").textContent;
		const v = remote.querySelector("video");
		s.width = v.videoWidth;
		const tr = v.srcObject && v.srcObject.getVideoTracks()[0];
		if (tr && p.pc) {
			(await p.pc.getStats()).forEach(r => {
				if (r.type === "inbound-rtp" && r.trackIdentifier === tr.id) s.frames = r.framesDecoded || 0;
			});
		}
	}
	const mine = document.querySelector("#grid .tile.screen.mine video");
	if (mine) s.mineWidth = mine.videoWidth;
	return s;
})()`

func (tb *tab) waitScreen(what string, cond func(screenState) bool) screenState {
	tb.t.Helper()
	var s screenState
	tb.waitFor(what, 90*time.Second, func() (bool, string) {
		var err error
		if s, err = eval[screenState](tb, screenStateJS); err != nil {
			return false, err.Error()
		}
		tb.checkNotEnded(tb.state())
		return cond(s), fmt.Sprintf("%+v", s)
	})
	return s
}

// TestGroupScreenShare: in a group of three tabs, A shares its screen; B and C decode it
// in a tile of its own, labelled as A's screen, and still decode both cameras; A sees its
// own screen. A stops sharing: the screen tiles go everywhere, and the calls go on.
func TestGroupScreenShare(t *testing.T) {
	b := newBrowser(t, browserOpts{})
	srv := startGroupServer(t)
	tabs := []*tab{newTab(t, b, "A"), newTab(t, b, "B"), newTab(t, b, "C")}
	tabs[0].open(srv.URL + "/")
	id := tabs[0].newGroupCall()
	for _, tb := range tabs[1:] {
		tb.open(srv.URL + "/s/" + id)
	}
	states := make([]groupState, len(tabs))
	for i, tb := range tabs {
		states[i] = tb.waitGroup(2)
	}
	a, bb, c := tabs[0], tabs[1], tabs[2]
	// A is the one both B and C see.
	var aID string
	for _, p := range states[1].Participants {
		if slices.Contains(states[2].Participants, p) {
			aID = p
		}
	}
	if aID == "" {
		t.Fatalf("B and C have no participant in common: %v, %v", states[1].Participants, states[2].Participants)
	}

	a.do(chromedp.WaitEnabled(chromedp.ID("share-screen")), chromedp.Click(chromedp.ID("share-screen")))
	a.waitScreen("A sharing, its own screen shown", func(s screenState) bool {
		return s.Sharing && s.MineWidth > 0 && s.Button == "Stop sharing"
	})
	for _, tb := range []*tab{bb, c} {
		s := tb.waitScreen("A's screen decoded in a tile of its own", func(s screenState) bool {
			return len(s.Screens) == 1 && s.Frames >= 20 && s.Width > 0 && s.ScreenTiles == 1
		})
		t.Logf("tab %s: screen %v, %q, %d px wide, %d frames decoded", tb.name, s.Screens, s.Label, s.Width, s.Frames)
		if owner, _, _ := strings.Cut(s.Screens[0], "~"); owner != aID || !strings.HasSuffix(s.Label, "'s screen") {
			t.Errorf("tab %s: screen stream %s labelled %q, want A's (%s)", tb.name, s.Screens[0], s.Label, aID)
		}
	}
	// The cameras go on: two people's videos, still decoding, in two person tiles.
	for _, tb := range tabs {
		tb.waitGroup(2)
	}

	a.do(chromedp.Click(chromedp.ID("share-screen")))
	a.waitScreen("A's sharing stopped", func(s screenState) bool {
		return !s.Sharing && s.ScreenTiles == 0 && s.Button == "Share screen"
	})
	for _, tb := range []*tab{bb, c} {
		tb.waitScreen("A's screen tile gone", func(s screenState) bool { return len(s.Screens) == 0 && s.ScreenTiles == 0 })
	}
	for _, tb := range tabs {
		gs := tb.waitGroup(2)
		if gs.Tiles != 2 {
			t.Errorf("tab %s: %d person tiles, want 2", tb.name, gs.Tiles)
		}
	}
}
