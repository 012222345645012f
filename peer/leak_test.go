package peer_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-rtc/parley/internal/leakcheck"
	"github.com/parley-rtc/parley/peer"
)

// TestNoLeaks sets up and tears down 200 calls in one process, with media, and checks that
// goroutines and open file descriptors come back to where they were: the UDP sockets, DTLS
// and SRTP sessions, interceptors and signaling connections of every call must end with it.
func TestNoLeaks(t *testing.T) {
	const calls, parallel = 200, 4
	server := startServer(t)
	ivf, ogg := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg")
	cfg := peer.Config{Video: ivf.Video, Audio: ogg.Audio, Duration: 500 * time.Millisecond,
		LoopbackOnly: true, Logger: quietLogger()}

	one := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h, g := runCall(ctx, server, cfg, cfg)
		for _, r := range []result{h, g} {
			if r.err != nil {
				return r.err
			}
			if r.rep.VideoFramesReceived == 0 && r.rep.AudioPacketsReceived == 0 {
				t.Errorf("%s received no media: %+v", r.rep.Role, r.rep)
			}
		}
		return nil
	}
	// One call first, so that whatever is created once per process exists in the baseline.
	if err := one(); err != nil {
		t.Fatal(err)
	}
	baseG, baseFD := leakcheck.Settle(-1, -1, 10*time.Second, 200*time.Millisecond)

	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, calls)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := one(); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < calls; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	g, fd := leakcheck.Settle(baseG, baseFD, 10*time.Second, 200*time.Millisecond)
	t.Logf("after %d calls: %d goroutines (baseline %d), %d fds (baseline %d)", calls, g, baseG, fd, baseFD)
	if g > baseG {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%d goroutines outlived their calls:\n%s", g-baseG, buf[:n])
	}
	if fd > baseFD {
		t.Errorf("%d file descriptors outlived their calls: %s", fd-baseFD, strings.Join(leakcheck.FDs(), " "))
	}
}
