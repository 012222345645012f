package udpbatch

import (
	"net/netip"
	"slices"
	"testing"
)

// A plan makes a message of datagrams to one address while they are of one size, ending it
// at a shorter one or at a limit, and keeps each address's datagrams in order.
func TestPlan(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:5004")
	b := netip.MustParseAddrPort("[2001:db8::1]:5004")
	dg := func(to netip.AddrPort, size int) *Datagram { return &Datagram{Buf: make([]byte, size), to: to} }
	cases := []struct {
		name     string
		batch    []*Datagram
		most     int
		wantIdx  []int // the batch's indexes in send order
		wantSegs []int
	}{
		{
			name: "two addresses",
			batch: []*Datagram{dg(a, 1000), dg(b, 500), dg(a, 1000), dg(a, 1000), dg(b, 500), dg(a, 600),
				dg(a, 1000), dg(b, 700), dg(a, 1000)},
			most: 64,
			// a's run ends at its shorter datagram; b's 700 is longer than its run's 500.
			wantIdx:  []int{0, 2, 3, 5, 1, 4, 6, 8, 7},
			wantSegs: []int{4, 2, 2, 1},
		},
		{
			name:     "at most",
			batch:    []*Datagram{dg(a, 100), dg(a, 100), dg(a, 100), dg(a, 100), dg(a, 100)},
			most:     2,
			wantIdx:  []int{0, 1, 2, 3, 4},
			wantSegs: []int{2, 2, 1},
		},
		{
			name:     "one each",
			batch:    []*Datagram{dg(a, 100), dg(a, 100), dg(b, 100)},
			most:     1,
			wantIdx:  []int{0, 1, 2},
			wantSegs: []int{1, 1, 1},
		},
	}
	// At most 65,507 bytes a message: 46 datagrams of 1,400.
	var big []*Datagram
	var bigIdx []int
	for i := range 60 {
		big = append(big, dg(a, 1400))
		bigIdx = append(bigIdx, i)
	}
	cases = append(cases, struct {
		name     string
		batch    []*Datagram
		most     int
		wantIdx  []int
		wantSegs []int
	}{"bytes", big, 64, bigIdx, []int{46, 14}})

	var p plan
	for _, c := range cases {
		order, segs := p.make(c.batch, c.most)
		var idx []int
		for _, d := range order {
			idx = append(idx, slices.Index(c.batch, d))
		}
		if !slices.Equal(idx, c.wantIdx) || !slices.Equal(segs, c.wantSegs) {
			t.Errorf("%s: order %v segments %v, want %v %v", c.name, idx, segs, c.wantIdx, c.wantSegs)
		}
	}
	if n := testing.AllocsPerRun(100, func() { p.make(big, 64) }); n != 0 {
		t.Errorf("a plan allocates %v times, want 0", n)
	}
}
