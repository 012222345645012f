package sfu_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-rtc/parley/sfu"
)

// TestSectionReuse: the SFU sends a new track in the media section of one that ended, once
// the subscriber has answered the offer that ended it; and when one offer would both end a
// track and add one of its kind, the new track waits for the next offer, to take over that
// section then rather than grow the peer connection. A, B and C publish a camera each; C
// holds the SFU's offer of B's screen share while A stops its camera and shares its screen.
// Once C answers, the SFU offers it A's camera ended, then A's screen in that section: C's
// peer connection keeps 4 media sections (its camera's, and B's camera, B's screen and A's
// screen), and receives A's screen.
func TestSectionReuse(t *testing.T) {
	camera, screen := loadVideo(t, "chrome-vp8.ivf"), loadVideo(t, "chrome-vp8-opus.webm")
	s, join := startSFU(t, sfu.Config{})
	t.Cleanup(func() { s.Close() })
	cs := map[string]*client{}
	stopCamera := map[string]func(){}
	for _, id := range []string{"A", "B", "C"} {
		cs[id] = join(id)
		t.Cleanup(cs[id].close)
		stopCamera[id] = cs[id].publish(camera, "camera", "cam-"+id)
	}
	a, b, c := cs["A"], cs["B"], cs["C"]
	pub := map[string]int{"A": 1, "B": 1, "C": 1}
	sub := map[string]int{"A": 2, "B": 2, "C": 2}
	waitFor(t, 60*time.Second, "three cameras forwarded", func() (bool, string) { return settled(s, pub, sub) })
	receiving(t, "A", 30, c)

	c.do(func() { c.hold = true })
	b.publish(screen, "screen", "screen-B")
	waitFor(t, 30*time.Second, "the SFU's offer of B's screen to C held", func() (bool, string) {
		var n int
		c.do(func() { n = len(c.held) })
		return n == 1, fmt.Sprintf("%d held", n)
	})
	stopCamera["A"]()
	ended(t, "A", b)
	a.publish(screen, "screen", "screen-A")
	receiving(t, "A~1", 30, b)
	c.do(func() {
		c.hold = false
		for _, sdp := range c.held {
			c.answer(sdp)
		}
		c.held = nil
	})
	pub["B"], sub["A"], sub["C"] = 2, 3, 3
	waitFor(t, 60*time.Second, "C receiving B's and A's screens", func() (bool, string) { return settled(s, pub, sub) })
	receiving(t, "A~1", 30, c)
	receiving(t, "B~1", 30, c)
	ended(t, "A", c)
	for _, p := range s.Stats().Participants {
		t.Logf("%s: %d offers, %d media sections", p.ID, p.OffersSent, p.Sections)
		if p.ID == "C" && p.Sections != 4 {
			t.Errorf("C's peer connection has %d media sections, want 4: A's screen should have taken over its camera's", p.Sections)
		}
	}
}
