package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sigclient"
)

// SignalingConfig describes a signaling relay benchmark.
type SignalingConfig struct {
	// Server is the signaling server's base URL, on loopback; "" starts one in this process,
	// which then shares the CPUs with the load generator.
	Server string
	// Pairs is how many host/guest pairs exchange messages concurrently; 0 means 50.
	Pairs int
	// Duration is how long the pairs keep starting new cycles; 0 means 5 s.
	Duration time.Duration
	// ServerPID, if set, is the server's process ID (a Child's), so that the CPU it uses
	// during the run is measured.
	ServerPID int
	// Logger receives the in-process server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// SignalingResult is the outcome of Signaling. A cycle is offer, answer, candidate,
// candidate: four relayed messages. RTT is host-side, from sending an offer to receiving
// its answer: two relays through the server and the guest's turn-around.
type SignalingResult struct {
	Server       string  `json:"server"`
	InProc       bool    `json:"in_process_server"`
	CPUs         int     `json:"cpus"` // GOMAXPROCS of the load generator
	Pairs        int     `json:"pairs"`
	DurationMS   float64 `json:"duration_ms"` // as configured
	ElapsedMS    float64 `json:"elapsed_ms"`  // until the last pair finished its last cycle
	Cycles       int64   `json:"cycles"`
	Relays       int64   `json:"relays"`
	RelaysPerSec float64 `json:"relays_per_sec"`
	RTTMS        Summary `json:"rtt_ms"`
	OfferBytes   int     `json:"offer_sdp_bytes"`
	AnswerBytes  int     `json:"answer_sdp_bytes"`
	// CPU use during the run, in cores (CPU seconds per second): this process's (the load
	// generator, and the server when it is in-process), and the server's when its PID is
	// known (Linux only; 0 elsewhere).
	ClientCPU float64 `json:"client_cpu_cores"`
	ServerCPU float64 `json:"server_cpu_cores,omitempty"`
}

// dialParallel bounds how many pairs connect at once, so that connecting is not itself a
// burst test of the server's accept queue.
const dialParallel = 16

// Signaling measures relay throughput and latency: cfg.Pairs pairs of raw signaling clients
// (no WebRTC), each pair in its own session, exchange offer, answer and candidates in a loop
// for cfg.Duration. Connecting the pairs is not timed. Any error, from any pair, fails the
// whole run: a relay that fails under load is a finding, not a sample to drop.
func Signaling(ctx context.Context, cfg SignalingConfig) (SignalingResult, error) {
	if cfg.Pairs <= 0 {
		cfg.Pairs = 50
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	res := SignalingResult{Server: cfg.Server, CPUs: runtime.GOMAXPROCS(0), Pairs: cfg.Pairs,
		DurationMS: ms(cfg.Duration), OfferBytes: len(offerSDP), AnswerBytes: len(answerSDP)}
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

	// The run ends in time even if a peer stalls: coder/websocket closes a connection whose
	// read outlives its context, which unblocks every goroutine below.
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+60*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}

	start := make(chan struct{})
	var startAt, deadline time.Time // written before start is closed
	var ready, done sync.WaitGroup
	sem := make(chan struct{}, dialParallel)
	stats := make([]pairStats, cfg.Pairs)
	for i := range cfg.Pairs {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			sem <- struct{}{}
			p, err := connectPair(ctx, res.Server)
			<-sem
			ready.Done()
			if err != nil {
				fail(fmt.Errorf("pair %d: %w", i, err))
				return
			}
			defer p.close()
			select {
			case <-start:
			case <-ctx.Done():
				return
			}
			if err := p.run(ctx, deadline, &stats[i]); err != nil {
				fail(fmt.Errorf("pair %d: %w", i, err))
			}
		}()
	}
	ready.Wait()
	cpu := startCPU(os.Getpid(), cfg.ServerPID)
	startAt = time.Now()
	deadline = startAt.Add(cfg.Duration)
	close(start)
	done.Wait()
	res.ClientCPU, res.ServerCPU = cpu.cores()
	if firstErr != nil {
		return res, fmt.Errorf("signaling benchmark, %d pairs: %w", cfg.Pairs, firstErr)
	}

	var rtts []float64
	var end time.Time
	for _, s := range stats {
		res.Cycles += s.cycles
		res.Relays += s.relays
		rtts = append(rtts, s.rtts...)
		if s.end.After(end) {
			end = s.end
		}
	}
	elapsed := end.Sub(startAt)
	res.ElapsedMS = ms(elapsed)
	res.RelaysPerSec = float64(res.Relays) / elapsed.Seconds()
	res.RTTMS = Summarize(rtts)
	if res.Cycles == 0 {
		return res, fmt.Errorf("signaling benchmark, %d pairs: no cycle completed in %s", cfg.Pairs, cfg.Duration)
	}
	return res, nil
}

// cpuWatch measures the CPU two processes use over an interval; a process it cannot read
// (no /proc, or pid 0) counts as 0.
type cpuWatch struct {
	pids  [2]int // client, server
	start [2]time.Duration
	ok    [2]bool
	at    time.Time
}

func startCPU(client, server int) cpuWatch {
	w := cpuWatch{pids: [2]int{client, server}, at: time.Now()}
	for i, pid := range w.pids {
		if pid != 0 {
			t, err := cpuTime(pid)
			w.start[i], w.ok[i] = t, err == nil
		}
	}
	return w
}

