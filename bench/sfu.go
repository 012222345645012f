package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/rtcapi"
)

// SFUConfig describes an SFU forwarding benchmark. Parley, Subscribers and Video are
// required.
type SFUConfig struct {
	// Parley is the parley binary run as the server (`parley serve --sfu-loopback`), a new
	// one for each run.
	Parley string
	// Subscribers lists the numbers of subscribers, one run each (per round).
	Subscribers []int
	// Runs is how many rounds there are: each round runs every number of subscribers
	// once, so that a change in the machine's speed spreads over all of them. 0 means 1.
	Runs int
	// Against, if set, is another parley binary to compare Parley with (an A/B): each
	// round runs each number of subscribers with both, one right after the other, Parley
	// first in odd rounds and Against first in even ones.
	Against string
	// Duration is how long each run measures, once every subscriber receives video;
	// 0 means 10 s.
	Duration time.Duration
	// Video and Audio are what the publisher sends, looped; Audio may be nil.
	Video, Audio *media.Stream
	// Batch is how many subscribers join at once; the next batch starts when each of
	// these receives video. 0 means 25.
	Batch int
	// SetupTimeout bounds the wait for one subscriber (or the publisher) to connect and
	// receive video; a subscriber that does not is replaced, twice at most. 0 means 20 s.
	SetupTimeout time.Duration
	// Stderr receives the server's stderr; nil discards it.
	Stderr io.Writer
	// CPUProfiles, if set, is a directory (made if missing) where each server writes its
	// CPU profile (`parley serve --cpuprofile`) as it stops: sfu-N-ROUND.pprof, and
	// sfu-N-ROUND-against.pprof for Against's. The build's profile-guided optimisation
	// uses such profiles (make pgo).
	CPUProfiles string
	// Progress, if set, is told how setup goes.
	Progress func(format string, args ...any)
	// Logger receives the benchmark peers' logs; nil means slog.Default().
	Logger *slog.Logger

	cpuProfile string // this run's file in CPUProfiles
}

// SFURun is one run: one publisher, Subscribers subscribers, a fresh server. Packet counts
// are RTP packets, video and audio together, counted over the measurement window.
type SFURun struct {
	Subscribers int `json:"subscribers"`
	Round       int `json:"round"` // from 1
	// Against is whether the server was SFUConfig.Against rather than SFUConfig.Parley.
	Against   bool   `json:"against,omitempty"`
	Server    string `json:"server"`
	ServerPID int    `json:"server_pid"`
	// Joined is how many subscribers received video; less than Subscribers when setup
	// failed, and then Error says why and nothing was measured. Replaced counts
	// subscribers that did not get video within SFUConfig.SetupTimeout, or whose
	// connection failed, and were replaced by new ones.
	Joined   int     `json:"joined"`
	Replaced int     `json:"replaced"`
	SetupMS  float64 `json:"setup_ms"` // from the publisher's start until every subscriber had video
	Error    string  `json:"error,omitempty"`

	WindowMS float64 `json:"window_ms"`
	// Published is what the publisher wrote in the window; PublishedPerSec its rate.
	Published       int64   `json:"published_packets"`
	PublishedPerSec float64 `json:"published_per_sec"`
	// Received is the sum over subscribers of the packets that arrived in the window, each
	// counted once (a retransmission of a packet already received is in Duplicates):
	// what the SFU forwarded as far as the subscribers can tell.
	Received       int64   `json:"received_packets"`
	ReceivedPerSec float64 `json:"received_per_sec"`
	Duplicates     int64   `json:"duplicates"`
	// Delivered counts, of the packets written in the window, how many reached each
	// subscriber (summed over subscribers) by the end of the run, a grace period after the
	// window; Loss is 1 - Delivered / (Published × Subscribers).
	Delivered int64   `json:"delivered_packets"`
	Loss      float64 `json:"loss"`
	// ServerCPUMS is the server process's user+system CPU time over the window (from
	// /proc/PID/stat, 10 ms ticks); ServerCores the same per second of window;
	// ServerUSPerPacket the same per received packet, in µs.
	ServerCPUMS       float64 `json:"server_cpu_ms"`
	ServerCores       float64 `json:"server_cores"`
	ServerUSPerPacket float64 `json:"server_us_per_packet"`
	// Written is the server's own count of RTP packets written to subscribers in the
	// window (GET /healthz/sfu), retransmissions not included; ServerUSPerWritten is the
	// server's CPU per written packet, in µs, and its two parts: in user mode (Parley, Pion,
	// the Go runtime) and in the kernel (system calls, and on loopback the delivery of the
	// datagrams to the receiving sockets as well). MediaDatagrams and MediaBatches are the
	// datagrams its media port sent in the window and the system calls that sent them;
	// MediaSegmented those of the datagrams that went as segments of a larger message (UDP
	// generic segmentation offload); MediaDropped those it dropped on a full send queue. All
	// zero for a server without /healthz/sfu.
	Written                int64   `json:"written_packets,omitempty"`
	ServerUSPerWritten     float64 `json:"server_us_per_written,omitempty"`
	ServerUserUSPerWritten float64 `json:"server_user_us_per_written,omitempty"`
	ServerSysUSPerWritten  float64 `json:"server_sys_us_per_written,omitempty"`
	MediaDatagrams         int64   `json:"media_datagrams,omitempty"`
	MediaBatches           int64   `json:"media_batches,omitempty"`
	MediaSegmented         int64   `json:"media_segmented,omitempty"`
	MediaDropped           int64   `json:"media_dropped,omitempty"`
	// BenchCores is this process's CPU (publisher and subscribers) per second of window.
	BenchCores float64 `json:"bench_cores"`
	// DelayMS is the forwarding delay of video packets written in the window: from the
	// publisher's write to a subscriber's read, one sample per packet per subscriber.
	DelayMS Summary `json:"video_delay_ms"`
}

