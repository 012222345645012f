package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/parley-rtc/parley/peer"
)

// WaitFor polls cond every 100 ms until it holds, the timeout passes or ctx ends.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// ReadReport reads the JSON report a `parley call --report FILE` left.
func ReadReport(path string) (peer.Report, error) {
	var rep peer.Report
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, fmt.Errorf("no report: %w", err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("report %s: %w", path, err)
	}
	return rep, nil
}
