package media

import (
	"context"
	"errors"
	"testing"
	"time"
)

// playAsync runs Play in a goroutine and returns a channel with its result, so that a
// test can check that Play ends.
func playAsync(ctx context.Context, s *Stream, loop bool, write func(Frame) error) <-chan error {
	result := make(chan error, 1)
	go func() { result <- Play(ctx, s, loop, write) }()
	return result
}

func waitPlay(t *testing.T, result <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-result:
		return err
	case <-time.After(within):
		t.Fatalf("Play did not return within %v", within)
		return nil
	}
}

func TestPlayPacesFrames(t *testing.T) {
	video := mustLoad(t, sampleIVF).Video
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()

	var frames []Frame
	start := time.Now()
	err := Play(ctx, video, false, func(f Frame) error {
		frames = append(frames, f)
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Play returned %v on cancellation, want nil", err)
	}
	// About 9 frames at 29.97 fps in 300 ms; the bounds allow for a noisy machine.
	if len(frames) < 3 || len(frames) > 20 {
		t.Errorf("wrote %d frames in %v, want about %d", len(frames), elapsed, int(elapsed/video.Frames[1].Timestamp)+1)
	}
	if elapsed > time.Second {
		t.Errorf("Play returned %v after start, want soon after the 300ms deadline", elapsed)
	}
	for i, f := range frames {
		if f.Timestamp != video.Frames[i].Timestamp || &f.Data[0] != &video.Frames[i].Data[0] {
			t.Fatalf("frame %d is not the stream's frame %d", i, i)
		}
	}
}

func TestPlayDoesNotWriteEarly(t *testing.T) {
	ms := time.Millisecond
	s := &Stream{Frames: []Frame{{Data: []byte{0}}, {Data: []byte{1}, Timestamp: 40 * ms}, {Data: []byte{2}, Timestamp: 80 * ms, Duration: 40 * ms}}}
	start := time.Now()
	var at []time.Duration
	err := Play(t.Context(), s, false, func(f Frame) error {
		at = append(at, time.Since(start))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(at) != 3 {
		t.Fatalf("wrote %d frames, want 3", len(at))
	}
	for i, d := range at {
		if d < s.Frames[i].Timestamp {
			t.Errorf("frame %d written at %v, before its timestamp %v", i, d, s.Frames[i].Timestamp)
		}
	}
}

func TestPlayLoopWrapsTimestamps(t *testing.T) {
	ms := time.Millisecond
	s := &Stream{Frames: []Frame{
		{Data: []byte{0}, Timestamp: 0, Duration: 10 * ms},
		{Data: []byte{1}, Timestamp: 10 * ms, Duration: 10 * ms},
		{Data: []byte{2}, Timestamp: 20 * ms, Duration: 10 * ms},
	}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []Frame
	start := time.Now()
	result := playAsync(ctx, s, true, func(f Frame) error {
		got = append(got, f)
		if len(got) == 7 {
			cancel()
		}
		return nil
	})
	if err := waitPlay(t, result, 5*time.Second); err != nil {
		t.Fatalf("Play returned %v on cancellation, want nil", err)
	}
	if elapsed := time.Since(start); elapsed < 60*ms {
		t.Errorf("7 frames of 10ms played in %v, want at least 60ms", elapsed)
	}
	if len(got) != 7 {
		t.Fatalf("wrote %d frames after cancelling at the 7th, want 7", len(got))
	}
	for i, f := range got {
		// The stream's frames over again, their timestamps shifted by the laps before.
		if want := s.Frames[i%3]; f.Data[0] != want.Data[0] || f.Duration != want.Duration ||
			f.Timestamp != time.Duration(i)*10*ms {
			t.Errorf("write %d: got frame %d at %v, want frame %d at %v", i, f.Data[0], f.Timestamp, i%3, time.Duration(i)*10*ms)
		}
	}
}

func TestPlayStopsOnWriteError(t *testing.T) {
	audio := mustLoad(t, sampleOgg).Audio
	errFull := errors.New("buffer full")
	writes := 0
	result := playAsync(t.Context(), audio, true, func(Frame) error {
		writes++
		if writes == 3 {
			return errFull
		}
		return nil
	})
	err := waitPlay(t, result, 5*time.Second)
	if !errors.Is(err, errFull) {
		t.Fatalf("got %v, want it to wrap %v", err, errFull)
	}
	if writes != 3 {
		t.Errorf("wrote %d frames, want Play to stop at the failing 3rd", writes)
	}
}

func TestPlayCancelIsImmediate(t *testing.T) {
	s := &Stream{Frames: []Frame{{Data: []byte{0}}, {Data: []byte{1}, Timestamp: time.Hour, Duration: time.Hour}}}
	ctx, cancel := context.WithCancel(t.Context())
	result := playAsync(ctx, s, true, func(Frame) error { return nil })
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	if err := waitPlay(t, result, time.Second); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Play took %v to notice cancellation", d)
	}

	// Already cancelled: nothing is written, even frames that are due.
	writes := 0
	if err := Play(ctx, s, false, func(Frame) error { writes++; return nil }); err != nil || writes != 0 {
		t.Errorf("cancelled context: got %v after %d writes, want nil after none", err, writes)
	}
}

func TestPlayRejectsEmptyStreams(t *testing.T) {
	if err := Play(t.Context(), &Stream{}, false, func(Frame) error { return nil }); err == nil {
		t.Error("no error for a stream without frames")
	}
	zero := &Stream{Frames: []Frame{{Data: []byte{0}}}}
	if err := Play(t.Context(), zero, true, func(Frame) error { return nil }); err == nil {
		t.Error("no error for looping a stream of no duration")
	}
}

func TestPlayDoesNotAllocatePerFrame(t *testing.T) {
	// 200 frames 20µs apart: most of them wait on the timer.
	frames := make([]Frame, 200)
	for i := range frames {
		frames[i] = Frame{Data: []byte{byte(i)}, Timestamp: time.Duration(i) * 20 * time.Microsecond, Duration: 20 * time.Microsecond}
	}
	s := &Stream{Frames: frames}
	ctx := t.Context()
	write := func(Frame) error { return nil }
	allocs := testing.AllocsPerRun(5, func() {
		if err := Play(ctx, s, false, write); err != nil {
			t.Fatal(err)
		}
	})
	// The timer is allocated once per call; nothing may scale with the 200 frames.
	if allocs > 10 {
		t.Errorf("Play of 200 frames allocated %v times, want a constant few", allocs)
	}
}
