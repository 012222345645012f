package peer_test

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sfu"
	"github.com/parley-rtc/parley/signaling"
)

// The group calls' tests live here rather than in package sfu so that they never run at
// the same time as this package's other media tests: two packages' tests run in parallel,
// one package's tests one after the other, and the 2-core machine is not big enough for
// both at once with the race detector.

// startGroupServer runs a signaling server with an SFU on 127.0.0.1, as parley serve does.
func startGroupServer(t *testing.T) (string, *sfu.SFU) {
	t.Helper()
	return startGroupServerWith(t, sfu.Config{})
}

// startGroupServerWith is startGroupServer with an SFU configured as cfg, on loopback.
func startGroupServerWith(t *testing.T, cfg sfu.Config) (string, *sfu.SFU) {
	t.Helper()
	var sig *signaling.Server
	cfg.LoopbackOnly, cfg.Logger = true, quietLogger()
	cfg.Send = func(to string, m protocol.Message) { sig.SendFromSFU(to, m) }
	s, err := sfu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sig = signaling.New(signaling.Config{SFU: s, Logger: quietLogger()})
	srv := httptest.NewServer(sig)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sig.Close(ctx); err != nil {
			t.Error(err)
		}
		srv.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv.URL, s
}

// member is one native client in a group call; hangUp ends its call.
type member struct {
	hangUp context.CancelFunc
	done   chan result
}

// memberName is the display name of startGroup's member i; the last one has none.
func memberName(i, n int) string {
	if i == n-1 {
		return ""
	}
	return fmt.Sprintf("Member %d", i)
}

// startGroup starts a host that creates a group session and n-1 clients that join it, each
// sending real media and named by memberName, and returns them in that order.
func startGroup(t *testing.T, ctx context.Context, server string, n int) []*member {
	t.Helper()
	ivf, ogg, webm := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg"), load(t, "chrome-vp8-opus.webm")
	ids := make(chan string, 1)
	var session string
	members := make([]*member, n)
	for i := range members {
		cfg := peer.Config{Server: server, LoopbackOnly: true, Logger: quietLogger(),
			ConnectTimeout: 45 * time.Second, Name: memberName(i, n)}
		if i%2 == 0 {
			cfg.Video, cfg.Audio = ivf.Video, ogg.Audio
		} else {
			cfg.Video, cfg.Audio = webm.Video, webm.Audio
		}
		if i == 0 {
			cfg.Create, cfg.Group = true, true
			cfg.OnSession = func(id string) { ids <- id }
		} else {
			cfg.Join = session
		}
		callCtx, hangUp := context.WithCancel(ctx)
		m := &member{hangUp: hangUp, done: make(chan result, 1)}
		members[i] = m
		go func() {
			rep, err := peer.Run(callCtx, cfg)
			m.done <- result{rep, err}
		}()
		if i == 0 {
			select {
			case session = <-ids:
			case r := <-m.done:
				t.Fatalf("host ended before its session was ready: %v", r.err)
			}
		}
	}
	return members
}

// waitFor polls cond every 100 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settled reports whether the SFU has n participants, each publishing video and audio and
// receiving the tracks of the n-1 others, with no negotiation under way.
func settled(s *sfu.SFU, n int) bool {
	st := s.Stats()
	if len(st.Participants) != n {
		return false
	}
	for _, p := range st.Participants {
		if p.Published != 2 || p.Subscribed != 2*(n-1) || !p.Stable {
			return false
		}
	}
	return true
}

// byParticipant sums a report's remote tracks per participant: video frames, audio
// packets, and whether every track of that participant ended.
type received struct {
	video, audio int64
	tracks       int
	ended        int
}

func byParticipant(rep peer.Report) map[string]*received {
	out := map[string]*received{}
	for _, tr := range rep.RemoteTracks {
		r := out[tr.Participant]
		if r == nil {
			r = &received{}
			out[tr.Participant] = r
		}
		r.video += tr.VideoFrames
		r.audio += tr.AudioPackets
		r.tracks++
		if tr.Ended {
			r.ended++
		}
	}
	return out
}

