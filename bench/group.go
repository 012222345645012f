package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/rtcapi"
)

// GroupConfig describes a group call benchmark: every member publishes the sample video and
// audio and receives every other member's, through the SFU. Parley, Participants and Video
// are required.
type GroupConfig struct {
	// Parley is the parley binary run as the server, a new one for each run.
	Parley string
	// Participants lists group sizes, one run each.
	Participants []int
	// Duration is how long each run measures, once every member receives every other
	// member's video; 0 means 10 s.
	Duration time.Duration
	// Video and Audio are what each member sends, looped; Audio may be nil.
	Video, Audio *media.Stream
	// SetupTimeout bounds the wait for a run's members to receive each other's video;
	// 0 means 60 s.
	SetupTimeout time.Duration
	// Stderr receives the server's stderr; nil discards it.
	Stderr io.Writer
	// CPUProfiles, if set, is a directory (made if missing) where each server writes its
	// CPU profile (`parley serve --cpuprofile`) as it stops: group-N.pprof.
	CPUProfiles string
	// Progress, if set, is told how setup goes.
	Progress func(format string, args ...any)
	// Logger receives the benchmark peers' logs; nil means slog.Default().
	Logger *slog.Logger
}

// GroupRun is one run: a group of Participants members and a fresh server. Packet counts
// are RTP packets, video and audio together, over the measurement window; a member's
// stream is counted at each of the other Participants-1 members.
type GroupRun struct {
	Participants int     `json:"participants"`
	Server       string  `json:"server"`
	ServerPID    int     `json:"server_pid"`
	SetupMS      float64 `json:"setup_ms"` // from the first member's start until all receive all video
	// Error says why the run was not measured (setup failed); empty if it was.
	Error string `json:"error,omitempty"`

	WindowMS float64 `json:"window_ms"`
	// Published is what all members wrote in the window; Expected is Published times the
	// Participants-1 receivers of each packet.
	Published       int64   `json:"published_packets"`
	PublishedPerSec float64 `json:"published_per_sec"`
	Expected        int64   `json:"expected_packets"`
	// Received is the sum over members of the packets that arrived in the window (first
	// receipts): what the SFU forwarded as far as the members can tell.
	Received       int64   `json:"received_packets"`
	ReceivedPerSec float64 `json:"received_per_sec"`
	// Delivered counts the packets written in the window that reached a member by the end
	// of the run (a grace period after the window); Loss is 1 - Delivered / Expected, and
	// WorstLoss the same for the worst of the Participants×(Participants-1) member-to-member
	// streams.
	Delivered int64   `json:"delivered_packets"`
	Loss      float64 `json:"loss"`
	WorstLoss float64 `json:"worst_stream_loss"`
	// ServerCores is the server process's user+system CPU per second of window;
	// ServerUSPerPacket the same per received packet, in µs; BenchCores this process's
	// (all the members') CPU per second of window.
	ServerCores       float64 `json:"server_cores"`
	ServerUSPerPacket float64 `json:"server_us_per_packet"`
	BenchCores        float64 `json:"bench_cores"`
	// DelayMS is the video forwarding delay: from a member's write to another member's
	// read, one sample per packet per receiver.
	DelayMS Summary `json:"video_delay_ms"`
}

// GroupResult is the outcome of Group: one run per group size.
type GroupResult struct {
	CPUs       int        `json:"cpus"`
	DurationMS float64    `json:"duration_ms"`
	Runs       []GroupRun `json:"runs"`
	// MaxUnder1PctLoss is the largest group size whose run was measured with less than 1 %
	// loss on every member-to-member stream; 0 if none was.
	MaxUnder1PctLoss int `json:"max_participants_under_1pct_loss"`
}

// Group measures whole group calls: for each size N it starts a fresh `parley serve` as a
// child process and N native members in this process, each publishing the sample media and
// receiving the other N-1 members' through the SFU; once every member receives every other's
// video it measures for cfg.Duration. A run whose setup fails is reported with its Error;
// Group fails only when the server cannot start or ctx ends.
func Group(ctx context.Context, cfg GroupConfig) (GroupResult, error) {
	if cfg.Video == nil {
		return GroupResult{}, errors.New("group benchmark: no video to send")
	}
	if len(cfg.Participants) == 0 {
		return GroupResult{}, errors.New("group benchmark: no group sizes")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	if cfg.CPUProfiles != "" {
		if err := os.MkdirAll(cfg.CPUProfiles, 0o755); err != nil {
			return GroupResult{}, fmt.Errorf("group benchmark: %w", err)
		}
	}
	res := GroupResult{CPUs: runtime.NumCPU(), DurationMS: ms(cfg.Duration)}
	for _, n := range cfg.Participants {
		if n < 2 {
			return res, fmt.Errorf("group benchmark: a group of %d", n)
		}
		run, err := groupRun(ctx, cfg, n)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, run)
		if run.Error == "" && run.WorstLoss < 0.01 && n > res.MaxUnder1PctLoss {
			res.MaxUnder1PctLoss = n
		}
	}
	return res, nil
}

// clockSet maps members' user IDs to their send clocks.
type clockSet struct {
	base time.Time
	mu   sync.Mutex
	m    map[string]*sendClock
}

func (c *clockSet) add(userID string) *sendClock {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := newSendClockAt(c.base)
	c.m[userID] = k
	return k
}

func (c *clockSet) of(userID string) *sendClock {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[userID]
}

