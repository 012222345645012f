package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	parleybench "github.com/parley-rtc/parley/bench"
	"github.com/parley-rtc/parley/media" // bench names this command's entry point
)

const benchUsage = `Usage: parley bench <kind> [flags]

Kinds:
  setup      call setup time of two native peers on loopback (first remote video frame)
  signaling  relay throughput and round-trip time of raw signaling clients
  idle       server memory per idle signaling connection
  sfu        SFU forwarding: one publisher, N subscribers, a child parley serve
  group      whole group calls: N members each sending and receiving through the SFU

Run 'parley bench <kind> -h' for its flags. --json prints one JSON object instead of a table.
`

func bench(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		return errors.New("say which benchmark to run")
	}
	switch args[0] {
	case "setup":
		return benchSetup(ctx, args[1:])
	case "signaling":
		return benchSignaling(ctx, args[1:])
	case "idle":
		return benchIdle(ctx, args[1:])
	case "sfu":
		return benchSFU(ctx, args[1:])
	case "group":
		return benchGroup(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Print(benchUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, benchUsage)
	return fmt.Errorf("unknown benchmark %q", args[0])
}

// sampleMedia is the path of a sample media file: in $PARLEY_MEDIA, or in ../shared/media
// as seen from the project root.
func sampleMedia(name string) string {
	dir := os.Getenv("PARLEY_MEDIA")
	if dir == "" {
		dir = filepath.Join("..", "shared", "media")
	}
	return filepath.Join(dir, name)
}

func benchLogger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func benchSetup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench setup", flag.ContinueOnError)
	calls := fs.Int("calls", 20, "how many calls to measure, one after another")
	warmUp := fs.Int("warmup", 1, "calls to run first and not measure")
	server := fs.String("server", "", "`URL` of a signaling server on loopback (default: one in this process)")
	video := fs.String("video", sampleMedia("chrome-vp8.ivf"), "video both peers send: VP8 in IVF or WebM `file`")
	audio := fs.String("audio", sampleMedia("chrome-opus.ogg"), "audio both peers send: Opus in Ogg `file` (\"\" for none)")
	hold := fs.Duration("hold", 500*time.Millisecond, "how long each peer stays in a call after it connects")
	asJSON := fs.Bool("json", false, "print one JSON object")
	verbose := fs.Bool("v", false, "log debug detail to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, a, err := loadMedia(*video, *audio)
	if err != nil {
		return err
	}
	if *warmUp == 0 {
		*warmUp = -1 // SetupConfig: 0 is the default, negative is none
	}
	res, err := parleybench.Setup(ctx, parleybench.SetupConfig{Server: *server, Calls: *calls, WarmUp: *warmUp,
		Video: v, Audio: a, Hold: *hold, Logger: benchLogger(*verbose)})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(struct {
			Bench string `json:"bench"`
			Video string `json:"video"`
			Audio string `json:"audio"`
			parleybench.SetupResult
		}{"setup", *video, *audio, res})
	}

	fmt.Printf("parley bench setup: %d calls, one after another (after %d warm-up, not counted); 2 native peers on loopback\n",
		res.Calls, res.WarmUp)
	if res.InProc {
		fmt.Printf("  server: in-process at %s; both peers and the server share this machine's %d CPUs\n", res.Server, runtime.NumCPU())
	} else {
		fmt.Printf("  server: %s; both peers run in this process\n", res.Server)
	}
	what := filepath.Base(*video)
	if *audio != "" {
		what += " + " + filepath.Base(*audio)
	}
	fmt.Printf("  media:  %s, sent both ways; each peer hangs up %s after connecting\n\n", what, *hold)
	fmt.Printf("  %-42s %8s %8s %8s %8s\n", "ms, from each peer's own start", "median", "p90", "min", "max")
	row := func(name string, s parleybench.Summary) {
		fmt.Printf("  %-42s %8.1f %8.1f %8.1f %8.1f\n", name, s.P50, s.P90, s.Min, s.Max)
	}
	row("host  connected_ms (ICE connected)", res.Host.ConnectedMS)
	row("host  first_video_ms (first remote frame)", res.Host.FirstVideoMS)
	row("guest connected_ms (ICE connected)", res.Guest.ConnectedMS)
	row("guest first_video_ms (first remote frame)", res.Guest.FirstVideoMS)
	row("call  both have video, from host start", res.BothVideo)
	var guestStart []float64
	for _, c := range res.PerCall {
		if c.Error == "" {
			guestStart = append(guestStart, c.GuestStartMS)
		}
	}
	fmt.Printf("\n  n = %d calls succeeded, %d failed. The guest starts when the host's session is ready\n",
		res.Host.FirstVideoMS.N, res.Failed)
	fmt.Printf("  (median %.1f ms after the host); the host's times include waiting for it.\n",
		parleybench.Summarize(guestStart).P50)
	for i, c := range res.PerCall {
		if c.Error != "" {
			fmt.Printf("  call %d failed: %s\n", i+1, c.Error)
		}
	}
	return nil
}