// SFUResult is the outcome of SFU: one run per number of subscribers per round (two with
// SFUConfig.Against), and their medians.
type SFUResult struct {
	CPUs       int      `json:"cpus"`
	DurationMS float64  `json:"duration_ms"`
	Runs       []SFURun `json:"runs"`
	// Medians and Comparisons summarise Runs (SummarizeSFU).
	Medians     []SFUMedians    `json:"medians"`
	Comparisons []SFUComparison `json:"comparisons,omitempty"`
	// MaxUnder1PctLoss is the largest number of subscribers whose runs with
	// SFUConfig.Parley were all measured, each with less than 1 % loss; 0 if none was.
	MaxUnder1PctLoss int `json:"max_subscribers_under_1pct_loss"`
}

// SFUMedians are the medians of one build's measured runs with one number of subscribers
// (a run whose setup failed is left out); the median of an even number of runs is the mean
// of the two middle ones.
type SFUMedians struct {
	Subscribers            int     `json:"subscribers"`
	Against                bool    `json:"against,omitempty"`
	Runs                   int     `json:"runs"` // measured runs
	ReceivedPerSec         float64 `json:"received_per_sec"`
	Loss                   float64 `json:"loss"`
	ServerUSPerPacket      float64 `json:"server_us_per_packet"`
	ServerUSPerWritten     float64 `json:"server_us_per_written"`
	ServerUserUSPerWritten float64 `json:"server_user_us_per_written"`
	ServerSysUSPerWritten  float64 `json:"server_sys_us_per_written"`
	DelayP50MS             float64 `json:"video_delay_p50_ms"`
	DelayP99MS             float64 `json:"video_delay_p99_ms"`
}

