package sfu

// negotiator decides, for one participant's peer connection, when the SFU answers and when
// it offers. It is a plain value, without I/O: the shell reports what happened and does
// what the returned action says.
//
// The rules (docs/protocol.md, "Group sessions") are perfect negotiation's (W3C webrtc-pc
// §10.7), with the SFU as the impolite peer and the participant as the polite one:
//   - The participant offers first, with the tracks it publishes; the SFU answers. Until
//     then the SFU never offers, so the first exchange cannot collide.
//   - The SFU's first offer also waits until the participant's peer connection has
//     connected. Pion (v4.2) starts a peer connection's ICE transport asynchronously after
//     SetRemoteDescription(answer); an offer applied before that sees "new" ICE
//     credentials and restarts ICE (new ufrag, candidates re-gathered), and the SFU drops
//     the new candidates that arrive before the answer ("doesn't match the current
//     ufrags"): at 200 subscribers, one now and then failed to connect.
//   - The SFU offers when what the participant should receive changes. At most one SFU
//     offer is in flight; changes while it is (or while the first client offer is awaited)
//     mark the negotiator dirty, and one offer covers them all once the answer is in. So
//     every offer is caused by at least one change, and a participant receives no more
//     offers than there were changes: renegotiation cannot loop.
//   - The participant offers again when what it publishes changes (a screen share starts or
//     stops). With no SFU offer in flight the SFU answers. While one is in flight the two
//     offers have crossed (glare): the SFU, impolite, ignores the participant's offer and
//     waits for the answer to its own; the participant, polite, rolls its offer back,
//     answers, and offers again afterwards. Client offers never make the SFU offer by
//     themselves, so they cannot start a loop either.
type negotiator struct {
	state     negState
	dirty     bool // subscriptions changed since the last offer was made
	connected bool // the peer connection has connected (once is enough)
	offers    int  // SFU offers made and sent
	// changes counts Changed calls; offers <= changes always holds.
	changes int
	glares  int // client offers ignored because they crossed an SFU offer
}

type negState int

const (
	awaitingClientOffer negState = iota // nothing negotiated yet
	stable                              // no offer in flight
	serverOffered                       // an SFU offer awaits its answer
)

func (s negState) String() string {
	switch s {
	case awaitingClientOffer:
		return "awaiting-client-offer"
	case stable:
		return "stable"
	case serverOffered:
		return "server-offered"
	}
	return "unknown"
}

// action is what the shell must do next.
type action int

const (
	none   action = iota
	offer         // sync the peer connection's senders with the subscriptions and offer
	answer        // apply the client's offer and answer it
	glare         // the client's offer crossed ours: ignore it, and tell the client why
	ignore        // drop the message (an answer nobody asked for)
)

func (a action) String() string {
	return [...]string{"none", "offer", "answer", "glare", "ignore"}[a]
}

// Changed says the participant's subscriptions changed (a track to add or to remove).
func (n *negotiator) Changed() action {
	n.changes++
	n.dirty = true
	return n.next()
}

// ClientOffer says an offer came from the participant. An answer action is followed, once
// the shell has answered (or failed to), by a call to Answered.
func (n *negotiator) ClientOffer() action {
	if n.state == serverOffered {
		n.glares++
		return glare
	}
	return answer
}

// Answered says the shell is done with the client's offer: it answered it, or, for an
// offer after the first, could not but has its peer connection back in the stable
// signaling state. Changes that waited for it are offered now. (A first offer that could
// not be answered leaves everything to wait for the next one: no Answered.)
func (n *negotiator) Answered() action {
	if n.state == serverOffered {
		return none // no client offer was being answered
	}
	n.state = stable
	return n.next()
}

// ClientAnswer says an answer came from the participant.
func (n *negotiator) ClientAnswer() action {
	if n.state != serverOffered {
		return ignore
	}
	n.state = stable
	return n.next()
}

// Connected says the participant's peer connection has connected: its side has started
// ICE with the SFU's credentials, so an SFU offer no longer looks like an ICE restart.
func (n *negotiator) Connected() action {
	if n.connected { // a reconnection: nothing to do (a failed offer waits for a change)
		return none
	}
	n.connected = true
	return n.next()
}

// Deferred says the offer just made left some changes out, for the next offer: a new track
// waits for a media section that this offer ends, which is free once it is answered. Only
// an offer that both ends and adds tracks defers, so it covers at least two changes, and
// offers <= changes still holds.
func (n *negotiator) Deferred() {
	if n.state == serverOffered {
		n.dirty = true
	}
}

// OfferFailed says the shell could not make or send the offer it was told to: the changes
// it was for are still to be offered, at the next change.
func (n *negotiator) OfferFailed() {
	if n.state == serverOffered {
		n.state = stable
		n.dirty = true
		n.offers-- // it never went out; its retry is the offer for these changes
	}
}

// Stable reports whether nothing is in flight and nothing is waiting to be offered.
func (n *negotiator) Stable() bool { return n.state == stable && !n.dirty }

// next offers if changes are waiting, nothing is in flight and the peer connection has
// connected.
func (n *negotiator) next() action {
	if n.state != stable || !n.dirty || !n.connected {
		return none
	}
	n.state = serverOffered
	n.dirty = false
	n.offers++
	return offer
}
