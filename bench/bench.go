// Package bench measures Parley: call setup time, signaling relay throughput and latency,
// and memory per idle signaling connection. `parley bench` prints what it measures.
//
// Every figure is a distribution over many runs (median and percentiles), or an average
// over many connections; all traffic stays on loopback (127.0.0.1).
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/parley-rtc/parley/signaling"
)

// Summary is the distribution of a set of samples. Percentiles are nearest-rank: P90 is
// the smallest sample that at least 90% of the samples do not exceed.
type Summary struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Summarize returns the distribution of xs; it sorts xs in place. An empty xs gives the
// zero Summary.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	slices.Sort(xs)
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return Summary{
		N:    len(xs),
		Min:  xs[0],
		P50:  percentile(xs, 50),
		P90:  percentile(xs, 90),
		P99:  percentile(xs, 99),
		Max:  xs[len(xs)-1],
		Mean: sum / float64(len(xs)),
	}
}

// percentile is the nearest-rank p-th percentile of sorted.
func percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// local is a signaling server running in this process on 127.0.0.1.
type local struct {
	URL  string
	sig  *signaling.Server
	http *http.Server
	done chan struct{}
}

// startLocal starts an in-process signaling server on a free loopback port.
func startLocal(log *slog.Logger) (*local, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start in-process signaling server: %w", err)
	}
	l := &local{
		URL:  "http://" + ln.Addr().String(),
		sig:  signaling.New(benchConfig(log)),
		done: make(chan struct{}),
	}
	l.http = &http.Server{Handler: l.sig, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(l.done)
		_ = l.http.Serve(ln) // ends with http.ErrServerClosed
	}()
	return l, nil
}

// Close says goodbye to every client and stops the server.
func (l *local) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.sig.Close(ctx)
	_ = l.http.Close()
	<-l.done
}

// Health fetches a server's /healthz: the counts its signaling.Stats reports.
func Health(ctx context.Context, server string) (signaling.Stats, error) {
	url := strings.TrimSuffix(server, "/") + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return signaling.Stats{}, fmt.Errorf("health check %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return signaling.Stats{}, fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return signaling.Stats{}, fmt.Errorf("health check %s: %s", url, resp.Status)
	}
	var st signaling.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return signaling.Stats{}, fmt.Errorf("health check %s: %w", url, err)
	}
	return st, nil
}

// checkLoopback refuses a server that is not on a loopback address: benchmarks load the
// server hard and must not send that load over a real network.
func checkLoopback(server string) error {
	host := server
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("server %q: %w", server, ErrNotLoopback)
}

// ErrNotLoopback is returned for a server that is not at a loopback IP address.
var ErrNotLoopback = errors.New("benchmarks only target a loopback address such as 127.0.0.1")

// benchConfig is a server without the abuse limits, which a load generator on one address
// trips by design: no per-IP connection limit and no message rate limit in practice.
func benchConfig(log *slog.Logger) signaling.Config {
	return signaling.Config{Logger: log, MaxConnsPerIP: -1, MessageRate: 1e9, MessageBurst: 1 << 30}
}

// benchServeFlags are the same settings for a `parley serve` child process.
var benchServeFlags = []string{"--turn-addr", "off", "--max-conns-per-ip", "-1",
	"--message-rate", "1e9", "--message-burst", "1073741824"}

// pionLogger is where the benchmark peers' Pion logs go: the benchmark's logger when it
// logs debug detail (-v), nowhere otherwise. Hundreds of peers closing at the end of a
// run log, each, the writes that lost the race with the close.
func pionLogger(l *slog.Logger) *slog.Logger {
	if l != nil && l.Enabled(context.Background(), slog.LevelDebug) {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