// SFUComparison is the A/B at one number of subscribers: the server CPU per packet
// (ServerUSPerPacket) of SFUConfig.Parley over that of SFUConfig.Against, round by round,
// over the rounds in which both runs were measured.
type SFUComparison struct {
	Subscribers int       `json:"subscribers"`
	Ratios      []float64 `json:"ratios"` // one per such round, in order
	Median      float64   `json:"median"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
}

// SummarizeSFU computes the medians of runs, per build and number of subscribers (in the
// order they first appear), and, for runs with SFUConfig.Against, the comparisons.
func SummarizeSFU(runs []SFURun) ([]SFUMedians, []SFUComparison) {
	type key struct {
		n       int
		against bool
	}
	var order []key
	groups := map[key][]SFURun{}
	pairs := map[int]map[int][2]float64{} // N -> round -> [this, against] µs per packet
	var ns []int
	comparing := false
	for _, r := range runs {
		k := key{r.Subscribers, r.Against}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
			groups[k] = nil
		}
		comparing = comparing || r.Against
		if r.Error != "" {
			continue
		}
		groups[k] = append(groups[k], r)
		if pairs[r.Subscribers] == nil {
			pairs[r.Subscribers] = map[int][2]float64{}
			ns = append(ns, r.Subscribers)
		}
		p := pairs[r.Subscribers][r.Round]
		if r.Against {
			p[1] = r.ServerUSPerPacket
		} else {
			p[0] = r.ServerUSPerPacket
		}
		pairs[r.Subscribers][r.Round] = p
	}
	medians := make([]SFUMedians, 0, len(order))
	for _, k := range order {
		g := groups[k]
		of := func(f func(SFURun) float64) float64 {
			xs := make([]float64, len(g))
			for i, r := range g {
				xs[i] = f(r)
			}
			return median(xs)
		}
		medians = append(medians, SFUMedians{Subscribers: k.n, Against: k.against, Runs: len(g),
			ReceivedPerSec:         of(func(r SFURun) float64 { return r.ReceivedPerSec }),
			Loss:                   of(func(r SFURun) float64 { return r.Loss }),
			ServerUSPerPacket:      of(func(r SFURun) float64 { return r.ServerUSPerPacket }),
			ServerUSPerWritten:     of(func(r SFURun) float64 { return r.ServerUSPerWritten }),
			ServerUserUSPerWritten: of(func(r SFURun) float64 { return r.ServerUserUSPerWritten }),
			ServerSysUSPerWritten:  of(func(r SFURun) float64 { return r.ServerSysUSPerWritten }),
			DelayP50MS:             of(func(r SFURun) float64 { return r.DelayMS.P50 }),
			DelayP99MS:             of(func(r SFURun) float64 { return r.DelayMS.P99 }),
		})
	}
	if !comparing {
		return medians, nil
	}
	var comparisons []SFUComparison
	for _, n := range ns {
		rounds := slices.Sorted(maps.Keys(pairs[n]))
		c := SFUComparison{Subscribers: n}
		for _, round := range rounds {
			if p := pairs[n][round]; p[0] > 0 && p[1] > 0 {
				c.Ratios = append(c.Ratios, p[0]/p[1])
			}
		}
		if len(c.Ratios) == 0 {
			continue
		}
		c.Median = median(slices.Clone(c.Ratios))
		c.Min, c.Max = slices.Min(c.Ratios), slices.Max(c.Ratios)
		comparisons = append(comparisons, c)
	}
	return medians, comparisons
}

// median is the middle of xs, or the mean of the two middle ones; it sorts xs in place.
// An empty xs gives 0.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}

// grace is how long after the window subscribers keep receiving, so that packets written
// at its end count as delivered.
const grace = time.Second

// SFU measures the SFU's forwarding: for each number of subscribers N it starts a fresh
// `parley serve` as a child process, a native publisher that creates a group session and
// sends the sample media, and N native subscribers in this process that join it and send
// nothing; once every subscriber receives video it measures for cfg.Duration. It does so
// cfg.Runs times, round by round, and with cfg.Against as well if set. A run whose setup
// fails is reported with its Error and the next run goes ahead; SFU fails only when a
// server cannot start or ctx ends, and then returns the runs so far too.
func SFU(ctx context.Context, cfg SFUConfig) (res SFUResult, err error) {
	if cfg.Video == nil {
		return SFUResult{}, errors.New("sfu benchmark: no video to send")
	}
	if len(cfg.Subscribers) == 0 {
		return SFUResult{}, errors.New("sfu benchmark: no numbers of subscribers")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 25
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 20 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 1
	}
	for _, n := range cfg.Subscribers {
		if n <= 0 {
			return SFUResult{}, fmt.Errorf("sfu benchmark: %d subscribers", n)
		}
	}
	if cfg.CPUProfiles != "" {
		if err := os.MkdirAll(cfg.CPUProfiles, 0o755); err != nil {
			return SFUResult{}, fmt.Errorf("sfu benchmark: %w", err)
		}
	}
	res = SFUResult{CPUs: runtime.NumCPU(), DurationMS: ms(cfg.Duration)}
	defer func() { res.Medians, res.Comparisons = SummarizeSFU(res.Runs) }()
	lossy := map[int]bool{} // numbers of subscribers with a run of Parley not measured, or at ≥ 1 % loss
	for round := 1; round <= cfg.Runs; round++ {
		for _, n := range cfg.Subscribers {
			builds := []bool{false}
			if cfg.Against != "" {
				builds = []bool{round%2 == 0, round%2 == 1}
			}
			for _, against := range builds {
				c := cfg
				if against {
					c.Parley = cfg.Against
				}
				if cfg.CPUProfiles != "" {
					name := fmt.Sprintf("sfu-%d-%d", n, round)
					if against {
						name += "-against"
					}
					c.cpuProfile = filepath.Join(cfg.CPUProfiles, name+".pprof")
				}
				run, err := sfuRun(ctx, c, n)
				run.Round, run.Against = round, against
				if err != nil {
					return res, err
				}
				res.Runs = append(res.Runs, run)
				if !against && (run.Error != "" || run.Loss >= 0.01) {
					lossy[n] = true
				}
			}
		}
	}
	for _, n := range cfg.Subscribers {
		if !lossy[n] && n > res.MaxUnder1PctLoss {
			res.MaxUnder1PctLoss = n
		}
	}
	return res, nil
}

// sfuRun is one run with n subscribers. Its error is for what ends the whole benchmark;
// a setup that fails is reported in the run.
func sfuRun(ctx context.Context, cfg SFUConfig, n int) (SFURun, error) {
	run := SFURun{Subscribers: n}
	args := []string{"--sfu-loopback", "--max-group-peers", strconv.Itoa(n + 1)}
	if cfg.cpuProfile != "" {
		args = append(args, "--cpuprofile", cfg.cpuProfile)
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
	clock := newSendClock()
	var subs []*sfuPeer
	var pub *sfuPeer
	defer func() {
		closeAll(subs)
		if pub != nil {
			pub.Close()
		}
	}()

	start := time.Now()
	fail := func(format string, args ...any) (SFURun, error) {
		run.Error = fmt.Sprintf(format, args...)
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		return run, nil
	}
	setupCtx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	pub, err = startSFUPeer(setupCtx, api, child.URL, "", cfg.Video, cfg.Audio, clock, cfg.Logger)
	if err == nil {
		err = waitConnected(setupCtx, pub)
	}
	cancel()
	if err != nil {
		return fail("publisher: %v", err)
	}

	for len(subs) < n {
		batch := min(cfg.Batch, n-len(subs))
		joined, replaced, err := joinBatch(ctx, cfg, api, child.URL, pub.session, batch, clock)
		first := len(subs) + 1
		subs = append(subs, joined...)
		run.Replaced += replaced
		run.Joined = len(subs)
		if err != nil {
			if exited, xerr := child.Exited(); exited {
				err = fmt.Errorf("%w (the server exited: %v)", err, xerr)
			}
			return fail("subscribers %d-%d of %d: %v", first, first+batch-1, n, err)
		}
		cfg.Progress("%d subscribers: %d receive video (%.1f s)", n, len(subs), time.Since(start).Seconds())
	}
	run.SetupMS = ms(time.Since(start))

	// A moment for the last batch's key frame requests and renegotiations to settle.
	if err := sleep(ctx, time.Second); err != nil {
		return run, err
	}
	usr0, sys0, err := child.CPUSplit()
	if err != nil {
		return run, err
	}
	srv0 := usr0 + sys0
	tot0, totErr := sfuTotals(ctx, child.URL)
	self0, _ := cpuTime(os.Getpid())
	from := clock.now()
	clock.from.Store(from)
	t0 := time.Now()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return run, err
	}
	to := clock.now()
	window := time.Since(t0)
	usr1, sys1, err := child.CPUSplit()
	if err != nil {
		return run, err
	}
	srv1 := usr1 + sys1
	tot1, totErr1 := sfuTotals(ctx, child.URL)
	self1, _ := cpuTime(os.Getpid())
	if err := sleep(ctx, grace); err != nil {
		return run, err
	}
	if exited, xerr := child.Exited(); exited {
		return fail("the server exited during the run: %v", xerr)
	}

	pubState := pub.state()
	// Close everything, so that the peers' goroutines have ended before their records are
	// read. The server goes first: otherwise it renegotiates with every subscriber as the
	// others leave, which is work for nothing here.
	child.Close()
	closeAll(subs)
	pub.Close()
	var delays []float64
	for _, s := range subs {
		for _, t := range s.tracks {
			run.Duplicates += t.dups
			for _, a := range t.arrivals {
				if a.recv <= to {
					run.Received++
				}
				if a.sent <= to { // a.sent >= from: receive kept nothing older
					run.Delivered++
					if t.kind == kindVideo {
						delays = append(delays, float64(a.recv-a.sent)/1e6)
					}
				}
			}
		}
	}
	for _, sent := range pub.sent {
		for _, at := range sent {
			if at >= from && at <= to {
				run.Published++
			}
		}
	}
	secs := window.Seconds()
	run.WindowMS = ms(window)
	run.PublishedPerSec = float64(run.Published) / secs
	run.ReceivedPerSec = float64(run.Received) / secs
	if run.Published > 0 {
		run.Loss = 1 - float64(run.Delivered)/float64(run.Published*int64(n))
	}
	run.ServerCPUMS = ms(srv1 - srv0)
	run.ServerCores = (srv1 - srv0).Seconds() / secs
	if run.Received > 0 {
		run.ServerUSPerPacket = float64((srv1 - srv0).Microseconds()) / float64(run.Received)
	}
	if totErr == nil && totErr1 == nil {
		run.Written = int64(tot1.Written - tot0.Written)
		run.MediaDatagrams = int64(tot1.Media.Sent - tot0.Media.Sent)
		run.MediaBatches = int64(tot1.Media.Batches - tot0.Media.Batches)
		run.MediaSegmented = int64(tot1.Media.Segmented - tot0.Media.Segmented)
		run.MediaDropped = int64(tot1.Media.Dropped - tot0.Media.Dropped)
		if run.Written > 0 {
			run.ServerUSPerWritten = float64((srv1 - srv0).Microseconds()) / float64(run.Written)
			run.ServerUserUSPerWritten = float64((usr1 - usr0).Microseconds()) / float64(run.Written)
			run.ServerSysUSPerWritten = float64((sys1 - sys0).Microseconds()) / float64(run.Written)
		}
	} else if err := errors.Join(totErr, totErr1); !errors.Is(err, errNoSFUTotals) {
		return run, err
	}
	run.BenchCores = (self1 - self0).Seconds() / secs
	run.DelayMS = Summarize(delays)
	if run.Received == 0 {
		run.Error = fmt.Sprintf("no packet was received in the window; the publisher wrote %d (%s)",
			run.Published, pubState)
	}
	return run, nil
}

// joinBatch starts n subscribers at once and waits until each receives video. A subscriber
// that does not within cfg.SetupTimeout (or whose connection fails) is closed and replaced,
// up to joinAttempts times; replaced counts those. It returns the subscribers receiving
// video, and an error if a place could not be filled.
func joinBatch(ctx context.Context, cfg SFUConfig, api *webrtc.API, server, session string, n int,
	clock *sendClock) (joined []*sfuPeer, replaced int, err error) {
	peers := make([]*sfuPeer, n)
	tries := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range peers {
		wg.Go(func() {
			for tries[i] = 1; ; tries[i]++ {
				actx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
				p, err := startSFUPeer(actx, api, server, session, nil, nil, clock, cfg.Logger)
				if err == nil {
					err = waitVideo(actx, p)
				}
				cancel()
				if err == nil {
					peers[i] = p
					return
				}
				if p != nil {
					p.Close()
				}
				errs[i] = err
				if tries[i] == joinAttempts || ctx.Err() != nil {
					return
				}
				cfg.Logger.Warn("sfu benchmark: a subscriber failed to set up; replacing it", "attempt", tries[i], "err", err)
			}
		})
	}
	wg.Wait()
	for i, p := range peers {
		replaced += tries[i] - 1
		if p != nil {
			joined = append(joined, p)
		} else if err == nil {
			err = fmt.Errorf("%d attempts; the last: %w", tries[i], errs[i])
		}
	}
	return joined, replaced, err
}

// joinAttempts is how many times the benchmark tries to set up each subscriber.
const joinAttempts = 3

func waitConnected(ctx context.Context, p *sfuPeer) error {
	select {
	case <-p.connected:
		return nil
	case <-p.failed:
		return fmt.Errorf("peer connection failed before it connected (%s)", p.state())
	case <-ctx.Done():
		return fmt.Errorf("not connected: %w", context.Cause(ctx))
	}
}

func waitVideo(ctx context.Context, p *sfuPeer) error {
	select {
	case <-p.firstVideo:
		return nil
	case <-p.failed:
		return fmt.Errorf("no video before the peer connection failed (%s)", p.state())
	case <-ctx.Done():
		return fmt.Errorf("no video (%s): %w", p.state(), context.Cause(ctx))
	}
}

// closeAll closes peers, a few at a time.
func closeAll(peers []*sfuPeer) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, p := range peers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p.Close()
		})
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sfuTotalsReport is what the bench reads of GET /healthz/sfu.
type sfuTotalsReport struct {
	Written uint64 `json:"written"`
	Media   struct {
		Sent      uint64 `json:"sent"`
		Batches   uint64 `json:"batches"`
		Segmented uint64 `json:"segmented"`
		Dropped   uint64 `json:"dropped"`
	} `json:"media"`
}

// errNoSFUTotals: the server has no /healthz/sfu (an older parley).
var errNoSFUTotals = errors.New("the server does not report SFU totals")

// sfuTotals reads the SFU's totals from the server at base.
func sfuTotals(ctx context.Context, base string) (sfuTotalsReport, error) {
	var r sfuTotalsReport
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz/sfu", nil)
	if err != nil {
		return r, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, fmt.Errorf("SFU totals: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return r, errNoSFUTotals
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("SFU totals: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("SFU totals: %w", err)
	}
	return r, nil
}
