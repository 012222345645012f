package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
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