// checkNames checks that member i of n knows the names of the others who have one, and
// that its report names each remote track's participant by that name.
func checkNames(t *testing.T, i, n int, rep peer.Report) {
	t.Helper()
	var want []string
	for j := range n {
		if name := memberName(j, n); j != i && name != "" {
			want = append(want, name)
		}
	}
	got := slices.Sorted(maps.Values(rep.Names))
	if !slices.Equal(got, want) {
		t.Errorf("participant %d knows the names %q, want %q", i, got, want)
	}
	for _, tr := range rep.RemoteTracks {
		if tr.Name != rep.Names[tr.Participant] {
			t.Errorf("participant %d: remote track %+v, want the name %q", i, tr, rep.Names[tr.Participant])
		}
	}
	if unnamed := slices.IndexFunc(rep.RemoteTracks, func(tr peer.RemoteTrack) bool { return tr.Name == "" }); i != n-1 && unnamed < 0 {
		t.Errorf("participant %d: no remote track without a name, but member %d has none: %+v", i, n-1, rep.RemoteTracks)
	}
}

// The thresholds are far below what 4 s of media bring (about 120 frames and 200 audio
// packets per participant), so a loaded machine passes; a track that is not forwarded
// at all fails.
const minFrames, minAudio = 30, 50

func TestGroupCall(t *testing.T) {
	for _, n := range []int{3, 4} {
		t.Run(fmt.Sprintf("%d participants", n), func(t *testing.T) {
			server, s := startGroupServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			members := startGroup(t, ctx, server, n)
			defer func() {
				for _, m := range members {
					m.hangUp()
				}
			}()
			waitFor(t, 60*time.Second, "every participant receiving every other's tracks", func() bool { return settled(s, n) })
			time.Sleep(4 * time.Second)
			// Nothing was taken away during the call. (At hang-up a participant may see the
			// others' tracks end before its own hang-up: their ends are not asserted.)
			if !settled(s, n) {
				t.Errorf("after 4 s the SFU no longer has every subscription: %+v", s.Stats().Participants)
			}
			for _, m := range members {
				m.hangUp()
			}
			for i, m := range members {
				r := <-m.done
				if r.err != nil {
					t.Fatalf("participant %d: %v", i, r.err)
				}
				got := byParticipant(r.rep)
				if len(got) != n-1 {
					t.Errorf("participant %d received from %d participants, want %d: %+v", i, len(got), n-1, r.rep.RemoteTracks)
				}
				checkNames(t, i, n, r.rep)
				for from, rc := range got {
					t.Logf("participant %d from %s: %d video frames, %d audio packets", i, from[:6], rc.video, rc.audio)
					if rc.tracks != 2 || rc.video < minFrames || rc.audio < minAudio {
						t.Errorf("participant %d from %s: %d tracks, %d video frames, %d audio packets; want 2 tracks, >= %d frames, >= %d packets",
							i, from, rc.tracks, rc.video, rc.audio, minFrames, minAudio)
					}
				}
			}
			st := s.Stats()
			for _, p := range st.Participants {
				t.Logf("sfu: %+v", p)
			}
			// All media went through the SFU's one port, in batches: every RTP packet
			// written to a subscriber is a datagram of the port.
			t.Logf("sfu: %d RTP packets written; media port %v: %+v", st.Written, s.MediaAddrs(), st.Media)
			if st.Written == 0 || st.Media.Sent < st.Written || st.Media.Batches == 0 || st.Media.Batches > st.Media.Sent {
				t.Errorf("sfu: %d RTP packets written, media port %+v", st.Written, st.Media)
			}
		})
	}
}