func benchSignaling(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench signaling", flag.ContinueOnError)
	pairsFlag := fs.String("pairs", "50,200", "comma-separated numbers of concurrent host/guest pairs, one run each")
	duration := fs.Duration("duration", 5*time.Second, "length of each run")
	server := fs.String("server", "", "`URL` of a signaling server on loopback (default: one in this process)")
	spawn := fs.Bool("spawn", false, "run the server as a child process (`parley serve`), apart from the load generator")
	asJSON := fs.Bool("json", false, "print one JSON object")
	verbose := fs.Bool("v", false, "log debug detail to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var pairs []int
	for f := range strings.SplitSeq(*pairsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("--pairs: %q is not a positive number", f)
		}
		pairs = append(pairs, n)
	}
	if *spawn && *server != "" {
		return errors.New("give --server or --spawn, not both")
	}
	mode, target := "in-process", *server
	if *server != "" {
		mode = "external"
	}
	pid := 0
	if *spawn {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--spawn: %w", err)
		}
		child, err := parleybench.Spawn(ctx, exe, os.Stderr)
		if err != nil {
			return err
		}
		defer child.Close()
		mode, target, pid = "spawned", child.URL, child.PID
	}

	var runs []parleybench.SignalingResult
	for _, p := range pairs {
		res, err := parleybench.Signaling(ctx, parleybench.SignalingConfig{Server: target, Pairs: p, Duration: *duration,
			ServerPID: pid, Logger: benchLogger(*verbose)})
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	if *asJSON {
		return printJSON(struct {
			Bench      string                        `json:"bench"`
			ServerMode string                        `json:"server_mode"` // in-process, spawned or external
			ServerPID  int                           `json:"server_pid,omitempty"`
			Runs       []parleybench.SignalingResult `json:"runs"`
		}{"signaling", mode, pid, runs})
	}

	fmt.Printf("parley bench signaling: raw signaling clients (no WebRTC), %s per run\n", *duration)
	switch mode {
	case "in-process":
		fmt.Printf("  server: in-process (a new one per run); it shares this process's %d CPUs with the load generator,\n", runtime.GOMAXPROCS(0))
		fmt.Printf("          so the figures are for server and clients together (use --spawn to separate them)\n")
	case "spawned":
		fmt.Printf("  server: child process `parley serve` (pid %d) at %s; the load generator is this process.\n", pid, target)
		fmt.Printf("          Separate processes, same machine: both share its %d CPUs.\n", runtime.NumCPU())
	default:
		fmt.Printf("  server: %s; the load generator is this process\n", target)
	}
	fmt.Printf("  cycle:  offer (%d B SDP) -> answer (%d B SDP) -> candidate -> candidate = 4 relayed messages\n",
		runs[0].OfferBytes, runs[0].AnswerBytes)
	fmt.Printf("  rtt:    host side, from sending an offer to receiving its answer\n")
	fmt.Printf("  cpu:    cores busy during the run (CPU seconds per second), of the server and of this process\n\n")
	fmt.Printf("  %6s %9s %9s %10s %8s %8s %8s %8s %8s %8s\n", "pairs", "cycles", "relays", "relays/s",
		"rtt p50", "p90", "p99", "max ms", "srv cpu", "this cpu")
	for _, r := range runs {
		server := "-"
		if mode == "spawned" {
			server = fmt.Sprintf("%.2f", r.ServerCPU)
		}
		fmt.Printf("  %6d %9d %9d %10.0f %8.2f %8.2f %8.2f %8.2f %8s %8.2f\n", r.Pairs, r.Cycles, r.Relays, r.RelaysPerSec,
			r.RTTMS.P50, r.RTTMS.P90, r.RTTMS.P99, r.RTTMS.Max, server, r.ClientCPU)
	}
	return nil
}

