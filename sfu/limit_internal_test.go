package sfu

import (
	"testing"
	"time"
)

// The limiters admit a second's worth at once, then the rate; both must admit a packet.
func TestTrackLimit(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newTrackLimit(8*100_000, 10, nil) // 100,000 bytes/s, 10 packets/s
	for i := range 10 {
		if !l.allow(t0, 1000) {
			t.Fatalf("packet %d of the first second's burst refused", i+1)
		}
	}
	if l.allow(t0, 1000) {
		t.Fatal("an 11th packet at once admitted at 10 packets/s")
	}
	if !l.allow(t0.Add(100*time.Millisecond), 1000) {
		t.Fatal("no packet admitted 100 ms later at 10 packets/s")
	}

	b := newTrackLimit(8*100_000, -1, nil) // bytes only: the burst is 100,000 bytes
	if !b.allow(t0, 60_000) || b.allow(t0, 60_000) {
		t.Fatal("want the first 60,000 bytes admitted and the next 60,000 not, within a 100,000-byte burst")
	}
	if !b.allow(t0.Add(200*time.Millisecond), 60_000) {
		t.Fatal("60,000 bytes refused 200 ms later, with 40,000 + 20,000 available")
	}

	small := newTrackLimit(8_000, -1, nil) // 1000 bytes/s: the burst is still 64 KiB
	if !small.allow(t0, 1200) {
		t.Fatal("a 1200-byte packet refused by a 1000 bytes/s limit: the burst should hold it")
	}

	none := newTrackLimit(-1, -1, nil)
	for range 10_000 {
		if !none.allow(t0, 1500) {
			t.Fatal("refused with no limit")
		}
	}
}