// cores returns each process's CPU time since startCPU, per second of wall time.
func (w cpuWatch) cores() (client, server float64) {
	wall := time.Since(w.at).Seconds()
	var c [2]float64
	for i, pid := range w.pids {
		if !w.ok[i] {
			continue
		}
		if t, err := cpuTime(pid); err == nil {
			c[i] = (t - w.start[i]).Seconds() / wall
		}
	}
	return c[0], c[1]
}

// pair is a host and a guest in one session.
type pair struct {
	host, guest *sigclient.Conn
	session     string
	guestID     string
}

// pairStats is what one pair measured; the host's goroutine writes it.
type pairStats struct {
	cycles, relays int64
	rtts           []float64 // ms
	end            time.Time // when the last cycle completed
}

// connectPair dials a host and a guest and puts them in a new session, as two browsers do
// before the host's offer.
func connectPair(ctx context.Context, server string) (*pair, error) {
	host, err := sigclient.Dial(ctx, server)
	if err != nil {
		return nil, err
	}
	guest, err := sigclient.Dial(ctx, server)
	if err != nil {
		host.CloseNow()
		return nil, err
	}
	p := &pair{host: host, guest: guest, guestID: guest.Welcome.UserID}
	if err := p.join(ctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *pair) join(ctx context.Context) error {
	if err := p.host.Send(ctx, protocol.CreateSession{}); err != nil {
		return err
	}
	ready, err := expect[protocol.SessionReady](ctx, p.host)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	p.session = ready.SessionID
	if err := p.guest.Send(ctx, protocol.JoinSession{SessionID: p.session}); err != nil {
		return err
	}
	if _, err := expect[protocol.Joined](ctx, p.guest); err != nil {
		return fmt.Errorf("guest: %w", err)
	}
	if _, err := expect[protocol.PeerJoined](ctx, p.host); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

// run exchanges cycles until deadline, then the host leaves; it returns when the guest has
// seen the host leave.
func (p *pair) run(ctx context.Context, deadline time.Time, st *pairStats) error {
	var guestRelays int64
	guestErr := make(chan error, 1)
	go func() { guestErr <- p.answerer(ctx, &guestRelays) }()

	err := p.offerer(ctx, deadline, st)
	if err == nil {
		err = p.host.Send(ctx, protocol.LeaveSession{SessionID: p.session})
	}
	if err != nil {
		p.guest.CloseNow() // ends the guest's read
		<-guestErr
		return fmt.Errorf("host: %w", err)
	}
	if err := <-guestErr; err != nil {
		return fmt.Errorf("guest: %w", err)
	}
	st.relays += guestRelays
	return nil
}

// offerer is the host's side: offer, wait for the answer, send a candidate, wait for the
// guest's candidate.
func (p *pair) offerer(ctx context.Context, deadline time.Time, st *pairStats) error {
	offer := protocol.Offer{SessionID: p.session, To: p.guestID, SDP: offerSDP}
	cand := protocol.Candidate{SessionID: p.session, To: p.guestID, Candidate: &protocol.ICECandidate{Candidate: candidateLine}}
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if err := p.host.Send(ctx, offer); err != nil {
			return err
		}
		if _, err := expect[protocol.Answer](ctx, p.host); err != nil {
			return err
		}
		st.rtts = append(st.rtts, ms(time.Since(t0)))
		if err := p.host.Send(ctx, cand); err != nil {
			return err
		}
		if _, err := expect[protocol.Candidate](ctx, p.host); err != nil {
			return err
		}
		st.relays += 2
		st.cycles++
		st.end = time.Now()
	}
	return nil
}

// answerer is the guest's side: answer each offer and return each candidate, until the
// host leaves.
func (p *pair) answerer(ctx context.Context, relays *int64) error {
	for {
		m, err := p.guest.Read(ctx)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case protocol.Offer:
			*relays++
			err = p.guest.Send(ctx, protocol.Answer{SessionID: m.SessionID, To: m.From, SDP: answerSDP})
		case protocol.Candidate:
			*relays++
			err = p.guest.Send(ctx, protocol.Candidate{SessionID: m.SessionID, To: m.From,
				Candidate: &protocol.ICECandidate{Candidate: candidateLine}})
		case protocol.PeerLeft:
			return nil
		default:
			return unexpected(m)
		}
		if err != nil {
			return err
		}
	}
}

func (p *pair) close() {
	_ = p.host.Close()
	_ = p.guest.Close()
}

// expect reads the next message and fails unless it is a T.
func expect[T protocol.Message](ctx context.Context, c *sigclient.Conn) (T, error) {
	m, err := c.Read(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return t, fmt.Errorf("waiting for %s: %w", t.Type(), unexpected(m))
	}
	return t, nil
}

// ErrUnexpected is wrapped by the error for a message a benchmark client did not expect;
// a protocol.Error from the server is one.
var ErrUnexpected = errors.New("unexpected signaling message")

func unexpected(m protocol.Message) error {
	if e, ok := m.(protocol.Error); ok {
		return fmt.Errorf("%w: error %s: %s", ErrUnexpected, e.Code, e.Message)
	}
	return fmt.Errorf("%w: %s", ErrUnexpected, m.Type())
}
