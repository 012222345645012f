package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/parley-rtc/parley/sigclient"
)

// IdleConfig describes an idle-connection memory benchmark. Parley is required.
type IdleConfig struct {
	// Parley is the path of the parley binary the server runs from (os.Executable() for the
	// running one); the server is a child process so its memory is its own.
	Parley string
	// Conns is how many idle connections are opened; 0 means 10,000. They are sockets of
	// this process too, so keep Conns well under its open-files limit.
	Conns int
	// WarmUp connections are opened before the baseline is taken, so that what the server
	// allocates on its first connections is not charged to the measured ones; 0 means 20.
	WarmUp int
	// Batch is how many connections are opened between progress reports; 0 means 500.
	Batch int
	// Parallel bounds the dials in flight; 0 means 50.
	Parallel int
	// Settle is how long the server is left alone before each memory measurement; 0 means
	// 3 s.
	Settle time.Duration
	// Stderr receives the server's stderr; nil discards it.
	Stderr io.Writer
	// Progress, if set, is told how many connections are open after each batch.
	Progress func(open int)
}

// IdleResult is the outcome of Idle. Memory is the server's VmRSS, each figure the median
// of several readings.
type IdleResult struct {
	Server    string  `json:"server"`
	PID       int     `json:"pid"`
	Conns     int     `json:"conns"`
	WarmUp    int     `json:"warm_up_conns"`
	SettleMS  float64 `json:"settle_ms"`
	OpenMS    float64 `json:"open_ms"` // to open the Conns connections
	BeforeKiB float64 `json:"rss_before_kib"`
	AfterKiB  float64 `json:"rss_after_kib"`
	TotalKiB  float64 `json:"rss_delta_kib"`     // AfterKiB - BeforeKiB
	PerConn   float64 `json:"kib_per_conn"`      // TotalKiB / Conns
	Counted   int     `json:"healthz_conns"`     // what /healthz said with every connection open
	CloseMS   float64 `json:"close_ms"`          // to close them all, client side
	DrainMS   float64 `json:"drain_ms"`          // from the first close until /healthz said 0
	Left      int     `json:"healthz_conns_end"` // what /healthz said at the end: 0
}

// rssReadings is how many VmRSS readings, 100 ms apart, each memory figure is the median of.
const rssReadings = 5

// Idle measures the server's memory per idle signaling connection: it starts the server as
// a child process, takes its resident memory with a few warm-up connections open, opens
// cfg.Conns more that do nothing but answer pings, takes it again, and divides the growth
// by cfg.Conns. It then closes them and checks that the server's count returns to 0. The
// server is killed before Idle returns, whatever happens.
func Idle(ctx context.Context, cfg IdleConfig) (IdleResult, error) {
	if cfg.Parley == "" {
		return IdleResult{}, errors.New("idle benchmark: no parley binary to run the server from")
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 10000
	}
	if cfg.WarmUp <= 0 {
		cfg.WarmUp = 20
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 50
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	res := IdleResult{Conns: cfg.Conns, WarmUp: cfg.WarmUp, SettleMS: ms(cfg.Settle)}

	child, err := Spawn(ctx, cfg.Parley, cfg.Stderr)
	if err != nil {
		return res, err
	}
	defer child.Close()
	res.Server, res.PID = child.URL, child.PID

	// Every connection has a reader, so the server's pings are answered and it keeps the
	// connection however long the measurement takes; readers end when their connection does.
	conns := newConnSet(ctx)
	defer conns.closeAll(cfg.Parallel) // on error paths; a no-op once they are closed

	if err := conns.open(child.URL, cfg.WarmUp, cfg.Parallel); err != nil {
		return res, fmt.Errorf("idle benchmark, warm-up: %w", err)
	}
	before, err := settledRSS(ctx, child, cfg.Settle)
	if err != nil {
		return res, err
	}

	t0 := time.Now()
	for open := 0; open < cfg.Conns; {
		n := min(cfg.Batch, cfg.Conns-open)
		if err := conns.open(child.URL, n, cfg.Parallel); err != nil {
			return res, fmt.Errorf("idle benchmark, after %d connections: %w", open, err)
		}
		open += n
		if cfg.Progress != nil {
			cfg.Progress(open)
		}
	}
	res.OpenMS = ms(time.Since(t0))
	after, err := settledRSS(ctx, child, cfg.Settle)
	if err != nil {
		return res, err
	}
	res.BeforeKiB, res.AfterKiB = float64(before)/1024, float64(after)/1024
	res.TotalKiB = res.AfterKiB - res.BeforeKiB
	res.PerConn = res.TotalKiB / float64(cfg.Conns)

	st, err := Health(ctx, child.URL)
	if err != nil {
		return res, err
	}
	res.Counted = st.Connections
	if want := cfg.WarmUp + cfg.Conns; st.Connections != want {
		return res, fmt.Errorf("idle benchmark: /healthz counts %d connections with %d open", st.Connections, want)
	}
	if exited, err := child.Exited(); exited {
		return res, fmt.Errorf("idle benchmark: server exited: %v", err)
	}

	t0 = time.Now()
	conns.closeAll(cfg.Parallel)
	res.CloseMS = ms(time.Since(t0))
	for {
		st, err := Health(ctx, child.URL)
		if err != nil {
			return res, err
		}
		res.Left = st.Connections
		if st.Connections == 0 {
			res.DrainMS = ms(time.Since(t0))
			return res, nil
		}
		if time.Since(t0) > 10*time.Second {
			return res, fmt.Errorf("idle benchmark: /healthz still counts %d connections 10 s after closing them all", st.Connections)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
}

// settledRSS waits settle, then returns the median of a few readings of the server's VmRSS.
func settledRSS(ctx context.Context, child *Child, settle time.Duration) (int64, error) {
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var readings []int64
	for i := range rssReadings {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		r, err := child.RSS()
		if err != nil {
			return 0, err
		}
		readings = append(readings, r)
	}
	slices.Sort(readings)
	return readings[len(readings)/2], nil
}

// connSet is a set of idle signaling connections, each with a goroutine reading it.
type connSet struct {
	ctx     context.Context // ends every read
	cancel  context.CancelFunc
	conns   []*sigclient.Conn
	readers sync.WaitGroup
}

func newConnSet(ctx context.Context) *connSet {
	ctx, cancel := context.WithCancel(ctx)
	return &connSet{ctx: ctx, cancel: cancel}
}

// open dials n connections, parallel at a time, and starts a reader on each.
func (s *connSet) open(server string, n, parallel int) error {
	opened := make(chan *sigclient.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
			defer cancel()
			c, err := sigclient.Dial(ctx, server)
			if err != nil {
				errs <- err
				return
			}
			opened <- c
		}()
	}
	wg.Wait()
	close(opened)
	for c := range opened {
		s.conns = append(s.conns, c)
		s.readers.Add(1)
		go func() {
			defer s.readers.Done()
			for {
				if _, err := c.Read(s.ctx); err != nil {
					return
				}
			}
		}()
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// closeAll says goodbye on every connection, parallel at a time, and waits for the
// readers to end.
func (s *connSet) closeAll(parallel int) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, c := range s.conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = c.Close()
		}()
	}
	wg.Wait()
	s.conns = nil
	s.cancel()
	s.readers.Wait()
}
