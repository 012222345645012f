package sfu_test

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sfu"
)

// TestRoomsIndependent: while one group's negotiation is stuck (here the SFU's message
// to its member cannot be delivered), another group's member still gets its answer: each
// group's events are handled on their own.
func TestRoomsIndependent(t *testing.T) {
	block := make(chan struct{})
	var unblock sync.Once
	release := func() { unblock.Do(func() { close(block) }) }
	answers := make(chan string, 16)
	s, err := sfu.New(sfu.Config{LoopbackOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Send: func(to string, m protocol.Message) {
			if to == "X" {
				<-block
			}
			if _, ok := m.(protocol.Answer); ok {
				answers <- to
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer release() // runs before Close: nothing stays blocked
	join := func(session, id string) {
		s.Handle(protocol.PeerJoined{SessionID: session, PeerID: id})
		s.Handle(protocol.Offer{SessionID: session, From: id, To: protocol.ServerPeer, SDP: receiveOffer(t)})
	}
	join("group-x", "X") // its answer cannot be delivered: group X's handling is stuck
	join("group-y", "Y")
	// The next answer must go to want, within 20 s.
	expectAnswer := func(want, why string) {
		t.Helper()
		select {
		case to := <-answers:
			if to != want {
				t.Fatalf("answer to %s, want %s", to, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("group %s's member got no answer %s", want, why)
		}
	}
	expectAnswer("Y", "while group X was stuck")
	release()
	expectAnswer("X", "once its messages could be delivered")
}