// TestGroupLeave has one of three participants leave: the two others' tracks of it end, the
// SFU's offers stay bounded, and once everyone has left no goroutine of the call remains.
func TestGroupLeave(t *testing.T) {
	server, s := startGroupServer(t)
	runtime.GC()
	baseline := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	members := startGroup(t, ctx, server, 3)
	defer func() {
		for _, m := range members {
			m.hangUp()
		}
	}()
	waitFor(t, 60*time.Second, "every participant receiving every other's tracks", func() bool { return settled(s, 3) })
	time.Sleep(2 * time.Second)

	members[2].hangUp()
	if r := <-members[2].done; r.err != nil {
		t.Fatalf("the one who left: %v", r.err)
	}
	waitFor(t, 30*time.Second, "the two others receiving each other only", func() bool { return settled(s, 2) })
	time.Sleep(time.Second)
	offers := map[string]int{}
	for _, p := range s.Stats().Participants {
		offers[p.ID] = p.OffersSent
	}
	// The second stayer leaves before the first, so that what it saw of the first is
	// untouched by leaves (the first, leaving later, may see its tracks end).
	members[1].hangUp()
	b := <-members[1].done
	members[0].hangUp()
	a := <-members[0].done
	for _, r := range []result{a, b} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	// Each stayer saw two participants; the one both saw is the one who left.
	fromA, fromB := byParticipant(a.rep), byParticipant(b.rep)
	var left string
	for id := range fromA {
		if fromB[id] != nil {
			left = id
		}
	}
	if left == "" || len(fromA) != 2 || len(fromB) != 2 {
		t.Fatalf("stayers received from %d and %d participants with none in common", len(fromA), len(fromB))
	}
	for i, got := range []map[string]*received{fromA, fromB} {
		for from, rc := range got {
			t.Logf("stayer %d from %s: %d video frames, %d audio packets, %d of %d tracks ended",
				i, from[:6], rc.video, rc.audio, rc.ended, rc.tracks)
			wantEnded := 0
			switch {
			case from == left:
				wantEnded = 2
			case i == 0:
				wantEnded = rc.ended // the second stayer left first: its tracks may have ended
			}
			if rc.tracks != 2 || rc.ended != wantEnded || rc.video < minFrames || rc.audio < minAudio {
				t.Errorf("stayer %d from %s: %d tracks, %d ended, %d frames, %d packets; want 2 tracks, %d ended, >= %d frames, >= %d packets",
					i, from, rc.tracks, rc.ended, rc.video, rc.audio, wantEnded, minFrames, minAudio)
			}
		}
	}
	// Each stayer's subscriptions changed at most 5 times (the other two's 2 tracks each,
	// then one leave), and the SFU makes no offer without a change.
	if len(offers) != 2 {
		t.Fatalf("the SFU had %d participants after one left, want 2", len(offers))
	}
	for id, n := range offers {
		t.Logf("offers to %s: %d", id[:6], n)
		if n < 2 || n > 5 {
			t.Errorf("the SFU sent %s %d offers, want 2 to 5", id, n)
		}
	}

	waitFor(t, 30*time.Second, "the SFU empty", func() bool { st := s.Stats(); return st.Rooms == 0 && len(st.Participants) == 0 })
	g := baseline
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		runtime.GC()
		if g = runtime.NumGoroutine(); g <= baseline {
			break
		}
	}
	t.Logf("goroutines: %d, baseline %d", g, baseline)
	if g > baseline {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%d goroutines outlived the call:\n%s", g-baseline, buf[:n])
	}
}

// TestMoveToSFU: a two-person call that a third participant joins moves to the SFU; the
// first two do not hang up, and all three end up with each other's media.
func TestMoveToSFU(t *testing.T) {
	server, s := startGroupServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	ivf, ogg, webm := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg"), load(t, "chrome-vp8-opus.webm")
	ids := make(chan string, 1)
	up := make(chan string, 3)
	configs := []peer.Config{
		{Create: true, Video: ivf.Video, Audio: ogg.Audio, OnSession: func(id string) { ids <- id }},
		{Video: webm.Video, Audio: webm.Audio},
		{Video: ivf.Video, Audio: ogg.Audio},
	}
	names := []string{"host", "guest", "third"}
	var members []*member
	start := func(i int, session string) {
		cfg := configs[i]
		cfg.Server, cfg.LoopbackOnly, cfg.Logger, cfg.ConnectTimeout = server, true, quietLogger(), 45*time.Second
		if !cfg.Create {
			cfg.Join = session
		}
		cfg.OnConnected = func() { up <- names[i] }
		callCtx, hangUp := context.WithCancel(ctx)
		m := &member{hangUp: hangUp, done: make(chan result, 1)}
		members = append(members, m)
		go func() {
			rep, err := peer.Run(callCtx, cfg)
			m.done <- result{rep, err}
		}()
	}
	start(0, "")
	session := <-ids
	start(1, session)
	for range 2 {
		select {
		case who := <-up:
			t.Logf("%s connected peer to peer", who)
		case <-time.After(60 * time.Second):
			t.Fatal("the two-person call did not connect")
		}
	}
	time.Sleep(time.Second) // let the peer-to-peer call carry media a while
	start(2, session)
	waitFor(t, 90*time.Second, "three participants settled in the SFU", func() bool { return settled(s, 3) })
	time.Sleep(4 * time.Second) // media time, not an assertion
	for _, m := range members {
		m.hangUp()
	}
	for i, m := range members {
		r := <-m.done
		if r.err != nil {
			t.Errorf("%s: %v", names[i], r.err)
			continue
		}
		got := byParticipant(r.rep)
		t.Logf("%s: end %s, received %+v", names[i], r.rep.End, fmtReceived(got))
		p2p := got["parley"] // the peer-to-peer tracks are named by the native sender
		delete(got, "parley")
		if i < 2 && (p2p == nil || p2p.ended != p2p.tracks || p2p.video+p2p.audio == 0) {
			t.Errorf("%s: the peer-to-peer tracks did not carry media and end: %+v", names[i], p2p)
		}
		if len(got) != 2 {
			t.Errorf("%s receives from %d participants through the SFU, want 2", names[i], len(got))
		}
		for id, rc := range got {
			if rc.video < minFrames || rc.audio < minAudio {
				t.Errorf("%s from %s: %d video frames, %d audio packets; want >= %d, %d", names[i], id, rc.video, rc.audio, minFrames, minAudio)
			}
		}
	}
}

