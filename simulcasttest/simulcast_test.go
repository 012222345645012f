package simulcasttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-rtc/parley/internal/netns"
	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/sfu"
)

// The layers, made from the sample clip (480x270) with ffmpeg: RID, scale divisor, bitrate.
// Their bitrates are far enough apart that the policer below takes the top one and leaves
// the middle one: about 100, 260 and 800 kbit/s.
var layers = []struct {
	rid     string
	div     int
	bitrate string
	width   int
}{
	{"q", 4, "100k", 120},
	{"h", 2, "260k", 240},
	{"f", 1, "800k", 480},
}

// policeRate is what the limited subscriber's namespace lets in, UDP bytes per second
// (iptables hashlimit: above it, packets are dropped): 640 kbit/s.
const policeRate = "80kb/s"

var nsName = regexp.MustCompile(`^parleysim-(\d+)$`)

// TestSimulcastLayerPerSubscriber: the publisher (in this process) sends layers q, h and f;
// the open subscriber (in this process, on the host) must receive f, and the limited one
// (a `parley call` process in a namespace whose incoming UDP is policed at 640 kbit/s) a
// lower layer, after the SFU has moved it down from f. Both must receive one RTP stream
// without a sequence number jump beyond loss and without a timestamp going back, which a
// layer switch without rewriting would show (layers have unrelated sequence numbers and
// timestamps), and decode key frames of the layers they get.
func TestSimulcastLayerPerSubscriber(t *testing.T) {
	netns.Require(t, "the simulcast test", "to build a network namespace and police its traffic")
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("the simulcast test needs ffmpeg to make the layers: %v", err)
	}
	video, _ := netns.MediaFiles(t)
	_, audio := netns.MediaFiles(t)
	bin := netns.BuildParley(t)
	layerFiles := makeLayers(t, video)
	audioClip, err := media.Load(audio)
	if err != nil {
		t.Fatal(err)
	}
	var simulcast []peer.SimulcastLayer
	for i, l := range layers {
		clip, err := media.Load(layerFiles[i])
		if err != nil {
			t.Fatal(err)
		}
		simulcast = append(simulcast, peer.SimulcastLayer{RID: l.rid, Video: clip.Video})
	}

	// The network: the limited subscriber's namespace, linked to the host, policed.
	netns.RemoveStale(t, nsName)
	pid := os.Getpid()
	subnet := 1 + pid%250
	gateway, addr := fmt.Sprintf("10.96.%d.1", subnet), fmt.Sprintf("10.96.%d.2", subnet)
	ns := netns.Add(t, fmt.Sprintf("parleysim-%d", pid))
	netns.Link(netns.Host(t), fmt.Sprintf("psim%d", pid), gateway+"/24", ns, "eth0", addr+"/24")
	ns.Exec("iptables", "-A", "INPUT", "-p", "udp", "-m", "hashlimit", "--hashlimit-name", fmt.Sprintf("psim%d", pid),
		"--hashlimit-above", policeRate, "--hashlimit-burst", "100kb", "--hashlimit-mode", "dstip", "-j", "DROP")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The server: signaling and SFU in this process, listening on the host's end of the link.
	srv := netns.StartServer(t, "server", gateway)
	defer srv.Close()
	s, url := srv.SFU, srv.URL

	type result struct {
		rep peer.Report
		err error
	}
	run := func(cfg peer.Config) (context.CancelFunc, chan result) {
		cctx, hangUp := context.WithCancel(ctx)
		done := make(chan result, 1)
		go func() {
			rep, err := peer.Run(cctx, cfg)
			done <- result{rep, err}
		}()
		return hangUp, done
	}
	quiet := srv.Log
	ids := make(chan string, 1)
	pubHangUp, pubDone := run(peer.Config{Server: url, Create: true, Group: true, Simulcast: simulcast,
		Audio: audioClip.Audio, ConnectTimeout: time.Minute, Logger: quiet, OnSession: func(id string) { ids <- id }})
	defer pubHangUp()
	var session string
	select {
	case session = <-ids:
	case r := <-pubDone:
		t.Fatalf("the publisher ended before its session was ready: %v", r.err)
	}
	openHangUp, openDone := run(peer.Config{Server: url, Join: session, ConnectTimeout: time.Minute, Logger: quiet})
	defer openHangUp()
	// The limited subscriber joins once the open one receives: the one not publishing.
	var openID string
	waitErr := netns.WaitFor(ctx, 2*time.Minute, func() bool {
		for _, p := range s.Stats().Participants {
			if p.Published == 0 && videoLayer(p) != "" {
				openID = p.ID
			}
		}
		return openID != ""
	})
	if waitErr != nil {
		t.Fatalf("the open subscriber receives no video: %v; SFU: %s", waitErr, summary(s.Stats()))
	}
	report := filepath.Join(t.TempDir(), "limited.json")
	limited := ns.Start(ctx, t, "limited subscriber", bin, "call", "--server", url, "--join", session,
		"--connect-timeout", "60s", "--report", report)

	// Wait for the state the test is about, with both on their layers for a while: the
	// SFU's estimate moves the limited subscriber down from f soon after it starts, and
	// may try f again later (then back down).
	var since time.Time
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := s.Stats()
		ol, ll := videoLayer(participant(st, openID)), videoLayer(limOf(st, openID))
		if ol == "f" && (ll == "q" || ll == "h") {
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) >= 3*time.Second {
				break
			}
		} else {
			since = time.Time{}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 s with the open subscriber on layer f and the limited one on q or h in 2 min; SFU: %s\n%s",
				summary(st), limited.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := s.Stats()
	t.Logf("SFU: %s", summary(st))
	open, limStats := participant(st, openID), limOf(st, openID)
	if sub := videoSub(limStats); sub.Switches < 2 {
		t.Errorf("the limited subscriber's video switched %d times; want >= 2 (its first layer, then down): %+v", sub.Switches, sub)
	}
	if limStats.EstimateKbps >= open.EstimateKbps {
		t.Errorf("the limited subscriber's estimate is %d kbit/s, the open one's %d; want it lower", limStats.EstimateKbps, open.EstimateKbps)
	}

	limited.Stop()
	openHangUp()
	openRes := <-openDone
	if openRes.err != nil {
		t.Fatalf("open subscriber: %v", openRes.err)
	}
	limRep, err := netns.ReadReport(report)
	if err != nil {
		t.Fatalf("limited subscriber: %v\n%s", err, limited.Output())
	}
	pubHangUp()
	if r := <-pubDone; r.err != nil {
		t.Errorf("publisher: %v", r.err)
	}

	check := func(who string, rep peer.Report, maxJump int, wantWidth func([]int) bool, want string) {
		var v *peer.RemoteTrack
		for i := range rep.RemoteTracks {
			if rep.RemoteTracks[i].Kind == "video" {
				v = &rep.RemoteTracks[i]
			}
		}
		if v == nil {
			t.Errorf("%s received no video track: %+v", who, rep)
			return
		}
		t.Logf("%s: %d video frames, %d packets, max sequence jump %d, %d timestamps back, key frame widths %v",
			who, v.VideoFrames, v.VideoPackets, v.MaxSeqJump, v.TimestampBackwards, v.KeyFrameWidths)
		if v.VideoFrames < 60 {
			t.Errorf("%s decoded %d video frames; want >= 60", who, v.VideoFrames)
		}
		if v.MaxSeqJump > maxJump || v.TimestampBackwards > 0 {
			t.Errorf("%s: the RTP stream jumped %d sequence numbers at most, and went back in time %d times; want <= %d and 0",
				who, v.MaxSeqJump, v.TimestampBackwards, maxJump)
		}
		if !wantWidth(v.KeyFrameWidths) {
			t.Errorf("%s received key frames %v pixels wide; want %s", who, v.KeyFrameWidths, want)
		}
	}
	full := layers[2].width
	// The open link loses nothing (loopback-like, between host addresses); NACK repairs a
	// rare drop. The limited one loses what the policer drops, single packets or short
	// runs; a switch without rewriting would jump by thousands.
	check("the open subscriber", openRes.rep, 64, func(w []int) bool { return len(w) > 0 && w[len(w)-1] == full },
		fmt.Sprintf("the last %d (layer f)", full))
	check("the limited subscriber", limRep, 500, func(w []int) bool {
		for _, x := range w {
			if x < full {
				return true
			}
		}
		return false
	}, fmt.Sprintf("some narrower than %d (layer q or h)", full))
}

