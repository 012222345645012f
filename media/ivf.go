package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// IVF layout (https://wiki.multimedia.cx/index.php/IVF): a 32-byte file header, then
// per frame a 12-byte header (uint32 size, uint64 PTS, little-endian) and the frame.
const (
	ivfFileHeaderSize  = 32
	ivfFrameHeaderSize = 12
)

func parseIVF(data []byte) (*Clip, error) {
	if len(data) < ivfFileHeaderSize {
		return nil, fmt.Errorf("IVF file header: truncated at %d bytes", len(data))
	}
	// ivfreader assumes the header is 32 bytes; a longer one would shift every frame.
	if size := binary.LittleEndian.Uint16(data[6:8]); size != ivfFileHeaderSize {
		return nil, fmt.Errorf("IVF file header: size %d, want %d", size, ivfFileHeaderSize)
	}
	r := bytes.NewReader(data)
	reader, header, err := ivfreader.NewWith(r)
	if err != nil {
		return nil, fmt.Errorf("IVF file header: %w", err)
	}
	if header.FourCC != "VP80" {
		return nil, fmt.Errorf("IVF codec %q: %w", header.FourCC, ErrUnsupported)
	}
	// ivfreader names the rate (bytes 16..19) "denominator" and the scale (20..23)
	// "numerator": one PTS unit lasts Numerator/Denominator seconds (1001/30000 for
	// 29.97 fps). Its frame header Timestamp is PTS*Denominator/Numerator, which is not a
	// time, so the PTS is read from the frame header in data instead.
	tick := timebase{num: uint64(header.TimebaseNumerator), den: uint64(header.TimebaseDenominator)}

	// NumFrames is only a capacity hint; bound it by what the data could hold.
	capacity := min(int(header.NumFrames), (len(data)-ivfFileHeaderSize)/ivfFrameHeaderSize)
	stream := &Stream{
		MimeType:  webrtc.MimeTypeVP8,
		ClockRate: 90000,
		Width:     header.Width,
		Height:    header.Height,
		Frames:    make([]Frame, 0, capacity),
	}
	for {
		off := len(data) - r.Len()
		rest := data[off:]
		if len(rest) == 0 {
			break
		}
		n := len(stream.Frames)
		if len(rest) < ivfFrameHeaderSize {
			return nil, fmt.Errorf("IVF frame %d at byte %d: header truncated", n, off)
		}
		// Checked here because ivfreader allocates the frame before reading it, and a
		// hostile size would make it allocate up to 4 GiB.
		size := binary.LittleEndian.Uint32(rest[0:4])
		if uint64(size) > uint64(len(rest)-ivfFrameHeaderSize) {
			return nil, fmt.Errorf("IVF frame %d at byte %d: size %d exceeds file", n, off, size)
		}
		ts, err := tick.duration(binary.LittleEndian.Uint64(rest[4:12]))
		if err != nil {
			return nil, fmt.Errorf("IVF frame %d at byte %d: %w", n, off, err)
		}
		payload, _, err := reader.ParseNextFrame()
		if err != nil {
			return nil, fmt.Errorf("IVF frame %d at byte %d: %w", n, off, err)
		}
		stream.Frames = append(stream.Frames, Frame{Data: payload, Timestamp: ts})
	}
	if len(stream.Frames) == 0 {
		return nil, errors.New("IVF: no frames")
	}
	setDurations(stream.Frames, 0)
	return &Clip{Video: stream}, nil
}

// timebase converts ticks of num/den seconds to a time.Duration exactly, without the
// rounding a float would bring or the overflow of a plain product.
type timebase struct{ num, den uint64 }

func (t timebase) duration(ticks uint64) (time.Duration, error) {
	// num < 2^32, so num*1e9 < 2^62 cannot overflow.
	hi, lo := bits.Mul64(ticks, t.num*uint64(time.Second))
	if t.den == 0 || hi >= t.den {
		return 0, fmt.Errorf("timestamp %d × %d/%d s out of range", ticks, t.num, t.den)
	}
	ns, _ := bits.Div64(hi, lo, t.den)
	if ns > math.MaxInt64 {
		return 0, fmt.Errorf("timestamp %d × %d/%d s out of range", ticks, t.num, t.den)
	}
	return time.Duration(ns), nil
}
