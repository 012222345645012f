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

// TestGroup runs the group benchmark with 3 members for 2 s against a child parley serve:
// each member must get the other two's media, and nothing may be left behind. Then a group
// of 16, the default largest, must set up: every member receives every other's video
// (its SFU offers carry 30 media sections and must fit in a signaling message). Its loss is
// not checked: 16 members under the race detector on a shared machine is a load test.
func TestGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the parley binary and runs it as a server")
	}
	parley := buildParley(t)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profiles := t.TempDir()
	res, err := bench.Group(ctx, bench.GroupConfig{Parley: parley, Participants: []int{3, 16}, Duration: 2 * time.Second,
		Video: ivf.Video, Audio: ogg.Audio, Stderr: testWriter{t}, CPUProfiles: profiles, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	checkProfiles(t, profiles, "group-16.pprof", "group-3.pprof")
	if len(res.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(res.Runs))
	}
	if r := res.Runs[1]; r.Error != "" {
		t.Errorf("group of 16 not set up: %s", r.Error)
	}
	r := res.Runs[0]
	t.Logf("%+v", r)
	if r.Error != "" {
		t.Fatalf("run not measured: %s", r.Error)
	}
	// Three members each write about 75 video and 50 audio packets per second.
	if r.Published < 3*100 {
		t.Errorf("members wrote %d packets in the window, want a real stream from each", r.Published)
	}
	if r.Expected != 2*r.Published {
		t.Errorf("expected %d packets, want 2 x %d published", r.Expected, r.Published)
	}
	if r.Delivered <= 0 || r.Delivered > r.Expected || r.Received <= 0 {
		t.Errorf("delivered %d of %d expected, received %d", r.Delivered, r.Expected, r.Received)
	}
	if r.Loss < 0 || r.WorstLoss < r.Loss || r.WorstLoss >= 0.5 {
		t.Errorf("loss %.3f, worst stream %.3f: want 0 <= loss <= worst < 0.5 on loopback", r.Loss, r.WorstLoss)
	}
	if d := r.DelayMS; d.N == 0 || d.Min <= 0 || d.P99 < d.P50 {
		t.Errorf("video delay %+v: want positive, ordered samples", d)
	}
	for _, r := range res.Runs {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(r.ServerPID))); err == nil {
			t.Errorf("server pid %d still exists after Group returned", r.ServerPID)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
