package sfu_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/parley-rtc/parley/sfu"
)

// TestMediaAddressAppears: an address that appears after the SFU started (here 127.0.0.2,
// while 127.0.0.1 goes away) is bound on the same port and offered to the participants who
// join from then on, whose media then flows through it.
func TestMediaAddressAppears(t *testing.T) {
	camera := loadVideo(t, "chrome-vp8.ivf")
	s, join := startSFU(t, sfu.Config{})
	defer s.Close()
	before := s.MediaAddrs()
	if len(before) != 1 || before[0].Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("media port at start: %v, want 127.0.0.1", before)
	}
	moved := netip.MustParseAddr("127.0.0.2")
	sfu.SetMediaAddrs(s, func() ([]netip.Addr, error) { return []netip.Addr{moved}, nil })

	cs := map[string]*client{}
	for _, id := range []string{"A", "B"} {
		c := join(id)
		defer c.close()
		cs[id] = c
		c.publish(camera, "camera", "cam-"+id)
	}
	waitFor(t, 60*time.Second, "both cameras forwarded", func() (bool, string) {
		return settled(s, map[string]int{"A": 1, "B": 1}, map[string]int{"A": 1, "B": 1})
	})
	receiving(t, "A", 30, cs["B"])
	receiving(t, "B", 30, cs["A"])
	if after := s.MediaAddrs(); len(after) != 1 || after[0] != netip.AddrPortFrom(moved, before[0].Port()) {
		t.Errorf("media port after the change: %v, want %v", after, netip.AddrPortFrom(moved, before[0].Port()))
	}
	for id, c := range cs {
		var remote string
		c.do(func() {
			if pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
				remote = pair.Remote.Address
			}
		})
		if remote != moved.String() {
			t.Errorf("%s's media goes to the SFU at %q, want %s", id, remote, moved)
		}
	}
}
