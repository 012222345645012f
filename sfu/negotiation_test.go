package sfu

import "testing"

func TestNegotiator(t *testing.T) {
	// Each step is an input and the action it must produce.
	type step struct {
		in   string // "changed", "client-offer", "answered", "connected", "client-answer", "offer-failed"
		want action
	}
	cases := []struct {
		name   string
		steps  []step
		offers int
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
			name: "a second client offer is refused, in every state",
			steps: []step{{"client-offer", answer}, {"answered", none}, {"connected", none}, {"client-offer", refuse},
				{"changed", offer}, {"client-offer", refuse}, {"client-answer", none}, {"client-offer", refuse}},
			offers: 1, state: stable, stable: true,
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
			offers: 2, state: stable, stable: true,
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
				default:
					t.Fatalf("step %d: unknown input %q", i, s.in)
				}
				if got != s.want {
					t.Fatalf("step %d (%s): action %s, want %s (state %s)", i, s.in, got, s.want, n.state)
				}
			}
			if n.offers != tc.offers || n.state != tc.state || n.Stable() != tc.stable {
				t.Errorf("offers %d, state %s, Stable %v; want %d, %s, %v", n.offers, n.state, n.Stable(),
					tc.offers, tc.state, tc.stable)
			}
		})
	}
}

// TestNegotiatorBounded drives a negotiator with every sequence of up to 8 inputs and
// checks the invariants: never more offers than changes, at most one offer in flight.
func TestNegotiatorBounded(t *testing.T) {
	inputs := []string{"changed", "client-offer+answered", "connected", "client-answer", "offer-failed"}
	var walk func(n negotiator, depth, inFlight int)
	walk = func(n negotiator, depth, inFlight int) {
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
			m, f := n, inFlight
			var a action
			switch in {
			case "changed":
				a = m.Changed()
			case "client-offer+answered":
				if m.ClientOffer() == answer {
					a = m.Answered()
				}
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
			walk(m, depth-1, f)
		}
	}
	walk(negotiator{}, 8, 0)
}