func benchIdle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench idle", flag.ContinueOnError)
	conns := fs.Int("conns", 10000, "idle connections to open (they are this process's sockets too)")
	settle := fs.Duration("settle", 3*time.Second, "wait before each memory measurement")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := parleybench.IdleConfig{Parley: exe, Conns: *conns, Settle: *settle, Stderr: os.Stderr}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Progress = func(open int) {
			fmt.Fprintf(os.Stderr, "\ropened %d/%d connections", open, *conns)
			if open == *conns {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	res, err := parleybench.Idle(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(struct {
			Bench string `json:"bench"`
			parleybench.IdleResult
		}{"idle", res})
	}
	mib := func(kib float64) float64 { return kib / 1024 }
	fmt.Printf("parley bench idle: %d idle signaling connections to a child `parley serve` (pid %d) at %s\n",
		res.Conns, res.PID, res.Server)
	fmt.Printf("  each connection answers the server's pings and sends nothing else; memory is the server's VmRSS,\n")
	fmt.Printf("  the median of 5 readings taken after %s of quiet\n\n", *settle)
	fmt.Printf("  server RSS before:  %8.1f MiB  (%d warm-up connections open)\n", mib(res.BeforeKiB), res.WarmUp)
	fmt.Printf("  server RSS after:   %8.1f MiB  (%d open)\n", mib(res.AfterKiB), res.WarmUp+res.Conns)
	fmt.Printf("  growth:             %8.1f MiB\n", mib(res.TotalKiB))
	fmt.Printf("  per connection:     %8.1f KiB\n\n", res.PerConn)
	fmt.Printf("  /healthz with all open: %d connections (want %d)\n", res.Counted, res.WarmUp+res.Conns)
	fmt.Printf("  opened in %.1f s; closed (close handshake) in %.1f s; /healthz back to %d %.0f ms after the first close\n",
		res.OpenMS/1000, res.CloseMS/1000, res.Left, res.DrainMS)
	return nil
}

func benchSFU(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench sfu", flag.ContinueOnError)
	subsFlag := fs.String("subscribers", "10,50,100,200", "comma-separated numbers of subscribers, one run (and one fresh server) each")
	duration := fs.Duration("duration", 10*time.Second, "how long each run measures, once every subscriber receives video")
	mediaDir := fs.String("media-dir", filepath.Dir(sampleMedia("x")), "`dir`ectory of the sample media (chrome-vp8.ivf, chrome-opus.ogg)")
	batch := fs.Int("batch", 25, "subscribers that join at once")
	runs := fs.Int("runs", 1, "rounds: each round runs every N once; the medians of the rounds are printed")
	against := fs.String("against", "", "another parley `binary` to compare with (A/B): each round runs each N with both, alternating which goes first, and prints this build's CPU per packet over that one's")
	profiles := fs.String("server-cpuprofile", "", "`dir`ectory where each server writes its CPU profile as it stops (parley serve --cpuprofile), one file per run; make pgo merges them into the build's profile")
	asJSON := fs.Bool("json", false, "print one JSON object")
	verbose := fs.Bool("v", false, "log debug detail to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	subs, err := counts("--subscribers", *subsFlag, 1)
	if err != nil {
		return err
	}
	if *runs < 1 {
		return fmt.Errorf("--runs %d: want at least 1", *runs)
	}
	if *against != "" {
		if fi, err := os.Stat(*against); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("--against %s: not an executable file", *against)
		}
	}
	exe, v, a, err := sfuBenchInputs(*mediaDir)
	if err != nil {
		return err
	}
	cfg := parleybench.SFUConfig{Parley: exe, Subscribers: subs, Runs: *runs, Against: *against, Duration: *duration,
		Video: v, Audio: a, Batch: *batch, Stderr: os.Stderr, CPUProfiles: *profiles, Logger: benchLogger(*verbose)}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Progress = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "\r"+format+"\033[K", args...) }
	}
	res, err := parleybench.SFU(ctx, cfg)
	if cfg.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(struct {
			Bench string `json:"bench"`
			parleybench.SFUResult
		}{"sfu", res})
	}

	fmt.Printf("parley bench sfu: 1 publisher (chrome-vp8.ivf + chrome-opus.ogg, looped) -> N subscribers through the SFU\n")
	fmt.Printf("  server: a fresh child `parley serve --sfu-loopback` per run; publisher and subscribers are native\n")
	fmt.Printf("          Pion peers in this process. Bench and server share this machine's %d CPUs, so the\n", res.CPUs)
	fmt.Printf("          subscribers' receiving (SRTP, interceptors) competes with the server for them.\n")
	fmt.Printf("  window: %s per run, after every subscriber receives video; all traffic on loopback\n", *duration)
	fmt.Printf("  recv/s: RTP packets received by all subscribers per second\n")
	fmt.Printf("  us/pkt: server user+system CPU (/proc/PID/stat) over the window / packets received\n")
	fmt.Printf("  us/wr:  the same / RTP packets the server says it wrote (GET /healthz/sfu); usr, sys: its\n")
	fmt.Printf("          user-mode and kernel parts (on loopback the kernel part includes delivering\n")
	fmt.Printf("          the datagrams to the subscribers' sockets); pkt/call: the media port's datagrams\n")
	fmt.Printf("          per sendmmsg(2); seg: the share of them sent as segments of a larger message (UDP GSO)\n")
	fmt.Printf("  loss:   1 - received / (published x N), of the packets published in the window\n")
	fmt.Printf("  delay:  video, publisher's write -> subscriber's read, every packet at every subscriber\n")
	fmt.Printf("  setup:  subscribers join %d at a time; repl counts those that got no video within 20 s and were replaced\n", *batch)
	if *against != "" {
		fmt.Printf("  build:  this binary, or (vs) %s; each round runs each N with both, this one first in\n", *against)
		fmt.Printf("          odd rounds\n")
	}
	fmt.Println()
	fmt.Printf("  %5s %5s %8s %5s %7s %9s %8s %8s %7s %6s %5s %5s %8s %5s %8s %9s %8s %8s\n", "round", "N", "setup s", "repl", "pub/s", "recv/s", "loss",
		"srv cpu", "us/pkt", "us/wr", "usr", "sys", "pkt/call", "seg", "this cpu", "delay p50", "p99 ms", "max ms")
	for _, r := range res.Runs {
		round := strconv.Itoa(r.Round)
		if r.Against {
			round += " vs"
		}
		if r.Error != "" {
			fmt.Printf("  %5s %5d  not measured: %d of %d subscribers received video (%d replaced); %s\n",
				round, r.Subscribers, r.Joined, r.Subscribers, r.Replaced, r.Error)
			continue
		}
		perCall, seg := 0.0, 0.0
		if r.MediaBatches > 0 {
			perCall = float64(r.MediaDatagrams) / float64(r.MediaBatches)
		}
		if r.MediaDatagrams > 0 {
			seg = 100 * float64(r.MediaSegmented) / float64(r.MediaDatagrams)
		}
		fmt.Printf("  %5s %5d %8.1f %5d %7.1f %9.0f %7.2f%% %8.2f %7.1f %6.1f %5.1f %5.1f %8.1f %4.0f%% %8.2f %9.2f %8.2f %8.2f\n", round, r.Subscribers, r.SetupMS/1000,
			r.Replaced, r.PublishedPerSec, r.ReceivedPerSec, r.Loss*100, r.ServerCores, r.ServerUSPerPacket, r.ServerUSPerWritten,
			r.ServerUserUSPerWritten, r.ServerSysUSPerWritten, perCall, seg, r.BenchCores, r.DelayMS.P50, r.DelayMS.P99, r.DelayMS.Max)
	}
	fmt.Println()
	if *runs > 1 || *against != "" {
		fmt.Printf("  medians of the measured runs (of an even number: the mean of the middle two):\n")
		fmt.Printf("  %5s %5s %4s %9s %8s %7s %6s %5s %5s %9s %8s\n", "build", "N", "runs", "recv/s", "loss", "us/pkt", "us/wr", "usr", "sys", "delay p50", "p99 ms")
		for _, m := range res.Medians {
			build := "this"
			if m.Against {
				build = "vs"
			}
			if m.Runs == 0 {
				fmt.Printf("  %5s %5d %4d  no run measured\n", build, m.Subscribers, m.Runs)
				continue
			}
			fmt.Printf("  %5s %5d %4d %9.0f %7.2f%% %7.1f %6.1f %5.1f %5.1f %9.2f %8.2f\n", build, m.Subscribers, m.Runs, m.ReceivedPerSec,
				m.Loss*100, m.ServerUSPerPacket, m.ServerUSPerWritten, m.ServerUserUSPerWritten, m.ServerSysUSPerWritten, m.DelayP50MS, m.DelayP99MS)
		}
		fmt.Println()
	}
	for _, c := range res.Comparisons {
		ratios := make([]string, len(c.Ratios))
		for i, x := range c.Ratios {
			ratios[i] = strconv.FormatFloat(x, 'f', 3, 64)
		}
		fmt.Printf("  A/B at N = %d: us/pkt of this build / vs, by round: %s; median %.3f (%.3f-%.3f)\n",
			c.Subscribers, strings.Join(ratios, " "), c.Median, c.Min, c.Max)
	}
	if len(res.Comparisons) > 0 {
		fmt.Println()
	}
	if res.MaxUnder1PctLoss > 0 {
		fmt.Printf("  largest N with < 1%% loss in every run of this build: %d\n", res.MaxUnder1PctLoss)
	} else {
		fmt.Printf("  no N had < 1%% loss in every run of this build\n")
	}
	return nil
}