func groupRun(ctx context.Context, cfg GroupConfig, n int) (GroupRun, error) {
	run := GroupRun{Participants: n}
	args := []string{"--sfu-loopback", "--max-group-peers", strconv.Itoa(n)}
	if cfg.CPUProfiles != "" {
		args = append(args, "--cpuprofile", filepath.Join(cfg.CPUProfiles, fmt.Sprintf("group-%d.pprof", n)))
	}
	child, err := Spawn(ctx, cfg.Parley, cfg.Stderr, args...)
	if err != nil {
		return run, err
	}
	defer child.Close()
	run.Server, run.ServerPID = child.URL, child.PID
	api, err := rtcapi.New(rtcapi.Options{LoopbackOnly: true, Logger: pionLogger(cfg.Logger)})
	if err != nil {
		return run, err
	}
	clocks := &clockSet{base: time.Now(), m: map[string]*sendClock{}}
	members := make([]*sfuPeer, n)
	defer func() { closeAll(nonNil(members)) }()
	fail := func(format string, args ...any) (GroupRun, error) {
		run.Error = fmt.Sprintf(format, args...)
		if exited, xerr := child.Exited(); exited {
			run.Error += fmt.Sprintf(" (the server exited: %v)", xerr)
		}
		return run, ctx.Err()
	}

	start := time.Now()
	setupCtx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer cancel()
	// Each member's clock is its own: sequence numbers are per publisher.
	clockOf := make([]*sendClock, n)
	startMember := func(i int, join string) error {
		p, err := startPeer(setupCtx, api, peerSetup{server: child.URL, join: join, video: cfg.Video, audio: cfg.Audio,
			clockOf: clocks.of, log: cfg.Logger,
			welcomed: func(id string) *sendClock { clockOf[i] = clocks.add(id); return clockOf[i] }})
		members[i] = p
		return err
	}
	if err := startMember(0, ""); err != nil {
		return fail("member 1: %v", err)
	}
	session := members[0].session
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = startMember(i, session) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail("members joining: %v", err)
	}
	for i, p := range members {
		for p.videoFrom.Load() < int32(n-1) {
			if err := sleep(setupCtx, 50*time.Millisecond); err != nil {
				return fail("member %d receives video from %d of the %d others (%s)", i+1, p.videoFrom.Load(), n-1, p.state())
			}
		}
	}
	run.SetupMS = ms(time.Since(start))
	cfg.Progress("group of %d: every member receives every other's video (%.1f s)", n, time.Since(start).Seconds())
	if err := sleep(ctx, time.Second); err != nil { // the last key frames and renegotiations settle
		return run, err
	}

	srv0, err := child.CPU()
	if err != nil {
		return run, err
	}
	self0, _ := cpuTime(os.Getpid())
	from := clockOf[0].now() // the clocks share a base
	for _, c := range clockOf {
		c.from.Store(from)
	}
	t0 := time.Now()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return run, err
	}
	to := clockOf[0].now()
	window := time.Since(t0)
	srv1, err := child.CPU()
	if err != nil {
		return run, err
	}
	self1, _ := cpuTime(os.Getpid())
	if err := sleep(ctx, grace); err != nil {
		return run, err
	}
	if exited, xerr := child.Exited(); exited {
		return fail("the server exited during the run: %v", xerr)
	}
	child.Close()
	closeAll(members)

	// published[id] is what member id wrote in the window; got[receiver][id] what of it
	// reached receiver.
	published := map[string]int64{}
	for i, p := range members {
		id := userOf(clocks, clockOf[i])
		for _, sent := range p.sent {
			for _, at := range sent {
				if at >= from && at <= to {
					published[id]++
					run.Published++
				}
			}
		}
	}
	var delays []float64
	run.WorstLoss = 0
	for _, p := range members {
		got := map[string]int64{}
		for _, t := range p.tracks {
			for _, a := range t.arrivals {
				if a.recv <= to {
					run.Received++
				}
				if a.sent <= to {
					run.Delivered++
					got[t.stream]++
					if t.kind == kindVideo {
						delays = append(delays, float64(a.recv-a.sent)/1e6)
					}
				}
			}
		}
		for id, pub := range published {
			if id == userOf(clocks, p.clock) || pub == 0 {
				continue
			}
			run.WorstLoss = max(run.WorstLoss, 1-float64(got[id])/float64(pub))
		}
	}
	run.Expected = run.Published * int64(n-1)
	secs := window.Seconds()
	run.WindowMS = ms(window)
	run.PublishedPerSec = float64(run.Published) / secs
	run.ReceivedPerSec = float64(run.Received) / secs
	if run.Expected > 0 {
		run.Loss = 1 - float64(run.Delivered)/float64(run.Expected)
	}
	run.ServerCores = (srv1 - srv0).Seconds() / secs
	if run.Received > 0 {
		run.ServerUSPerPacket = float64((srv1 - srv0).Microseconds()) / float64(run.Received)
	}
	run.BenchCores = (self1 - self0).Seconds() / secs
	run.DelayMS = Summarize(delays)
	if run.Received == 0 {
		run.Error = "no packet was received in the window"
	}
	return run, nil
}

// userOf is the user ID whose clock c is.
func userOf(cs *clockSet, c *sendClock) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for id, k := range cs.m {
		if k == c {
			return id
		}
	}
	return ""
}

func nonNil(ps []*sfuPeer) []*sfuPeer {
	var out []*sfuPeer
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}
