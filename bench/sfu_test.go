package bench_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/parley-rtc/parley/bench"
)

// TestSFU runs the SFU benchmark with 3 subscribers for 2 s against a child parley serve,
// and checks that it measured something real and left nothing behind.
func TestSFU(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the parley binary and runs it as a server")
	}
	parley := buildParley(t)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.SFU(ctx, bench.SFUConfig{Parley: parley, Subscribers: []int{3}, Duration: 2 * time.Second,
		Video: ivf.Video, Audio: ogg.Audio, Stderr: testWriter{t}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(res.Runs))
	}
	r := res.Runs[0]
	t.Logf("%+v", r)
	if r.Error != "" || r.Joined != 3 {
		t.Fatalf("run not measured: %d of 3 subscribers joined: %s", r.Joined, r.Error)
	}
	// The sample media is about 75 video and 50 audio packets per second.
	if r.Published < 100 || r.PublishedPerSec <= 0 {
		t.Errorf("publisher wrote %d packets (%.0f/s) in the window, want a real stream", r.Published, r.PublishedPerSec)
	}
	if r.Received <= 0 || r.ReceivedPerSec <= 0 || r.Delivered <= 0 {
		t.Errorf("received %d packets (%.0f/s), delivered %d: want > 0", r.Received, r.ReceivedPerSec, r.Delivered)
	}
	if r.Delivered > 3*r.Published {
		t.Errorf("delivered %d packets of %d published to 3 subscribers: a packet counted twice", r.Delivered, r.Published)
	}
	if r.Loss < 0 || r.Loss >= 0.5 {
		t.Errorf("loss %.3f, want in [0, 0.5) on loopback", r.Loss)
	}
	if runtime.GOOS == "linux" && (r.ServerCPUMS <= 0 || r.ServerUSPerPacket <= 0) {
		t.Errorf("server CPU %v ms, %v µs per packet: want > 0 for a server that forwarded %d packets",
			r.ServerCPUMS, r.ServerUSPerPacket, r.Received)
	}
	// The server's own count, over its own reading of the window (which starts and ends a
	// moment apart from the subscribers'): about what they received, at most what 3
	// subscribers could be sent.
	if float64(r.Written) < 0.8*float64(r.Received) || float64(r.Written) > 1.2*float64(3*r.Published) || r.ServerUSPerWritten <= 0 {
		t.Errorf("server wrote %d packets (%.1f µs each), subscribers received %d of %d published",
			r.Written, r.ServerUSPerWritten, r.Received, r.Published)
	}
	// Every RTP packet written is a datagram of the media port, give or take a frame's
	// burst still queued at either end of the window.
	if float64(r.MediaDatagrams) < 0.8*float64(r.Written) || r.MediaBatches <= 0 || r.MediaBatches > r.MediaDatagrams {
		t.Errorf("media port: %d datagrams in %d system calls for %d RTP packets written", r.MediaDatagrams, r.MediaBatches, r.Written)
	}
	// A video frame's packets to one subscriber go as one segmented message (the publisher
	// writes each frame's packets at once).
	if r.MediaSegmented <= 0 || r.MediaSegmented > r.MediaDatagrams {
		t.Errorf("media port: %d of %d datagrams sent as segments", r.MediaSegmented, r.MediaDatagrams)
	}
	if d := r.DelayMS; d.N == 0 || d.Min <= 0 || d.P50 <= 0 || d.P99 < d.P50 || d.Max < d.P99 {
		t.Errorf("video delay %+v: want positive, ordered samples", d)
	}
	if res.MaxUnder1PctLoss != 3 && r.Loss < 0.01 {
		t.Errorf("largest N under 1%% loss = %d with a 3-subscriber run at %.3f loss", res.MaxUnder1PctLoss, r.Loss)
	}
	// The server must be reaped, and every goroutine of the peers must have ended.
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(r.ServerPID))); err == nil {
		t.Errorf("server pid %d still exists after SFU returned", r.ServerPID)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSFUAgainst runs an A/B of two rounds against a second binary (the same one here):
// the runs alternate which build goes first, each is measured, and the result has each
// build's medians and the round-by-round comparison.
func TestSFUAgainst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the parley binary and runs it as a server")
	}
	parley := buildParley(t)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	profiles := filepath.Join(t.TempDir(), "profiles") // made by SFU
	res, err := bench.SFU(ctx, bench.SFUConfig{Parley: parley, Against: parley, Runs: 2, Subscribers: []int{2},
		Duration: time.Second, Video: ivf.Video, Audio: ogg.Audio, Stderr: testWriter{t}, CPUProfiles: profiles,
		Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	checkProfiles(t, profiles, "sfu-2-1-against.pprof", "sfu-2-1.pprof", "sfu-2-2-against.pprof", "sfu-2-2.pprof")
	order := []struct {
		round   int
		against bool
	}{{1, false}, {1, true}, {2, true}, {2, false}}
	if len(res.Runs) != len(order) {
		t.Fatalf("%d runs, want %d", len(res.Runs), len(order))
	}
	thisLossy := false
	for i, r := range res.Runs {
		if r.Round != order[i].round || r.Against != order[i].against {
			t.Errorf("run %d: round %d, against %v; want round %d, against %v", i, r.Round, r.Against, order[i].round, order[i].against)
		}
		if r.Error != "" || r.ServerUSPerPacket <= 0 {
			t.Fatalf("run %d not measured (%.1f µs per packet): %s", i, r.ServerUSPerPacket, r.Error)
		}
		thisLossy = thisLossy || (!r.Against && r.Loss >= 0.01)
	}
	if len(res.Medians) != 2 || res.Medians[0].Against || !res.Medians[1].Against || res.Medians[0].Runs != 2 ||
		res.Medians[1].Runs != 2 || res.Medians[0].ServerUSPerPacket <= 0 {
		t.Errorf("medians %+v, want this build's and the other's, over 2 runs each", res.Medians)
	}
	if len(res.Comparisons) != 1 || len(res.Comparisons[0].Ratios) != 2 || res.Comparisons[0].Median <= 0 {
		t.Errorf("comparisons %+v, want one at N = 2 of 2 rounds", res.Comparisons)
	}
	if want := map[bool]int{false: 2, true: 0}[thisLossy]; res.MaxUnder1PctLoss != want {
		t.Errorf("largest N under 1%% loss = %d, want %d", res.MaxUnder1PctLoss, want)
	}
}

// SummarizeSFU: medians per build and N over the measured runs (the mean of the middle
// two of an even number), and this build's CPU per packet over the other's, round by round,
// where both runs of a round were measured.
func TestSummarizeSFU(t *testing.T) {
	run := func(n, round int, against bool, us, loss float64) bench.SFURun {
		return bench.SFURun{Subscribers: n, Round: round, Against: against, ServerUSPerPacket: us, Loss: loss,
			ReceivedPerSec: 100 * us, DelayMS: bench.Summary{P50: us / 10, P99: us}}
	}
	failed := bench.SFURun{Subscribers: 10, Round: 3, Error: "setup failed", ServerUSPerPacket: 1}
	runs := []bench.SFURun{
		run(10, 1, false, 8, 0), run(10, 1, true, 10, 0), run(20, 1, false, 6, 0.5), run(20, 1, true, 5, 0),
		run(10, 2, true, 12, 0), run(10, 2, false, 9, 0), run(20, 2, true, 6, 0), run(20, 2, false, 7, 0.1),
		failed, run(10, 3, true, 100, 0), run(20, 3, false, 9, 0), run(20, 3, true, 3, 0),
	}
	medians, comparisons := bench.SummarizeSFU(runs)
	type m struct {
		n       int
		against bool
		runs    int
		us      float64
	}
	want := []m{{10, false, 2, 8.5}, {10, true, 3, 12}, {20, false, 3, 7}, {20, true, 3, 5}}
	if len(medians) != len(want) {
		t.Fatalf("%d medians, want %d: %+v", len(medians), len(want), medians)
	}
	for i, w := range want {
		g := medians[i]
		if g.Subscribers != w.n || g.Against != w.against || g.Runs != w.runs || g.ServerUSPerPacket != w.us ||
			g.ReceivedPerSec != 100*w.us || g.DelayP99MS != w.us {
			t.Errorf("medians[%d] = %+v, want N %d against %v over %d runs, %v µs", i, g, w.n, w.against, w.runs, w.us)
		}
	}
	if medians[2].Loss != 0.1 {
		t.Errorf("median loss at 20 = %v, want 0.1", medians[2].Loss)
	}
	if len(comparisons) != 2 {
		t.Fatalf("%d comparisons, want 2: %+v", len(comparisons), comparisons)
	}
	c := comparisons[0] // round 3 at 10 failed for this build: two pairs
	if c.Subscribers != 10 || !slices.Equal(c.Ratios, []float64{0.8, 0.75}) || c.Median != 0.775 || c.Min != 0.75 || c.Max != 0.8 {
		t.Errorf("comparison at 10 = %+v, want ratios [0.8 0.75], median 0.775", c)
	}
	c = comparisons[1]
	if c.Subscribers != 20 || !slices.Equal(c.Ratios, []float64{1.2, 7.0 / 6, 3}) || c.Median != 1.2 || c.Min != 7.0/6 || c.Max != 3 {
		t.Errorf("comparison at 20 = %+v, want ratios [1.2 1.1667 3], median 1.2", c)
	}
	// Without runs against another build there is nothing to compare.
	if _, cs := bench.SummarizeSFU(runs[:1]); cs != nil {
		t.Errorf("comparisons of one build's runs: %+v", cs)
	}
}

// checkProfiles checks that dir holds exactly the named CPU profiles, each one a pprof
// profile (gzipped protocol buffers) of the server's samples.
func checkProfiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("CPU profiles: %v", err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("CPU profiles %q, want %q", got, names)
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: not a gzipped profile: %v", name, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil || !bytes.Contains(raw, []byte("samples")) || !bytes.Contains(raw, []byte("cpu")) {
			t.Errorf("%s: %d bytes, %v; want a profile of cpu samples", name, len(raw), err)
		}
	}
}
