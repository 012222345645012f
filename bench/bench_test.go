package bench_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/parley-rtc/parley/bench"
	"github.com/parley-rtc/parley/media"
)

// These tests run each benchmark at a tiny size, so that the benchmarks keep working; the
// figures they produce mean nothing.

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// mediaDir is ../shared/media beside the project root, or $PARLEY_MEDIA.
func mediaDir() string {
	if d := os.Getenv("PARLEY_MEDIA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "media")
}

func load(t *testing.T, name string) *media.Clip {
	t.Helper()
	clip, err := media.Load(filepath.Join(mediaDir(), name))
	if err != nil {
		t.Fatalf("load sample media: %v", err)
	}
	return clip
}

func TestSummarize(t *testing.T) {
	xs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, float64(i))
	}
	got := bench.Summarize(xs)
	want := bench.Summary{N: 100, Min: 1, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if got != want {
		t.Errorf("Summarize(1..100) = %+v, want %+v", got, want)
	}
	if got := bench.Summarize([]float64{7}); got.P50 != 7 || got.P99 != 7 || got.N != 1 {
		t.Errorf("Summarize([7]) = %+v", got)
	}
	if got := bench.Summarize([]float64{3, 1, 2}); got.P50 != 2 || got.P90 != 3 {
		t.Errorf("Summarize([3 1 2]) = %+v, want p50 2, p90 3", got)
	}
	if got := bench.Summarize(nil); got != (bench.Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}

func TestSetup(t *testing.T) {
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := bench.Setup(ctx, bench.SetupConfig{Calls: 2, Video: ivf.Video, Audio: ogg.Audio, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || len(res.PerCall) != 2 || !res.InProc {
		t.Fatalf("setup: %d of %d calls failed (in-process %v): %+v", res.Failed, len(res.PerCall), res.InProc, res.PerCall)
	}
	for _, c := range res.PerCall {
		for _, r := range []struct {
			role               string
			connected, firstMS float64
		}{{"host", c.Host.ConnectedMS, c.Host.FirstVideoMS}, {"guest", c.Guest.ConnectedMS, c.Guest.FirstVideoMS}} {
			if r.connected <= 0 || r.firstMS < r.connected {
				t.Errorf("%s: connected %v ms, first video %v ms: want 0 < connected <= first video", r.role, r.connected, r.firstMS)
			}
		}
		if c.BothVideoMS < c.Host.FirstVideoMS || c.BothVideoMS < c.GuestStartMS+c.Guest.FirstVideoMS {
			t.Errorf("both-video %v ms is before one side's first frame: %+v", c.BothVideoMS, c)
		}
	}
	for name, s := range map[string]bench.Summary{
		"host first video": res.Host.FirstVideoMS, "guest first video": res.Guest.FirstVideoMS,
		"host connected": res.Host.ConnectedMS, "both video": res.BothVideo,
	} {
		if s.N != 2 || s.P50 <= 0 || s.P90 < s.P50 {
			t.Errorf("%s: %+v, want 2 positive samples", name, s)
		}
	}
}

func TestSignaling(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := bench.Signaling(ctx, bench.SignalingConfig{Pairs: 2, Duration: 300 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Cycles <= 0 || res.Relays != 4*res.Cycles {
		t.Errorf("%d cycles, %d relays: want > 0 cycles of 4 relays", res.Cycles, res.Relays)
	}
	if res.RelaysPerSec <= 0 || res.ElapsedMS < 300 {
		t.Errorf("%.0f relays/s over %.0f ms: want > 0 over at least the 300 ms run", res.RelaysPerSec, res.ElapsedMS)
	}
	if res.RTTMS.N != int(res.Cycles) || res.RTTMS.Min <= 0 || res.RTTMS.P99 < res.RTTMS.P50 {
		t.Errorf("rtt %+v: want one positive sample per cycle (%d)", res.RTTMS, res.Cycles)
	}
	if res.OfferBytes < 3000 || res.AnswerBytes < 3000 {
		t.Errorf("SDP of %d and %d bytes: want realistic sizes, about 3 KB", res.OfferBytes, res.AnswerBytes)
	}
	if runtime.GOOS == "linux" && res.ClientCPU <= 0 {
		t.Errorf("client CPU %v cores: want > 0 for a process that relayed %d messages", res.ClientCPU, res.Relays)
	}
	// The pairs' goroutines and the in-process server's must all have ended.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSignalingRefusesRemoteServer(t *testing.T) {
	_, err := bench.Signaling(context.Background(), bench.SignalingConfig{Server: "http://192.0.2.1:8080", Pairs: 1})
	if !errors.Is(err, bench.ErrNotLoopback) {
		t.Errorf("server 192.0.2.1: %v, want ErrNotLoopback", err)
	}
}

// buildParley builds the parley binary, which the idle benchmark runs as its server.
func buildParley(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the parley binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "parley")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/parley")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/parley: %v\n%s", err, out)
	}
	return bin
}

func TestIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the parley binary and runs it as a server")
	}
	parley := buildParley(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.Idle(ctx, bench.IdleConfig{Parley: parley, Conns: 50, WarmUp: 5, Batch: 20,
		Settle: 300 * time.Millisecond, Stderr: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.BeforeKiB <= 0 || res.AfterKiB <= 0 {
		t.Errorf("server RSS %v KiB before, %v KiB after: want both > 0", res.BeforeKiB, res.AfterKiB)
	}
	if res.Counted != 55 {
		t.Errorf("/healthz counted %d connections with 50 + 5 warm-up open", res.Counted)
	}
	if res.Left != 0 || res.DrainMS <= 0 {
		t.Errorf("/healthz counted %d connections after closing them all (drain %v ms), want 0", res.Left, res.DrainMS)
	}
	// The server must be gone: reaped, not left running.
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(res.PID))); err == nil {
		t.Errorf("server pid %d still exists after Idle returned", res.PID)
	}
}

func TestSpawnFailsCleanly(t *testing.T) {
	// A binary that exits at once without saying where it listens.
	_, err := bench.Spawn(context.Background(), "/bin/true", nil)
	if err == nil {
		t.Fatal("spawning /bin/true as a server succeeded")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("server: %s", p); return len(p), nil }
