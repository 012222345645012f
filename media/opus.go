package media

import (
	"errors"
	"fmt"
	"time"
)

// opusClockRate is the RTP clock rate of Opus whatever its sampling rate (RFC 7587 §4.1).
const opusClockRate = 48000

// opusMaxPacketDuration is the longest an Opus packet may last (RFC 6716 §3.2.5, R5).
const opusMaxPacketDuration = 120 * time.Millisecond

// opusFrameDurations maps the config number, the top five bits of the TOC byte, to the
// duration of each frame in the packet (RFC 6716 §3.1, Table 2).
var opusFrameDurations = [32]time.Duration{
	// SILK-only, NB, MB, WB
	10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond,
	// Hybrid, SWB, FB
	10 * time.Millisecond, 20 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond,
	// CELT-only, NB, WB, SWB, FB
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
}

// opusPacketDuration returns how long an Opus packet plays, from its TOC byte: the frame
// duration of its config times its frame count, which code 0 says is one, codes 1 and 2
// two, and code 3 gives in the low six bits of the second byte (RFC 6716 §3.1, §3.2).
func opusPacketDuration(packet []byte) (time.Duration, error) {
	if len(packet) == 0 {
		return 0, errors.New("empty packet")
	}
	toc := packet[0]
	frames := 1
	switch toc & 0x3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(packet) < 2 {
			return 0, errors.New("code 3 packet without frame count byte")
		}
		frames = int(packet[1] & 0x3f)
		if frames == 0 {
			return 0, errors.New("code 3 packet with zero frames")
		}
	}
	d := time.Duration(frames) * opusFrameDurations[toc>>3]
	if d > opusMaxPacketDuration {
		return 0, fmt.Errorf("packet lasts %v, more than %v", d, opusMaxPacketDuration)
	}
	return d, nil
}