func participant(st sfu.Stats, id string) sfu.ParticipantStats {
	for _, p := range st.Participants {
		if p.ID == id {
			return p
		}
	}
	return sfu.ParticipantStats{}
}

// limOf returns the subscriber that is not the publisher and not the open one.
func limOf(st sfu.Stats, open string) sfu.ParticipantStats {
	for _, p := range st.Participants {
		if p.Published == 0 && p.ID != open {
			return p
		}
	}
	return sfu.ParticipantStats{}
}

func videoSub(p sfu.ParticipantStats) sfu.SubscriptionStats {
	for _, s := range p.Subscriptions {
		if s.Layer != "" || s.TargetLayer != "" {
			return s
		}
	}
	return sfu.SubscriptionStats{}
}

func videoLayer(p sfu.ParticipantStats) string { return videoSub(p).Layer }

func summary(st sfu.Stats) string {
	var b strings.Builder
	for _, p := range st.Participants {
		fmt.Fprintf(&b, "\n  %s: published %d, estimate %d kbit/s, layers %+v, subscriptions %+v",
			p.ID[:6], p.Published, p.EstimateKbps, p.Layers, p.Subscriptions)
	}
	return b.String()
}

// makeLayers encodes the sample clip's first 10 s three times with ffmpeg (libvpx), at a
// quarter, half and full size, a key frame every 30 frames.
func makeLayers(t *testing.T, video string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, l := range layers {
		path := filepath.Join(dir, l.rid+".ivf")
		cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-t", "10", "-i", video,
			"-vf", fmt.Sprintf("scale=iw/%d:-2", l.div), "-c:v", "libvpx", "-b:v", l.bitrate, "-minrate", l.bitrate,
			"-maxrate", l.bitrate, "-g", "30", "-deadline", "realtime", "-cpu-used", "16", path)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg for layer %s: %v\n%s", l.rid, err, b)
		}
		out = append(out, path)
	}
	return out
}
