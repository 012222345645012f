package media

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Play hands the frames of s to write, each at its timestamp, as a live source would
// produce them, until ctx is done (Play then returns nil) or write returns an error
// (returned wrapped). Without loop it returns nil after the last frame; with loop it
// starts over after the last frame's Duration, forever.
//
// Each frame's deadline is computed from the start time, never from the previous frame,
// so a slow write or a late wake-up does not accumulate into drift: frames that are late
// are written at once. On later laps a frame's Timestamp includes the length of the laps
// before it, so timestamps keep increasing across the loop; Data and Duration are the
// stream's. write is called from Play's goroutine, one frame at a time; it must not
// modify Data, which is the stream's own and is handed out again on every lap.
//
// Play allocates nothing per frame, so it can pace many streams at once.
func Play(ctx context.Context, s *Stream, loop bool, write func(Frame) error) error {
	if s == nil || len(s.Frames) == 0 {
		return errors.New("play: stream has no frames")
	}
	last := s.Frames[len(s.Frames)-1]
	lap := last.Timestamp + last.Duration
	if loop && lap <= 0 {
		// Looping would write the stream over and over without ever waiting.
		return fmt.Errorf("play %s: stream lasts %v, cannot loop", s.MimeType, lap)
	}

	// One timer, reset per frame; unlike time.Sleep, waiting on it can be cut short by ctx.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	done := ctx.Done()

	start := time.Now()
	for offset := time.Duration(0); ; offset += lap {
		for i := range s.Frames {
			frame := s.Frames[i]
			frame.Timestamp += offset
			if wait := time.Until(start.Add(frame.Timestamp)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-done:
					return nil
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return nil // late frames must not hide cancellation
			}
			if err := write(frame); err != nil {
				return fmt.Errorf("play %s: frame %d: %w", s.MimeType, i, err)
			}
		}
		if !loop {
			return nil
		}
	}
}