func fmtReceived(m map[string]*received) string {
	s := ""
	for id, r := range m {
		s += fmt.Sprintf("[%s: %d frames %d audio, %d/%d tracks ended] ", id, r.video, r.audio, r.ended, r.tracks)
	}
	return s
}

// joiner returns a function that starts a native member of the group session with the
// given media (nil for none of a kind), and one that hangs a member up and waits until only
// the host is left, and no offer is in flight.
func joiner(t *testing.T, ctx context.Context, server string, s *sfu.SFU) (
	join func(name string, video, audio *media.Stream) *member, leave func(name string, m *member)) {
	session := s.Stats().Participants[0].Session
	join = func(name string, video, audio *media.Stream) *member {
		callCtx, hangUp := context.WithCancel(ctx)
		m := &member{hangUp: hangUp, done: make(chan result, 1)}
		go func() {
			rep, err := peer.Run(callCtx, peer.Config{Server: server, LoopbackOnly: true, Logger: quietLogger(),
				ConnectTimeout: 45 * time.Second, Name: name, Join: session, Video: video, Audio: audio})
			m.done <- result{rep, err}
		}()
		return m
	}
	leave = func(name string, m *member) {
		m.hangUp()
		if r := <-m.done; r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		waitFor(t, 30*time.Second, "the host alone after "+name+" left", func() bool {
			st := s.Stats()
			return len(st.Participants) == 1 && st.Participants[0].Subscribed == 0 && st.Participants[0].Stable
		})
	}
	return join, leave
}

// receiving reports whether the SFU has two participants, each stable and receiving the
// given number of tracks: the host (hostID) subs, the other others.
func receiving(s *sfu.SFU, hostID string, subs, others int) bool {
	st := s.Stats()
	if len(st.Participants) != 2 {
		return false
	}
	for _, p := range st.Participants {
		want := others
		if p.ID == hostID {
			want = subs
		}
		if !p.Stable || p.Subscribed != want {
			return false
		}
	}
	return true
}

