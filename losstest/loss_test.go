package losstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-rtc/parley/internal/netns"
	"github.com/parley-rtc/parley/sfu"
)

// The test network. The server (signaling and SFU) runs in the test process, in the host's
// namespace, so that the test reads the SFU's counters directly; each client, a `parley
// call` process, runs in a namespace of its own, joined to the host by a veth pair:
//
//	pub  10.98.N.2  ── 10.98.N.1   ┐
//	sub1 10.98.N+1.2 ── 10.98.N+1.1 ├ host: the server listens on 10.98.N.1
//	sub2 10.98.N+2.2 ── 10.98.N+2.1 ┘
//
// N is 1 + 3·(PID mod 85), so that two test processes do not share addresses. A client
// reaches the others' gateways through its own (host addresses are the host's, whatever
// the interface), and nothing else: the namespaces have no default route.
//
// The loss is on the server's link, for media: in the lossy run every client namespace
// drops 5 % of the UDP packets on their way between it and the server, the publisher's
// outgoing ones and the subscribers' incoming ones (iptables' statistic match: this kernel
// has no netem). So each media packet crosses two lossy hops, and both halves of the SFU's
// loss repair work: its NACK generator asks the publisher again for what it missed, and
// its NACK responder resends from its cache what a subscriber missed. TCP is spared: a lost
// segment of the signaling WebSocket would delay the renegotiation that brings the
// subscribers their tracks by a retransmission timeout, which would count against the
// lossy run's frames without being about media repair.
const (
	testNet  = "10.98.0.0/16"
	lossRate = "0.05"
	// callTime is how long each subscriber stays after its call connects.
	callTime = 6 * time.Second
	// minRatio is the share of the lossless run's video frames the lossy run's subscribers
	// must decode (issue 5).
	minRatio = 0.90
)

