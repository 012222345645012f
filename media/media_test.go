package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// The sample media live beside the project, not in it (see shared/media/README.md).
const (
	sampleIVF  = "../../shared/media/chrome-vp8.ivf"
	sampleOgg  = "../../shared/media/chrome-opus.ogg"
	sampleWebM = "../../shared/media/chrome-vp8-opus.webm"
)

func mustLoad(t testing.TB, path string) *Clip {
	t.Helper()
	clip, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return clip
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func streamLength(s *Stream) time.Duration {
	last := s.Frames[len(s.Frames)-1]
	return last.Timestamp + last.Duration
}

// checkFrames checks what every loaded stream promises: non-empty frames, durations
// that are the gaps between timestamps, and a positive duration for the last frame.
func checkFrames(t *testing.T, s *Stream) {
	t.Helper()
	for i, f := range s.Frames {
		if len(f.Data) == 0 {
			t.Errorf("frame %d: empty", i)
		}
		if i+1 < len(s.Frames) {
			if next := s.Frames[i+1].Timestamp; f.Duration != next-f.Timestamp {
				t.Errorf("frame %d: duration %v, but next frame is %v later", i, f.Duration, next-f.Timestamp)
			}
		} else if f.Duration <= 0 {
			t.Errorf("last frame: duration %v", f.Duration)
		}
	}
}

// isVP8KeyFrame reports whether frame is a VP8 key frame: bit 0 of the frame tag is 0 and
// the start code 9d 01 2a follows the 3-byte tag (RFC 6386 §9.1).
func isVP8KeyFrame(frame []byte) bool {
	return len(frame) >= 6 && frame[0]&1 == 0 && bytes.Equal(frame[3:6], []byte{0x9d, 0x01, 0x2a})
}

func TestLoadIVF(t *testing.T) {
	clip := mustLoad(t, sampleIVF)
	if clip.Audio != nil {
		t.Error("IVF clip has an audio stream")
	}
	v := clip.Video
	if v == nil {
		t.Fatal("no video stream")
	}
	if v.MimeType != webrtc.MimeTypeVP8 || v.ClockRate != 90000 {
		t.Errorf("got %s at %d Hz, want %s at 90000 Hz", v.MimeType, v.ClockRate, webrtc.MimeTypeVP8)
	}
	if v.Width != 480 || v.Height != 270 {
		t.Errorf("got %dx%d, want 480x270", v.Width, v.Height)
	}
	if len(v.Frames) != 899 {
		t.Errorf("got %d frames, want 899", len(v.Frames))
	}
	checkFrames(t, v)
	// 29.97 fps: the IVF time base is 1001/30000 s, so frame 300 is at exactly 10.01 s.
	if got, want := v.Frames[300].Timestamp, 10010*time.Millisecond; got != want {
		t.Errorf("frame 300 at %v, want %v", got, want)
	}
	if d := streamLength(v); d < 29900*time.Millisecond || d > 30100*time.Millisecond {
		t.Errorf("stream lasts %v, want about 30 s", d)
	}
	if !isVP8KeyFrame(v.Frames[0].Data) {
		t.Errorf("first frame is not a key frame: % x", v.Frames[0].Data[:6])
	}
	// The README promises a key frame every 60 frames.
	if !isVP8KeyFrame(v.Frames[60].Data) || isVP8KeyFrame(v.Frames[1].Data) {
		t.Error("key frames not where the README says: every 60 frames")
	}
}

func TestLoadOgg(t *testing.T) {
	clip := mustLoad(t, sampleOgg)
	if clip.Video != nil {
		t.Error("Ogg clip has a video stream")
	}
	a := clip.Audio
	if a == nil {
		t.Fatal("no audio stream")
	}
	if a.MimeType != webrtc.MimeTypeOpus || a.ClockRate != 48000 || a.Channels != 2 {
		t.Errorf("got %s at %d Hz, %d channels; want %s at 48000 Hz, 2 channels",
			a.MimeType, a.ClockRate, a.Channels, webrtc.MimeTypeOpus)
	}
	// The file packs up to three packets in a page; 1500 packets of 20 ms make 30 s.
	if len(a.Frames) != 1500 {
		t.Errorf("got %d packets, want 1500", len(a.Frames))
	}
	checkFrames(t, a)
	for i, f := range a.Frames {
		if f.Duration != 20*time.Millisecond || f.Timestamp != time.Duration(i)*20*time.Millisecond {
			t.Fatalf("packet %d: at %v for %v, want at %v for 20ms", i, f.Timestamp, f.Duration, time.Duration(i)*20*time.Millisecond)
		}
	}
}

func TestLoadWebM(t *testing.T) {
	clip := mustLoad(t, sampleWebM)
	v, a := clip.Video, clip.Audio
	if v == nil || a == nil {
		t.Fatalf("got video %v, audio %v; want both", v != nil, a != nil)
	}
	if v.MimeType != webrtc.MimeTypeVP8 || v.ClockRate != 90000 || v.Width != 480 || v.Height != 270 {
		t.Errorf("video: got %s at %d Hz, %dx%d", v.MimeType, v.ClockRate, v.Width, v.Height)
	}
	if a.MimeType != webrtc.MimeTypeOpus || a.ClockRate != 48000 || a.Channels != 2 {
		t.Errorf("audio: got %s at %d Hz, %d channels", a.MimeType, a.ClockRate, a.Channels)
	}
	checkFrames(t, v)
	checkFrames(t, a)
	if !isVP8KeyFrame(v.Frames[0].Data) {
		t.Errorf("first frame is not a key frame: % x", v.Frames[0].Data[:6])
	}
	for _, s := range []*Stream{v, a} {
		if d := streamLength(s); d < 29900*time.Millisecond || d > 30100*time.Millisecond {
			t.Errorf("%s lasts %v, want about 30 s", s.MimeType, d)
		}
	}

	// The WebM muxes the same encodings as the IVF and the Ogg file: same frames, in order.
	ivf, ogg := mustLoad(t, sampleIVF), mustLoad(t, sampleOgg)
	for _, c := range []struct{ webm, alone *Stream }{{v, ivf.Video}, {a, ogg.Audio}} {
		if len(c.webm.Frames) != len(c.alone.Frames) {
			t.Errorf("%s: %d frames in WebM, %d alone", c.webm.MimeType, len(c.webm.Frames), len(c.alone.Frames))
			continue
		}
		for i := range c.webm.Frames {
			if !bytes.Equal(c.webm.Frames[i].Data, c.alone.Frames[i].Data) {
				t.Errorf("%s frame %d differs between WebM and its single-stream file", c.webm.MimeType, i)
				break
			}
			// WebM timestamps are in ms and the muxer kept the audio capture's jitter, so
			// they only roughly match.
			if d := c.webm.Frames[i].Timestamp - c.alone.Frames[i].Timestamp; d < -50*time.Millisecond || d > 50*time.Millisecond {
				t.Errorf("%s frame %d at %v in WebM, %v alone", c.webm.MimeType, i, c.webm.Frames[i].Timestamp, c.alone.Frames[i].Timestamp)
				break
			}
		}
	}
	// Opus durations come from the packets, not the jittery block timestamps, so audio
	// is paced as evenly from the WebM as from the Ogg file.
	for i, f := range a.Frames {
		if f.Duration != 20*time.Millisecond {
			t.Errorf("WebM Opus packet %d lasts %v, want 20ms", i, f.Duration)
			break
		}
	}
}

func TestLoadChoosesContainerByContent(t *testing.T) {
	// An IVF file named .ogg and an Ogg file named .webm.
	dir := t.TempDir()
	for _, c := range []struct{ src, name string }{{sampleIVF, "clip.ogg"}, {sampleOgg, "clip.webm"}} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, mustRead(t, c.src), 0o600); err != nil {
			t.Fatal(err)
		}
		want := mustLoad(t, c.src)
		got := mustLoad(t, path)
		if (got.Video == nil) != (want.Video == nil) || (got.Audio == nil) != (want.Audio == nil) {
			t.Errorf("%s: loaded as a different container than %s", c.name, c.src)
		}
	}
}