// TestGroupSectionsReused: members come and go, and a stayer's peer connection does not
// grow: the SFU sends each newcomer's tracks in the media sections of those who left, so
// its offers to the host hold 4 sections (its own two, one member's two) throughout, which
// is all MaxSections allows here. A hosts; B, then C, come and go; D joins. A receives each
// one's media on new remote tracks, without rejoining.
func TestGroupSectionsReused(t *testing.T) {
	server, s := startGroupServerWith(t, sfu.Config{MaxSections: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	members := startGroup(t, ctx, server, 2)
	a := members[0]
	defer a.hangUp()
	waitFor(t, 60*time.Second, "A and B in the call", func() bool { return settled(s, 2) })
	join, leave := joiner(t, ctx, server, s)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	var aID string
	sectionsOfA := func() int {
		for _, p := range s.Stats().Participants {
			if p.ID == aID {
				return p.Sections
			}
		}
		return -1
	}
	time.Sleep(2 * time.Second) // media time, not an assertion
	leave("B", members[1])
	aID = s.Stats().Participants[0].ID
	for _, name := range []string{"C", "D"} {
		m := join(name, ivf.Video, ogg.Audio)
		defer m.hangUp()
		waitFor(t, 60*time.Second, "A and "+name+" in the call", func() bool { return settled(s, 2) })
		if n := sectionsOfA(); n != 4 {
			t.Errorf("A's peer connection has %d media sections with %s in the call, want 4", n, name)
		}
		time.Sleep(2 * time.Second) // media time, not an assertion
		if name == "C" {
			leave(name, m)
		}
	}
	a.hangUp()
	ra := <-a.done
	if ra.err != nil {
		t.Fatalf("A: %v", ra.err)
	}
	if ra.rep.Rejoins != 0 {
		t.Errorf("A rejoined the group %d times, want 0: its connection should not grow", ra.rep.Rejoins)
	}
	got := byParticipant(ra.rep)
	t.Logf("A received %s", fmtReceived(got))
	if len(got) != 3 {
		t.Fatalf("A received from %d participants, want 3 (B, C, D)", len(got))
	}
	for id, rc := range got {
		if rc.tracks != 2 || rc.video < minFrames || rc.audio < minAudio {
			t.Errorf("A from %s: %d tracks, %d video frames, %d audio packets; want 2, >= %d, >= %d",
				id, rc.tracks, rc.video, rc.audio, minFrames, minAudio)
		}
		if name := ra.rep.Names[id]; name != "D" && rc.ended != 2 {
			t.Errorf("A from %s (%q): %d of its tracks ended, want both: it left", id, name, rc.ended)
		}
	}
}

// TestGroupRejoin: once the SFU can offer a participant no more (here over 3 media
// sections; in production when an offer outgrows a signaling message), the participant
// leaves and joins again with a new peer connection, and receives the newcomer's media that
// its old connection could not. A hosts; B, audio only, comes and goes, leaving an audio
// section free in A's connection; C, video only, joins, and A's next offer would need a
// video section more: 4.
func TestGroupRejoin(t *testing.T) {
	server, s := startGroupServerWith(t, sfu.Config{MaxSections: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	members := startGroup(t, ctx, server, 1)
	a := members[0]
	defer a.hangUp()
	waitFor(t, 60*time.Second, "A in the call", func() bool {
		st := s.Stats()
		return len(st.Participants) == 1 && st.Participants[0].Published == 2
	})
	aID := s.Stats().Participants[0].ID
	join, leave := joiner(t, ctx, server, s)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	b := join("B", nil, ogg.Audio)
	defer b.hangUp()
	waitFor(t, 60*time.Second, "A and B receiving each other", func() bool { return receiving(s, aID, 1, 2) })
	leave("B", b)
	c := join("C", ivf.Video, nil)
	defer c.hangUp()
	waitFor(t, 60*time.Second, "A and C receiving each other", func() bool { return receiving(s, aID, 1, 2) })
	time.Sleep(4 * time.Second) // media time, not an assertion
	a.hangUp()
	ra := <-a.done
	c.hangUp()
	rc := <-c.done
	if ra.err != nil || rc.err != nil {
		t.Fatalf("A: %v; C: %v", ra.err, rc.err)
	}
	if ra.rep.Rejoins != 1 {
		t.Errorf("A rejoined the group %d times, want 1", ra.rep.Rejoins)
	}
	cID := ""
	for id, name := range ra.rep.Names {
		if name == "C" {
			cID = id
		}
	}
	fromC := byParticipant(ra.rep)[cID]
	if cID == "" || fromC == nil || fromC.video < minFrames {
		t.Fatalf("A received from C (%q): %+v; want >= %d video frames. A's tracks: %+v",
			cID, fromC, minFrames, ra.rep.RemoteTracks)
	}
	fromA := byParticipant(rc.rep)[aID]
	t.Logf("C from A: %+v", fromA)
	if fromA == nil || fromA.video < minFrames || fromA.audio < minAudio {
		t.Errorf("C received from A: %+v; want >= %d video frames and %d audio packets", fromA, minFrames, minAudio)
	}
	if ra.rep.End != "interrupted" {
		t.Errorf("A's call ended %q, want interrupted (its hang-up): the rejoin is not the end of its call", ra.rep.End)
	}
}