// TestNACKRepairsLoss makes the same group call twice, without loss and with 5 % loss on
// the server's link: one publisher sends the sample video and audio through the SFU to
// two subscribers. Under loss, each subscriber must still receive at least 90 % of the
// video frames a subscriber received without it, and the SFU must have counted NACKs and
// retransmissions.
//
// A frame counts when Pion's sample builder in package peer releases it: every packet of
// it arrived (a lost one repaired in time, within 64 packets), which is what decoding a
// frame takes here. Frames a decoder would show broken, because a frame they refer to was
// lost, are not told apart: nothing in this test decodes VP8.
func TestNACKRepairsLoss(t *testing.T) {
	netns.Require(t, "the loss test", "to build network namespaces and drop packets in them")
	video, audio := netns.MediaFiles(t)
	bin := netns.BuildParley(t)
	n := newNetwork(t)

	// End well before go test's -timeout would, which kills the test without its cleanup.
	deadline := time.Now().Add(4 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	clean := n.call(ctx, t, "lossless", bin, video, audio)
	if t.Failed() {
		t.FailNow()
	}
	n.setLoss(t, true)
	lossy := n.call(ctx, t, "lossy", bin, video, audio)
	n.setLoss(t, false)
	if t.Failed() {
		t.FailNow()
	}

	var base float64
	for _, f := range clean.frames {
		base += float64(f)
	}
	base /= float64(len(clean.frames))
	t.Logf("lossless: subscribers received %v video frames; SFU: %s", clean.frames, nackSummary(clean.stats))
	t.Logf("lossy:    subscribers received %v video frames; SFU: %s", lossy.frames, nackSummary(lossy.stats))
	for i, f := range lossy.frames {
		ratio := float64(f) / base
		t.Logf("lossy sub%d: %.1f %% of the lossless run's frames (%d of %.1f)", i+1, 100*ratio, f, base)
		if ratio < minRatio {
			t.Errorf("with %s loss, sub%d received %d complete video frames, %.1f %% of the %.1f of the lossless run; want at least %.0f %%",
				lossRate, i+1, f, 100*ratio, base, 100*minRatio)
		}
	}
	if lossy.stats.NACKsReceived == 0 || lossy.stats.Retransmissions == 0 {
		t.Errorf("with loss on the subscribers' link, the SFU counted %d NACKs from subscribers and %d retransmissions; want both > 0",
			lossy.stats.NACKsReceived, lossy.stats.Retransmissions)
	}
	if lossy.stats.NACKsSent == 0 {
		t.Errorf("with loss on the publisher's link, the SFU sent %d NACKs to the publisher; want > 0", lossy.stats.NACKsSent)
	}
}

// result is what one call gave: each subscriber's complete video frames, and the SFU's
// counters at its end.
type result struct {
	frames []int64
	stats  sfu.Stats
}

// publishing reports whether the SFU has forwarded media of both of a participant's
// tracks (video and audio).
func publishing(s sfu.Stats) bool {
	for _, p := range s.Participants {
		if p.Published == 2 && p.Forwarded > 0 {
			return true
		}
	}
	return false
}

func nackSummary(s sfu.Stats) string {
	var forwarded uint64
	for _, p := range s.Participants {
		forwarded += p.Forwarded
	}
	return fmt.Sprintf("%d packets forwarded (to each subscriber); %d NACKs from subscribers naming %d packets, %d retransmissions; "+
		"%d NACKs to the publisher naming %d packets",
		forwarded, s.NACKsReceived, s.NACKedPackets, s.Retransmissions, s.NACKsSent, s.NACKsSentPackets)
}

// call runs a server and a group call with one publisher and two subscribers, until the
// subscribers hang up, callTime after they connect.
func (n *network) call(ctx context.Context, t *testing.T, name, bin, video, audio string) result {
	t.Helper()
	srv := netns.StartServer(t, name, n.clients[0].gateway)
	defer srv.Close()
	media, url := srv.SFU, srv.URL
	dir := t.TempDir()
	pub := n.clients[0].Start(ctx, t, name+" pub", bin, "call", "--server", url, "--new", "--group",
		"--video", video, "--audio", audio, "--connect-timeout", "60s")
	line, err := pub.WaitLine("session ", 30*time.Second)
	if err != nil {
		t.Errorf("%s: the publisher did not create a session: %v\n%s", name, err, pub.Output())
		return result{}
	}
	session := strings.TrimSpace(strings.TrimPrefix(line, "session "))
	// The subscribers' calls last callTime from when each connects, so they start once the
	// publisher's media reaches the SFU: under loss, the publisher's DTLS handshake can take
	// seconds (its retransmission timer starts at 1 s, RFC 6347 §4.2.4.1), which would count
	// against the lossy run's frames.
	if err := netns.WaitFor(ctx, 60*time.Second, func() bool { return publishing(media.Stats()) }); err != nil {
		t.Errorf("%s: the publisher's media did not reach the SFU: %v; SFU: %+v\n%s", name, err, media.Stats(), pub.Output())
		return result{}
	}
	subs := make([]*netns.Proc, len(n.clients)-1)
	reports := make([]string, len(subs))
	for i := range subs {
		reports[i] = filepath.Join(dir, fmt.Sprintf("sub%d.json", i+1))
		subs[i] = n.clients[i+1].Start(ctx, t, fmt.Sprintf("%s sub%d", name, i+1), bin, "call", "--server", url,
			"--join", session, "--duration", callTime.String(), "--connect-timeout", "60s", "--report", reports[i])
	}
	var r result
	for i, s := range subs {
		if err := s.Wait(); err != nil {
			t.Errorf("%s: sub%d: parley call: %v\n%s", name, i+1, err, s.Output())
		}
	}
	r.stats = media.Stats()
	// The publisher sends until told to stop: it must outlast the subscribers' calls,
	// which start when each connects.
	pub.Stop()
	for i, path := range reports {
		rep, err := netns.ReadReport(path)
		if err != nil {
			t.Errorf("%s: sub%d: %v\n%s", name, i+1, err, subs[i].Output())
			continue
		}
		t.Logf("%s sub%d: connected in %.0f ms; %d video frames, %d audio packets; remote tracks %+v",
			name, i+1, rep.ConnectedMS, rep.VideoFramesReceived, rep.AudioPacketsReceived, rep.RemoteTracks)
		if rep.End != "duration" || rep.VideoFramesReceived == 0 {
			t.Errorf("%s: sub%d's call ended with %q after %d video frames; want it to last its duration, with video: %+v\n%s",
				name, i+1, rep.End, rep.VideoFramesReceived, rep, subs[i].Output())
		}
		r.frames = append(r.frames, rep.VideoFramesReceived)
	}
	if t.Failed() {
		t.Logf("%s", pub.Output())
	}
	return r
}

// network is the test's namespaces: the publisher's first, then the subscribers'.
type network struct {
	t       *testing.T
	clients []client
}

// client is a namespace with a name unique to this test process, linked to the host.
type client struct {
	netns.NS
	role             string
	addr, gateway    string // the client's address, and the host's end of its link
	publisher        bool
	hostIf, clientIf string
}

var nsName = regexp.MustCompile(`^parleyloss-(\d+)-(pub|sub\d)$`)

// newNetwork makes the namespaces and links; they are removed when the test ends, however
// it ends, and those a killed test process left behind at the next run. Removing a
// namespace removes its veth pair, the host's end too.
func newNetwork(t *testing.T) *network {
	t.Helper()
	netns.RemoveStale(t, nsName)
	pid := os.Getpid()
	n := &network{t: t}
	for i, role := range []string{"pub", "sub1", "sub2"} {
		subnet := 1 + 3*(pid%85) + i
		c := client{NS: netns.Add(t, fmt.Sprintf("parleyloss-%d-%s", pid, role)), role: role, publisher: i == 0,
			addr: fmt.Sprintf("10.98.%d.2", subnet), gateway: fmt.Sprintf("10.98.%d.1", subnet),
			hostIf: fmt.Sprintf("pl%d-%s", pid, role), clientIf: "eth0"}
		netns.Link(netns.Host(t), c.hostIf, c.gateway+"/24", c.NS, c.clientIf, c.addr+"/24")
		c.IP("route", "add", testNet, "via", c.gateway)
		n.clients = append(n.clients, c)
	}
	return n
}

// setLoss adds or removes the rules that drop 5 % of the UDP packets between each client
// and the server: the publisher's outgoing ones, the subscribers' incoming ones.
func (n *network) setLoss(t *testing.T, on bool) {
	t.Helper()
	op := "-A"
	if !on {
		op = "-D"
	}
	for _, c := range n.clients {
		chain := "INPUT"
		if c.publisher {
			chain = "OUTPUT"
		}
		c.Exec("iptables", op, chain, "-p", "udp", "-m", "statistic", "--mode", "random",
			"--probability", lossRate, "-j", "DROP")
	}
}