func TestLoadReader(t *testing.T) {
	clip, err := LoadReader(bytes.NewReader(mustRead(t, sampleWebM)))
	if err != nil {
		t.Fatal(err)
	}
	if clip.Video == nil || clip.Audio == nil || len(clip.Video.Frames) != 899 || len(clip.Audio.Frames) != 1500 {
		t.Errorf("LoadReader got a different clip than Load")
	}
}

func TestLoadErrors(t *testing.T) {
	ivf, ogg, webm := mustRead(t, sampleIVF), mustRead(t, sampleOgg), mustRead(t, sampleWebM)
	corruptOgg := bytes.Clone(ogg[:20000])
	corruptOgg[5000] ^= 0xff
	hugeIVFFrame := bytes.Clone(ivf[:100])
	binary.LittleEndian.PutUint32(hugeIVFFrame[32:], 0xffffffff)

	for _, c := range []struct {
		name string
		data []byte
		want string // in the error
		is   error
	}{
		{"empty", nil, "unknown container", ErrUnknownFormat},
		{"text", []byte("hello, world"), "unknown container", ErrUnknownFormat},
		{"IVF header only", ivf[:20], "IVF file header", nil},
		{"IVF frame cut", ivf[:1000], "IVF frame 0 at byte 32: size 25378 exceeds file", nil},
		{"IVF frame size huge", hugeIVFFrame, "size 4294967295 exceeds file", nil},
		{"IVF of VP9", append(append(bytes.Clone(ivf[:8]), "VP90"...), ivf[12:]...), `IVF codec "VP90"`, ErrUnsupported},
		{"Ogg page cut", ogg[:300], "Ogg page at byte", nil},
		{"Ogg corrupt", corruptOgg, "checksum", nil},
		{"WebM cut", webm[:100000], "segment at byte 36: size 2594600 exceeds file", nil},
		{"WebM header only", webm[:30], "size", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.bin")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), `load "`+path+`": `) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q, want it to name the file and say %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("got %q, want it to wrap %q", err, c.is)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("no/such/file.webm")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), `"no/such/file.webm"`) {
		t.Errorf("got %v, want a not-exist error naming the file", err)
	}
}

// TestOggPacketsAcrossPages remuxes the sample's packets with few segments per page, so
// that packets are split across pages, and checks that they come back whole.
func TestOggPacketsAcrossPages(t *testing.T) {
	want := mustLoad(t, sampleOgg).Audio
	head := mustRead(t, sampleOgg)
	first, err := readOggPage(head, true)
	if err != nil {
		t.Fatal(err)
	}
	packets := [][]byte{first.payload, []byte("OpusTags\x00\x00\x00\x00\x00\x00\x00\x00")}
	for _, f := range want.Frames {
		packets = append(packets, f.Data)
	}
	for _, maxSegments := range []int{1, 2, 3, 255} {
		got, err := LoadReader(bytes.NewReader(oggFile(0x1234, packets, maxSegments)))
		if err != nil {
			t.Fatalf("%d segments a page: %v", maxSegments, err)
		}
		if len(got.Audio.Frames) != len(want.Frames) {
			t.Fatalf("%d segments a page: got %d packets, want %d", maxSegments, len(got.Audio.Frames), len(want.Frames))
		}
		for i := range want.Frames {
			if !bytes.Equal(got.Audio.Frames[i].Data, want.Frames[i].Data) {
				t.Fatalf("%d segments a page: packet %d differs", maxSegments, i)
			}
		}
	}
}

func TestOggSkipsOtherStreams(t *testing.T) {
	want := mustLoad(t, sampleOgg).Audio
	// Another logical stream's pages, before and between the Opus stream's.
	other := oggFile(7, [][]byte{[]byte("\x01vorbis header"), []byte("data")}, 255)
	data := append(bytes.Clone(other), mustRead(t, sampleOgg)...)
	clip, err := LoadReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(clip.Audio.Frames) != len(want.Frames) {
		t.Errorf("got %d packets, want %d", len(clip.Audio.Frames), len(want.Frames))
	}
	if _, err := LoadReader(bytes.NewReader(other)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Ogg without Opus: got %v, want %v", err, ErrUnsupported)
	}
}

// oggFile muxes packets into one logical stream of pages of at most maxSegments
// segments each, the first page marked as its start and the last as its end.
func oggFile(serial uint32, packets [][]byte, maxSegments int) []byte {
	type segment struct {
		data []byte
		last bool // of its packet
	}
	var segments []segment
	for _, p := range packets {
		for len(p) >= 255 {
			segments = append(segments, segment{p[:255], false})
			p = p[255:]
		}
		segments = append(segments, segment{p, true})
	}
	var out []byte
	continued := false
	for seq := uint32(0); len(segments) > 0; seq++ {
		n := min(maxSegments, len(segments))
		// The first page holds only the ID header (RFC 7845 §3).
		if seq == 0 {
			for i := range n {
				if segments[i].last {
					n = i + 1
					break
				}
			}
		}
		var flags byte
		if continued {
			flags |= oggFlagContinued
		}
		if seq == 0 {
			flags |= oggFlagBOS
		}
		if n == len(segments) {
			flags |= oggFlagEOS
		}
		page := make([]byte, oggPageHeaderSize, oggPageHeaderSize+n+n*255)
		copy(page, oggSignature)
		page[5] = flags
		binary.LittleEndian.PutUint32(page[14:], serial)
		binary.LittleEndian.PutUint32(page[18:], seq)
		page[26] = byte(n)
		for _, s := range segments[:n] {
			page = append(page, byte(len(s.data)))
		}
		for _, s := range segments[:n] {
			page = append(page, s.data...)
		}
		binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
		out = append(out, page...)
		continued = !segments[n-1].last
		segments = segments[n:]
	}
	return out
}

func TestOpusPacketDuration(t *testing.T) {
	for _, c := range []struct {
		packet []byte
		want   time.Duration // 0 for an error
	}{
		{nil, 0},
		{[]byte{0<<3 | 0}, 10 * time.Millisecond},              // SILK NB 10 ms, one frame
		{[]byte{3<<3 | 0}, 60 * time.Millisecond},              // SILK NB 60 ms
		{[]byte{3<<3 | 1}, 120 * time.Millisecond},             // two 60 ms frames
		{[]byte{13<<3 | 2}, 40 * time.Millisecond},             // Hybrid SWB 20 ms, two frames
		{[]byte{16<<3 | 0}, 2500 * time.Microsecond},           // CELT NB 2.5 ms
		{[]byte{31<<3 | 0, 0xff, 0xfe}, 20 * time.Millisecond}, // CELT FB 20 ms, as in the sample
		{[]byte{16<<3 | 3, 48}, 120 * time.Millisecond},        // 48 frames of 2.5 ms
		{[]byte{16<<3 | 3, 49}, 0},                             // 122.5 ms: too long
		{[]byte{31<<3 | 3, 0x80 | 3}, 60 * time.Millisecond},   // VBR flag ignored
		{[]byte{31<<3 | 3}, 0},                                 // no frame count
		{[]byte{31<<3 | 3, 0}, 0},                              // zero frames
		{[]byte{11<<3 | 3, 3}, 0},                              // 3 × 60 ms
	} {
		got, err := opusPacketDuration(c.packet)
		if c.want == 0 && err == nil || c.want != 0 && (err != nil || got != c.want) {
			t.Errorf("% x: got %v, %v; want %v", c.packet, got, err, c.want)
		}
	}
}

func TestTimebase(t *testing.T) {
	tb := timebase{num: 1001, den: 30000}
	if d, err := tb.duration(30000); err != nil || d != 1001*time.Second {
		t.Errorf("got %v, %v; want 1001s", d, err)
	}
	if _, err := tb.duration(1 << 62); err == nil {
		t.Error("no error for a timestamp beyond time.Duration")
	}
	if _, err := (timebase{num: 0xffffffff, den: 1}).duration(^uint64(0)); err == nil {
		t.Error("no error for an overflowing product")
	}
}

func TestSetDurations(t *testing.T) {
	frames := []Frame{{Timestamp: 0}, {Timestamp: 30 * time.Millisecond}, {Timestamp: 20 * time.Millisecond}, {Timestamp: 90 * time.Millisecond}}
	setDurations(frames, 0)
	got := []time.Duration{frames[0].Duration, frames[1].Duration, frames[2].Duration, frames[3].Duration}
	// Out of order timestamps give 0, never a negative duration; the last is the mean gap.
	want := []time.Duration{30 * time.Millisecond, 0, 70 * time.Millisecond, 30 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