func benchGroup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench group", flag.ContinueOnError)
	sizes := fs.String("participants", "4,8,12,16", "comma-separated group sizes, one run (and one fresh server) each")
	duration := fs.Duration("duration", 10*time.Second, "how long each run measures, once every member receives every other's video")
	mediaDir := fs.String("media-dir", filepath.Dir(sampleMedia("x")), "`dir`ectory of the sample media (chrome-vp8.ivf, chrome-opus.ogg)")
	profiles := fs.String("server-cpuprofile", "", "`dir`ectory where each server writes its CPU profile as it stops (parley serve --cpuprofile), one file per run; make pgo merges them into the build's profile")
	asJSON := fs.Bool("json", false, "print one JSON object")
	verbose := fs.Bool("v", false, "log debug detail to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns, err := counts("--participants", *sizes, 2)
	if err != nil {
		return err
	}
	exe, v, a, err := sfuBenchInputs(*mediaDir)
	if err != nil {
		return err
	}
	cfg := parleybench.GroupConfig{Parley: exe, Participants: ns, Duration: *duration, Video: v, Audio: a, CPUProfiles: *profiles,
		Stderr: os.Stderr, Logger: benchLogger(*verbose)}
	res, err := parleybench.Group(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(struct {
			Bench string `json:"bench"`
			parleybench.GroupResult
		}{"group", res})
	}
	fmt.Printf("parley bench group: N members, each sending chrome-vp8.ivf + chrome-opus.ogg (looped) and receiving\n")
	fmt.Printf("  the other N-1 members' media through the SFU of a fresh child `parley serve --sfu-loopback`.\n")
	fmt.Printf("  Members are native Pion peers in this process; they and the server share this machine's %d CPUs.\n", res.CPUs)
	fmt.Printf("  window: %s per run, after every member receives every other's video; all traffic on loopback\n", *duration)
	fmt.Printf("  loss:   1 - received / (published x (N-1)); worst: the worst member-to-member stream\n")
	fmt.Printf("  us/pkt: server user+system CPU over the window / packets received by members\n\n")
	fmt.Printf("  %4s %8s %7s %9s %8s %8s %8s %7s %8s %9s %8s\n", "N", "setup s", "pub/s", "recv/s", "loss", "worst",
		"srv cpu", "us/pkt", "this cpu", "delay p50", "p99 ms")
	for _, r := range res.Runs {
		if r.Error != "" {
			fmt.Printf("  %4d  not measured: %s\n", r.Participants, r.Error)
			continue
		}
		fmt.Printf("  %4d %8.1f %7.0f %9.0f %7.2f%% %7.2f%% %8.2f %7.1f %8.2f %9.2f %8.2f\n", r.Participants, r.SetupMS/1000,
			r.PublishedPerSec, r.ReceivedPerSec, r.Loss*100, r.WorstLoss*100, r.ServerCores, r.ServerUSPerPacket,
			r.BenchCores, r.DelayMS.P50, r.DelayMS.P99)
	}
	fmt.Println()
	if res.MaxUnder1PctLoss > 0 {
		fmt.Printf("  largest group with < 1%% loss on every stream among those run: %d\n", res.MaxUnder1PctLoss)
	} else {
		fmt.Printf("  no run had < 1%% loss on every stream\n")
	}
	return nil
}

// counts parses a comma-separated list of numbers, each at least min, given to flag.
func counts(flag, list string, min int) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < min {
			return nil, fmt.Errorf("%s: %q is not a number of at least %d", flag, f, min)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// sfuBenchInputs returns what the SFU and group benchmarks run: this binary as the server,
// and the sample video and audio from dir.
func sfuBenchInputs(dir string) (exe string, video, audio *media.Stream, err error) {
	video, audio, err = loadMedia(filepath.Join(dir, "chrome-vp8.ivf"), filepath.Join(dir, "chrome-opus.ogg"))
	if err != nil {
		return "", nil, nil, err
	}
	exe, err = os.Executable()
	return exe, video, audio, err
}
