package peer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// maxLate is how many packets the video sample builder waits for a missing one before it
// gives up on the frame: about 5 frames of 480p VP8.
const maxLate = 64

// receive reads one remote track until the peer connection closes or the track is taken
// away, counting what arrives and recording it.
func (c *call) receive(t *webrtc.TrackRemote) {
	mime := strings.ToLower(t.Codec().MimeType)
	isVideo := t.Kind() == webrtc.RTPCodecTypeVideo
	rt := &remoteTrack{participant: t.StreamID(), kind: t.Kind().String()}
	c.mu.Lock()
	c.tracks = append(c.tracks, rt)
	c.mu.Unlock()
	kind := 0
	if isVideo {
		kind = 1
	}
	rec := c.rec
	if rec != nil && !c.recording[kind].CompareAndSwap(false, true) {
		rec = nil
	}
	var sb *samplebuilder.SampleBuilder
	if isVideo {
		if mime != strings.ToLower(webrtc.MimeTypeVP8) {
			c.log.Warn("remote video codec is not VP8; frames are not counted", "codec", mime)
		} else {
			sb = samplebuilder.New(maxLate, &codecs.VP8Packet{}, t.Codec().ClockRate)
		}
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var first firstFrame
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			// Reads also end when hangUp closes the peer connection; only an end before
			// that is the track's own.
			c.mu.Lock()
			if !c.done {
				rt.ended.Store(true)
			}
			c.mu.Unlock()
			return
		}
		c.bytesRecv.Add(int64(n))
		if !isVideo {
			c.audioRecv.Add(1)
			rt.packets.Add(1)
			if rec != nil {
				if err := pkt.Unmarshal(buf[:n]); err == nil {
					rec.writeAudio(&pkt, t.Codec())
				}
			}
			continue
		}
		if sb == nil {
			continue
		}
		// The sample builder keeps the packet, so it gets its own copy.
		p := &rtp.Packet{}
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			continue
		}
		rt.mu.Lock()
		rt.seq.add(p.SequenceNumber, p.Timestamp)
		rt.mu.Unlock()
		if c.firstVideo.Load() == 0 && first.add(p) {
			c.firstVideo.Store(int64(time.Since(c.start)))
		}
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			c.videoRecv.Add(1)
			rt.frames.Add(1)
			if w, h, ok := vp8KeyFrameSize(s.Data); ok {
				rt.mu.Lock()
				if n := len(rt.widths); n == 0 || rt.widths[n-1] != w {
					rt.widths = append(rt.widths, w)
				}
				rt.mu.Unlock()
				c.remoteW.Store(int32(w))
				c.remoteH.Store(int32(h))
			}
			if rec != nil {
				rec.writeVideo(s.Data, s.PacketTimestamp)
			}
		}
	}
}

// seqCheck follows an RTP stream's sequence numbers and timestamps for the report.
type seqCheck struct {
	started bool
	highest uint16
	ts      uint32 // of the highest
	packets int64
	maxJump int
	tsBack  int64
}

func (s *seqCheck) add(seq uint16, ts uint32) {
	s.packets++
	if !s.started {
		s.started, s.highest, s.ts = true, seq, ts
		return
	}
	d := int(int16(seq - s.highest))
	if d <= 0 && d > -maxLate {
		return // a late or repeated packet
	}
	// Far behind is a jump too (a new sequence, not a late packet); the stream goes on from
	// there.
	s.maxJump = max(s.maxJump, d, -d)
	if int32(ts-s.ts) < 0 {
		s.tsBack++
	}
	s.highest, s.ts = seq, ts
}

// firstFrame tells when the first VP8 frame is complete: its first packet (S=1, partition
// 0, RFC 7741 §4.2), its last (the RTP marker bit, RFC 7741 §4.1) and every sequence number
// between have arrived. The sample builder, which counts frames, only releases a frame
// when a packet of the next one arrives, a frame interval later; this does not wait.
type firstFrame struct {
	ts         uint32
	started    bool
	head, tail int // sequence numbers of the first and last packet, -1 until seen
	seen       map[uint16]bool
}

// add takes a packet and reports whether the first frame is now complete.
func (f *firstFrame) add(p *rtp.Packet) bool {
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(p.Payload); err != nil {
		return false
	}
	if !f.started || p.Timestamp != f.ts {
		if vp8.S != 1 || vp8.PID != 0 {
			return false // wait for a frame seen from its start
		}
		*f = firstFrame{ts: p.Timestamp, started: true, head: int(p.SequenceNumber), tail: -1, seen: map[uint16]bool{}}
	}
	f.seen[p.SequenceNumber] = true
	if p.Marker {
		f.tail = int(p.SequenceNumber)
	}
	if f.tail < 0 {
		return false
	}
	for seq := uint16(f.head); ; seq++ {
		if !f.seen[seq] {
			return false
		}
		if int(seq) == f.tail {
			return true
		}
	}
}

// vp8KeyFrameSize reads the size from a VP8 key frame's header (RFC 6386 §9.1): a 3-byte
// frame tag whose lowest bit is 0 for key frames, the start code 9d 01 2a, then 14-bit width
// and height.
func vp8KeyFrameSize(frame []byte) (w, h int, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	w = int(frame[6]) | int(frame[7]&0x3f)<<8
	h = int(frame[8]) | int(frame[9]&0x3f)<<8
	return w, h, true
}

// recorder writes received media: complete VP8 frames to an IVF file from the first key
// frame on, Opus packets to an Ogg file.
type recorder struct {
	dir string

	mu    sync.Mutex
	video *ivfwriter.IVFWriter
	audio *oggwriter.OggWriter
	err   error
}

func newRecorder(dir string) (*recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("record to %s: %w", dir, err)
	}
	return &recorder{dir: dir}, nil
}

// writeVideo writes one complete frame. The IVF header needs the frame size, so the file is
// created at the first key frame, and frames before it (undecodable) are dropped.
func (r *recorder) writeVideo(frame []byte, rtpTimestamp uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if r.video == nil {
		w, h, ok := vp8KeyFrameSize(frame)
		if !ok {
			return
		}
		r.video, r.err = ivfwriter.New(filepath.Join(r.dir, "video.ivf"),
			ivfwriter.WithCodec(webrtc.MimeTypeVP8), ivfwriter.WithWidthAndHeight(uint16(w), uint16(h)),
			ivfwriter.WithFrameRate(1, 90000), ivfwriter.WithDirectPTS())
		if r.err != nil {
			return
		}
	}
	// The writer takes RTP; hand it the whole frame as one packet: a one-byte VP8 payload
	// descriptor (RFC 7741 §4.2) with S=1, partition 0, and the marker bit set.
	payload := make([]byte, 1+len(frame))
	payload[0] = 0x10
	copy(payload[1:], frame)
	r.err = r.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Marker: true, Timestamp: rtpTimestamp}, Payload: payload})
}

func (r *recorder) writeAudio(p *rtp.Packet, codec webrtc.RTPCodecParameters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if r.audio == nil {
		ch := codec.Channels
		if ch == 0 {
			ch = 2
		}
		r.audio, r.err = oggwriter.New(filepath.Join(r.dir, "audio.ogg"), codec.ClockRate, ch)
		if r.err != nil {
			return
		}
	}
	r.err = r.audio.WriteRTP(p)
}

// Close finishes both files and returns the first error met while recording.
func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if r.err != nil {
		errs = append(errs, r.err)
	}
	if r.video != nil {
		errs = append(errs, r.video.Close())
	}
	if r.audio != nil {
		errs = append(errs, r.audio.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("record to %s: %w", r.dir, err)
	}
	return nil
}
