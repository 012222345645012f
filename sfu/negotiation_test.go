package sfu

import "testing"

func TestNegotiator(t *testing.T) {
	// Each step is an input and the action it must produce.
	type step struct {
		in   string // "changed", "client-offer", "answered", "connected", "client-answer", "offer-failed", "deferred"
		want action
	}
	cases := []struct {
		name   string
		steps  []step
		offers int
		glares int
		state  negState
		stable bool
	}{
		{
			name:  "first offer is the client's, answered",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}},
			state: stable, stable: true,
		},
		{
			name: "changes before the client's offer wait for it, then make one offer",
			steps: []step{{"changed", none}, {"changed", none}, {"changed", none}, {"client-offer", answer},
				{"answered", none}, {"connected", offer}},
			offers: 1, state: serverOffered,
		},
		{
			name: "the first offer waits for the connection, whichever comes first",
			steps: []step{{"connected", none}, {"changed", none}, {"client-offer", answer}, {"answered", offer},
				{"client-answer", none}, {"connected", none}, {"changed", offer}},
			offers: 2, state: serverOffered,
		},
		{
			name:   "changes before the connection wait for it",
			steps:  []step{{"client-offer", answer}, {"answered", none}, {"changed", none}, {"changed", none}, {"connected", offer}},
			offers: 1, state: serverOffered,
		},
		{
			name: "a change when stable offers at once",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer},
				{"client-answer", none}},
			offers: 1, state: stable, stable: true,
		},
		{
			name: "changes during an offer coalesce into one more",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer},
				{"changed", none}, {"changed", none}, {"changed", none},
				{"client-answer", offer}, {"client-answer", none}},
			offers: 2, state: stable, stable: true,
		},
		{
			name: "client re-offers when stable are answered and make no offer",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"client-offer", answer}, {"answered", none},
				{"client-offer", answer}, {"answered", none}},
			state: stable, stable: true,
		},
		{
			name: "glare: a client offer crossing an SFU offer is ignored; the answer settles it",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer},
				{"client-offer", glare}, {"client-answer", none}, {"client-offer", answer}, {"answered", none}},
			offers: 1, glares: 1, state: stable, stable: true,
		},
		{
			name: "glare with changes waiting: one more offer after the answer, then the client's re-offer",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer}, {"changed", none},
				{"client-offer", glare}, {"client-answer", offer}, {"client-offer", glare}, {"client-answer", none},
				{"client-offer", answer}, {"answered", none}},
			offers: 2, glares: 2, state: stable, stable: true,
		},
		{
			name: "changes while a client re-offer is answered are offered right after",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"client-offer", answer}, {"changed", offer},
				{"answered", none}, {"client-answer", none}},
			offers: 1, state: stable, stable: true,
		},
		{
			name:   "answered with no client offer while an SFU offer is in flight changes nothing",
			steps:  []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer}, {"answered", none}},
			offers: 1, state: serverOffered,
		},
		{
			name: "answers nobody asked for are ignored",
			steps: []step{{"client-answer", ignore}, {"client-offer", answer}, {"answered", none}, {"connected", none},
				{"client-answer", ignore}, {"changed", offer}, {"client-answer", none}, {"client-answer", ignore}},
			offers: 1, state: stable, stable: true,
		},
		{
			name: "a failed offer is retried at the next change",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer},
				{"offer-failed", none}, {"changed", offer}, {"client-answer", none}},
			offers: 1, state: stable, stable: true,
		},
		{
			name: "an offer that deferred a change is followed by one more once answered",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"changed", offer},
				{"changed", none}, {"changed", none}, {"client-answer", offer}, {"deferred", none}, {"client-answer", offer},
				{"client-answer", none}},
			offers: 3, state: stable, stable: true,
		},
		{
			name: "deferred with no offer in flight does nothing",
			steps: []step{{"client-offer", answer}, {"deferred", none}, {"answered", none}, {"connected", none},
				{"deferred", none}},
			state: stable, stable: true,
		},
		{
			name:  "answered twice does nothing more",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"answered", none}},
			state: stable, stable: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n negotiator
			for i, s := range tc.steps {
				var got action
				switch s.in {
				case "changed":
					got = n.Changed()
				case "client-offer":
					got = n.ClientOffer()
				case "answered":
					got = n.Answered()
				case "connected":
					got = n.Connected()
				case "client-answer":
					got = n.ClientAnswer()
				case "offer-failed":
					n.OfferFailed()
				case "deferred":
					n.Deferred()
				default:
					t.Fatalf("step %d: unknown input %q", i, s.in)
				}
				if got != s.want {
					t.Fatalf("step %d (%s): action %s, want %s (state %s)", i, s.in, got, s.want, n.state)
				}
			}
			if n.offers != tc.offers || n.glares != tc.glares || n.state != tc.state || n.Stable() != tc.stable {
				t.Errorf("offers %d, glares %d, state %s, Stable %v; want %d, %d, %s, %v", n.offers, n.glares, n.state,
					n.Stable(), tc.offers, tc.glares, tc.state, tc.stable)
			}
		})
	}
}

// TestNegotiatorBounded drives a negotiator with every sequence of up to 9 inputs (a client
// offer's answer may come after other inputs, as in the shell's queue) and checks the
// invariants: never more offers than changes, at most one offer in flight, and no client
// offer answered while an SFU offer is in flight (that would be glare resolved the wrong
// way round: the SFU is the impolite peer).
func TestNegotiatorBounded(t *testing.T) {
	inputs := []string{"changed", "client-offer", "answered", "connected", "client-answer", "offer-failed"}
	var walk func(n negotiator, depth, inFlight int, answering bool)
	walk = func(n negotiator, depth, inFlight int, answering bool) {
		if n.offers > n.changes {
			t.Fatalf("%d offers for %d changes", n.offers, n.changes)
		}
		if inFlight > 1 {
			t.Fatalf("%d offers in flight", inFlight)
		}
		if depth == 0 {
			return
		}
		for _, in := range inputs {
			m, f, ans := n, inFlight, answering
			var a action
			switch in {
			case "changed":
				a = m.Changed()
			case "client-offer":
				if ans {
					continue // the shell answers one offer at a time
				}
				switch m.ClientOffer() {
				case answer:
					if f > 0 {
						t.Fatalf("a client offer answered with an SFU offer in flight (state %s)", m.state)
					}
					ans = true
				case glare:
					if f == 0 {
						t.Fatalf("a client offer taken for glare with no SFU offer in flight (state %s)", m.state)
					}
				default:
					t.Fatalf("client offer: unexpected action")
				}
			case "answered":
				if !ans {
					continue
				}
				ans = false
				a = m.Answered()
			case "connected":
				a = m.Connected()
			case "client-answer":
				if m.ClientAnswer() != ignore {
					f--
				}
				if m.state == serverOffered {
					a = offer
				}
			case "offer-failed":
				if m.state == serverOffered {
					f--
				}
				m.OfferFailed()
			}
			if a == offer {
				f++
			}
			walk(m, depth-1, f, ans)
		}
	}
	walk(negotiator{}, 9, 0, false)
}
