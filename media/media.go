// Package media loads sample media files (VP8 in IVF, Opus in Ogg, VP8 and Opus in WebM)
// into memory and plays them out paced by their timestamps, as a WebRTC sender would.
//
// It exists so that tests, benchmarks and demos can send real footage without a camera:
// a whole clip is parsed once, up front, so that playing it out does no I/O and no
// per-frame allocation.
package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Frame is one encoded video frame or one audio packet.
type Frame struct {
	// Data is the encoded frame. It may share memory with other frames of the clip;
	// callers must not modify it.
	Data []byte
	// Timestamp is the presentation time from the start of the stream.
	Timestamp time.Duration
	// Duration is the time until the next frame; for the last frame it is the stream's
	// nominal frame duration, so that a looped stream keeps its rhythm across the seam.
	Duration time.Duration
}

// Stream is one track of a clip, held in memory.
type Stream struct {
	MimeType      string // webrtc.MimeTypeVP8 ("video/VP8") or webrtc.MimeTypeOpus ("audio/opus")
	ClockRate     uint32 // RTP clock rate in Hz: 90000 for VP8, 48000 for Opus
	Channels      uint16 // audio only
	Width, Height uint16 // video only, in pixels
	Frames        []Frame
}

// Clip is what a media file holds: a video stream, an audio stream, or both (either may
// be nil, never both).
type Clip struct{ Video, Audio *Stream }

var (
	// ErrUnknownFormat is returned when data is neither IVF, Ogg nor WebM.
	ErrUnknownFormat = errors.New("unknown container format (want IVF, Ogg or WebM)")
	// ErrUnsupported is returned for valid files using something this package does not
	// implement: a codec other than VP8 and Opus, or block lacing in WebM.
	ErrUnsupported = errors.New("not supported")
)

// Container signatures; the container is chosen by content, never by file name.
var (
	ivfSignature  = []byte("DKIF")
	oggSignature  = []byte("OggS")
	ebmlSignature = []byte{0x1a, 0x45, 0xdf, 0xa3} // EBML header element ID (RFC 8794 §11.2.1)
)

// Load reads the whole file at path into memory and parses it. The container is chosen
// by content, not by name: IVF by "DKIF", Ogg by "OggS", WebM by the EBML header
// 1A 45 DF A3. Of an Ogg file it keeps the first Opus stream, of a WebM file the first
// VP8 and the first Opus track. Errors name the file and where in it parsing failed;
// ErrUnknownFormat and ErrUnsupported can be told apart with errors.Is.
func Load(path string) (*Clip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", path, err)
	}
	clip, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", path, err)
	}
	return clip, nil
}

// LoadReader reads r to its end and parses what it read, like Load.
func LoadReader(r io.Reader) (*Clip, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	clip, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return clip, nil
}

func parse(data []byte) (*Clip, error) {
	switch {
	case bytes.HasPrefix(data, ivfSignature):
		return parseIVF(data)
	case bytes.HasPrefix(data, oggSignature):
		return parseOgg(data, true)
	case bytes.HasPrefix(data, ebmlSignature):
		return parseWebM(data)
	}
	return nil, ErrUnknownFormat
}

// defaultVideoFrameDuration is the last frame's duration for a video stream of a single
// frame, where no interval can be measured: 30 fps is what cameras in calls usually send.
const defaultVideoFrameDuration = time.Second / 30

// setDurations sets each frame's Duration to the gap to the next frame, and the last
// frame's to last, or if last is not positive to the mean gap of the stream (which is
// the frame rate of a constant-rate stream, even where timestamps are rounded to ms).
// Gaps are clamped at zero so that out-of-order timestamps cannot yield negative durations.
func setDurations(frames []Frame, last time.Duration) {
	n := len(frames)
	if n == 0 {
		return
	}
	for i := 0; i < n-1; i++ {
		frames[i].Duration = max(frames[i+1].Timestamp-frames[i].Timestamp, 0)
	}
	if last <= 0 && n > 1 {
		last = (frames[n-1].Timestamp - frames[0].Timestamp) / time.Duration(n-1)
	}
	if last <= 0 {
		last = defaultVideoFrameDuration
	}
	frames[n-1].Duration = last
}
