package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/peer"
)

// SetupConfig describes a call setup benchmark. Video is required.
type SetupConfig struct {
	// Server is the signaling server's base URL, on loopback; "" starts one in this process.
	Server string
	// Calls is how many calls are measured, one after another; 0 means 20.
	Calls int
	// WarmUp calls run first and are not measured, so that what a process sets up once is
	// not charged to the first call; 0 means 1, negative means none.
	WarmUp int
	// Video and Audio are what both peers send; the first remote video frame is what is
	// timed, so Video must be set.
	Video, Audio *media.Stream
	// Hold is how long each peer stays in the call once connected; 0 means 500 ms, enough
	// for the first frames to arrive on a loaded machine.
	Hold time.Duration
	// Logger receives the peers' and in-process server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// SetupCall is the timing of one call, in ms. Each peer's times run from the start of its
// own peer.Run; the guest starts once the host's session is ready, GuestStartMS after it.
type SetupCall struct {
	Host         peer.Report `json:"host"`
	Guest        peer.Report `json:"guest"`
	GuestStartMS float64     `json:"guest_start_ms"`
	// BothVideoMS is from the host's start until both peers had a remote video frame.
	BothVideoMS float64 `json:"both_video_ms"`
	Error       string  `json:"error,omitempty"`
}

// SetupResult is the outcome of Setup. Its summaries are over the calls that succeeded.
type SetupResult struct {
	Server    string       `json:"server"`
	InProc    bool         `json:"in_process_server"`
	Calls     int          `json:"calls"`
	WarmUp    int          `json:"warm_up_calls"`
	HoldMS    float64      `json:"hold_ms"`
	Failed    int          `json:"failed"`
	PerCall   []SetupCall  `json:"per_call"`
	Host      SetupSummary `json:"host"`
	Guest     SetupSummary `json:"guest"`
	BothVideo Summary      `json:"both_video_ms"`
}

// SetupSummary is one peer role's distributions over the calls, in ms from its start.
type SetupSummary struct {
	ConnectedMS  Summary `json:"connected_ms"`
	FirstVideoMS Summary `json:"first_video_ms"`
}

// Setup measures call setup time: for each call a native host and guest start on this
// machine, and each peer's time from its start to ICE connected and to its first remote
// video frame is recorded. Calls run one after another; a call in which a peer failed or
// saw no video counts as failed and is left out of the summaries. It fails when no call
// succeeded.
func Setup(ctx context.Context, cfg SetupConfig) (SetupResult, error) {
	if cfg.Video == nil {
		return SetupResult{}, errors.New("setup benchmark: no video to send")
	}
	if cfg.Calls <= 0 {
		cfg.Calls = 20
	}
	if cfg.WarmUp == 0 {
		cfg.WarmUp = 1
	}
	cfg.WarmUp = max(cfg.WarmUp, 0)
	if cfg.Hold <= 0 {
		cfg.Hold = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	res := SetupResult{Server: cfg.Server, Calls: cfg.Calls, WarmUp: cfg.WarmUp, HoldMS: ms(cfg.Hold)}
	if cfg.Server == "" {
		l, err := startLocal(cfg.Logger)
		if err != nil {
			return res, err
		}
		defer l.Close()
		res.Server, res.InProc = l.URL, true
	} else if err := checkLoopback(cfg.Server); err != nil {
		return res, err
	}

	for i := range cfg.WarmUp {
		if c := oneCall(ctx, res.Server, cfg); c.Error != "" {
			return res, fmt.Errorf("warm-up call %d: %s", i+1, c.Error)
		}
	}
	var hostConn, hostVideo, guestConn, guestVideo, both []float64
	for range cfg.Calls {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		c := oneCall(ctx, res.Server, cfg)
		res.PerCall = append(res.PerCall, c)
		if c.Error != "" {
			res.Failed++
			continue
		}
		hostConn = append(hostConn, c.Host.ConnectedMS)
		hostVideo = append(hostVideo, c.Host.FirstVideoMS)
		guestConn = append(guestConn, c.Guest.ConnectedMS)
		guestVideo = append(guestVideo, c.Guest.FirstVideoMS)
		both = append(both, c.BothVideoMS)
	}
	res.Host = SetupSummary{ConnectedMS: Summarize(hostConn), FirstVideoMS: Summarize(hostVideo)}
	res.Guest = SetupSummary{ConnectedMS: Summarize(guestConn), FirstVideoMS: Summarize(guestVideo)}
	res.BothVideo = Summarize(both)
	if res.Failed == cfg.Calls {
		return res, fmt.Errorf("setup benchmark: all %d calls failed; the first: %s", cfg.Calls, res.PerCall[0].Error)
	}
	return res, nil
}

// oneCall runs a host and a guest against server; the host creates the session and the
// guest joins it as soon as it is ready.
func oneCall(ctx context.Context, server string, cfg SetupConfig) SetupCall {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pc := peer.Config{
		Server: server, Video: cfg.Video, Audio: cfg.Audio, Duration: cfg.Hold,
		ConnectTimeout: 10 * time.Second, LoopbackOnly: true, Logger: cfg.Logger,
	}
	host, guest := pc, pc
	host.Create = true
	ids := make(chan string, 1)
	host.OnSession = func(id string) { ids <- id }

	type result struct {
		rep peer.Report
		err error
	}
	hostDone := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := peer.Run(ctx, host)
		hostDone <- result{rep, err}
	}()

	var c SetupCall
	select {
	case id := <-ids:
		guest.Join = id
		c.GuestStartMS = ms(time.Since(start))
		var err error
		c.Guest, err = peer.Run(ctx, guest)
		if err != nil {
			c.Error = fmt.Sprintf("guest: %v", err)
		}
	case h := <-hostDone:
		c.Host = h.rep
		c.Error = fmt.Sprintf("host ended before its session was ready: %v", h.err)
		return c
	}
	h := <-hostDone
	c.Host = h.rep
	switch {
	case h.err != nil:
		c.Error = fmt.Sprintf("host: %v", h.err)
	case c.Error != "":
	case c.Host.FirstVideoMS == 0:
		c.Error = fmt.Sprintf("host received no video (call ended: %s)", c.Host.End)
	case c.Guest.FirstVideoMS == 0:
		c.Error = fmt.Sprintf("guest received no video (call ended: %s)", c.Guest.End)
	default:
		c.BothVideoMS = max(c.Host.FirstVideoMS, c.GuestStartMS+c.Guest.FirstVideoMS)
	}
	return c
}
