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
)

// A minimal WebM (Matroska) demuxer: only what is needed to pull VP8 and Opus frames out
// of files written by ffmpeg and by browsers' MediaRecorder, which leaves the sizes of the
// Segment and of each Cluster unknown because it streams them. Elements are EBML
// (RFC 8794); their meaning is Matroska's (RFC 9559). Every size is checked against the
// bytes that remain in its parent, so hostile input cannot make it allocate or panic;
// frames are slices of the file, not copies.

// Element IDs, marker bits included, as the specifications write them.
const (
	idEBML             = 0x1A45DFA3
	idDocType          = 0x4282
	idSegment          = 0x18538067
	idSeekHead         = 0x114D9B74
	idInfo             = 0x1549A966
	idTimecodeScale    = 0x2AD7B1
	idTracks           = 0x1654AE6B
	idTrackEntry       = 0xAE
	idTrackNumber      = 0xD7
	idTrackType        = 0x83
	idCodecID          = 0x86
	idDefaultDuration  = 0x23E383
	idContentEncodings = 0x6D80
	idVideo            = 0xE0
	idPixelWidth       = 0xB0
	idPixelHeight      = 0xBA
	idAudio            = 0xE1
	idChannels         = 0x9F
	idCluster          = 0x1F43B675
	idTimecode         = 0xE7
	idSimpleBlock      = 0xA3
	idBlockGroup       = 0xA0
	idBlock            = 0xA1
	idCues             = 0x1C53BB6B
	idChapters         = 0x1043A770
	idTags             = 0x1254C367
	idAttachments      = 0x1941A469
)

// Matroska codec IDs (RFC 9559 §5.1.4.1.21; codec mappings in the Matroska codec specs).
const (
	codecVP8  = "V_VP8"
	codecOpus = "A_OPUS"
)

// defaultTimecodeScale is the length of a timecode tick when Info does not say: 1 ms.
const defaultTimecodeScale = 1_000_000 // ns

func elementName(id uint32) string {
	switch id {
	case idEBML:
		return "EBML header"
	case idSegment:
		return "segment"
	case idSeekHead:
		return "seek head"
	case idInfo:
		return "info"
	case idTracks:
		return "tracks"
	case idTrackEntry:
		return "track entry"
	case idVideo:
		return "video"
	case idAudio:
		return "audio"
	case idCluster:
		return "cluster"
	case idSimpleBlock:
		return "simple block"
	case idBlockGroup:
		return "block group"
	case idBlock:
		return "block"
	case idCues:
		return "cues"
	case idTags:
		return "tags"
	}
	return fmt.Sprintf("element 0x%X", id)
}

// isTopLevel reports whether id is an element that lives directly in the Segment (or
// above); meeting one ends a Cluster of unknown size (RFC 8794 §6.2).
func isTopLevel(id uint32) bool {
	switch id {
	case idEBML, idSegment, idSeekHead, idInfo, idTracks, idCluster, idCues, idChapters,
		idTags, idAttachments:
		return true
	}
	return false
}

type element struct {
	id      uint32
	off     int // of the element's ID, in the file
	data    int // of its data
	end     int // of its data; for an unknown size, of its parent
	unknown bool
}

type webmTrack struct {
	number          uint64
	codec           string
	width, height   uint64
	channels        uint64
	defaultDuration uint64 // ns, 0 if absent
	encoded         bool   // compressed or encrypted: frames are not plain VP8 or Opus
}

type webmBlock struct {
	track    uint64
	timecode int64 // cluster timecode plus the block's, in TimecodeScale units
	data     []byte
}

type webmParser struct {
	data   []byte
	scale  uint64 // TimecodeScale, ns per timecode tick
	tracks []webmTrack
	blocks []webmBlock
}

func parseWebM(data []byte) (*Clip, error) {
	p := &webmParser{data: data, scale: defaultTimecodeScale}
	header, err := p.element(0, len(data))
	if err != nil {
		return nil, fmt.Errorf("WebM: %w", err)
	}
	if header.unknown {
		return nil, errors.New("WebM: EBML header of unknown size")
	}
	docType := "matroska" // the default, RFC 8794 §11.2.6
	err = p.children(header, func(el element) error {
		if el.id == idDocType {
			docType = p.string(el)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("WebM: %w", err)
	}
	if docType != "webm" && docType != "matroska" {
		return nil, fmt.Errorf("WebM: doc type %q %w", docType, ErrUnsupported)
	}

	haveSegment := false
	for off := header.end; off < len(data); {
		el, err := p.element(off, len(data))
		if err != nil {
			return nil, fmt.Errorf("WebM: %w", err)
		}
		if el.id == idSegment {
			// A file holds one segment; a second would be a separate presentation.
			if err := p.segment(el); err != nil {
				return nil, fmt.Errorf("WebM: %w", err)
			}
			haveSegment = true
			break
		}
		if el.unknown {
			return nil, fmt.Errorf("WebM: %s at byte %d: unknown size %w", elementName(el.id), el.off, ErrUnsupported)
		}
		off = el.end
	}
	if !haveSegment {
		return nil, errors.New("WebM: no segment")
	}
	return p.clip()
}

// element reads the header of the element at off, which must end by end.
func (p *webmParser) element(off, end int) (element, error) {
	id, idLen, err := readID(p.data[off:end])
	if err != nil {
		return element{}, fmt.Errorf("element ID at byte %d: %w", off, err)
	}
	size, sizeLen, unknown, err := readVint(p.data[off+idLen : end])
	if err != nil {
		return element{}, fmt.Errorf("%s at byte %d: size: %w", elementName(id), off, err)
	}
	el := element{id: id, off: off, data: off + idLen + sizeLen, end: end, unknown: unknown}
	if !unknown {
		if size > uint64(end-el.data) {
			within := "element"
			if end == len(p.data) {
				within = "file"
			}
			return element{}, fmt.Errorf("%s at byte %d: size %d exceeds %s", elementName(id), off, size, within)
		}
		el.end = el.data + int(size)
	}
	return el, nil
}

// children calls fn for each child of parent, which must have a known size.
func (p *webmParser) children(parent element, fn func(element) error) error {
	for off := parent.data; off < parent.end; {
		el, err := p.element(off, parent.end)
		if err == nil && el.unknown {
			err = fmt.Errorf("%s at byte %d: unknown size %w", elementName(el.id), el.off, ErrUnsupported)
		}
		if err == nil {
			err = fn(el)
		}
		if err != nil {
			return fmt.Errorf("%s at byte %d: %w", elementName(parent.id), parent.off, err)
		}
		off = el.end
	}
	return nil
}

func (p *webmParser) segment(seg element) error {
	for off := seg.data; off < seg.end; {
		el, err := p.element(off, seg.end)
		if err != nil {
			return fmt.Errorf("segment at byte %d: %w", seg.off, err)
		}
		switch {
		case el.id == idEBML || el.id == idSegment:
			return nil // the start of a next file, appended to a live one of unknown size
		case el.id == idCluster:
			off, err = p.cluster(el)
			if err != nil {
				return fmt.Errorf("segment at byte %d: %w", seg.off, err)
			}
			continue
		case el.unknown:
			return fmt.Errorf("segment at byte %d: %s at byte %d: unknown size %w", seg.off, elementName(el.id), el.off, ErrUnsupported)
		case el.id == idInfo:
			err = p.info(el)
		case el.id == idTracks:
			err = p.children(el, p.trackEntry)
		}
		if err != nil {
			return fmt.Errorf("segment at byte %d: %w", seg.off, err)
		}
		off = el.end
	}
	return nil
}

func (p *webmParser) info(info element) error {
	return p.children(info, func(el element) error {
		if el.id != idTimecodeScale {
			return nil
		}
		scale, err := p.uint(el)
		if err != nil {
			return err
		}
		if scale == 0 || scale > math.MaxInt64 {
			return fmt.Errorf("timecode scale %d out of range", scale)
		}
		p.scale = scale
		return nil
	})
}

func (p *webmParser) trackEntry(entry element) error {
	if entry.id != idTrackEntry {
		return nil
	}
	t := webmTrack{channels: 1} // Channels defaults to 1, RFC 9559 §5.1.4.1.29.3
	err := p.children(entry, func(el element) (err error) {
		switch el.id {
		case idTrackNumber:
			t.number, err = p.uint(el)
		case idCodecID:
			t.codec = p.string(el)
		case idDefaultDuration:
			t.defaultDuration, err = p.uint(el)
		case idContentEncodings:
			t.encoded = true
		case idVideo:
			err = p.children(el, func(el element) (err error) {
				switch el.id {
				case idPixelWidth:
					t.width, err = p.uint(el)
				case idPixelHeight:
					t.height, err = p.uint(el)
				}
				return err
			})
		case idAudio:
			err = p.children(el, func(el element) (err error) {
				if el.id == idChannels {
					t.channels, err = p.uint(el)
				}
				return err
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	p.tracks = append(p.tracks, t)
	return nil
}

// cluster reads the blocks of a cluster and returns where it ends: for one of unknown
// size, at the first element that cannot be its child.
func (p *webmParser) cluster(cl element) (int, error) {
	var timecode uint64
	haveTimecode := false
	for off := cl.data; off < cl.end; {
		el, err := p.element(off, cl.end)
		if err != nil {
			return 0, fmt.Errorf("cluster at byte %d: %w", cl.off, err)
		}
		if cl.unknown && isTopLevel(el.id) {
			return off, nil
		}
		if el.unknown {
			return 0, fmt.Errorf("cluster at byte %d: %s at byte %d: unknown size %w", cl.off, elementName(el.id), el.off, ErrUnsupported)
		}
		switch el.id {
		case idTimecode:
			timecode, err = p.uint(el)
			haveTimecode = true
		case idSimpleBlock, idBlockGroup:
			if !haveTimecode {
				// Matroska requires it first; without it block times mean nothing.
				err = fmt.Errorf("%s at byte %d before the cluster timecode", elementName(el.id), el.off)
			} else if el.id == idSimpleBlock {
				err = p.block(el, timecode)
			} else {
				err = p.children(el, func(el element) error {
					if el.id != idBlock {
						return nil // BlockDuration, ReferenceBlock: not needed for playout
					}
					return p.block(el, timecode)
				})
			}
		}
		if err != nil {
			return 0, fmt.Errorf("cluster at byte %d: %w", cl.off, err)
		}
		off = el.end
	}
	return cl.end, nil
}

// block reads a SimpleBlock or Block (RFC 9559 §10): track number, a 16-bit signed
// timecode relative to the cluster's, flags, then the frame.
func (p *webmParser) block(el element, clusterTimecode uint64) error {
	b := p.data[el.data:el.end]
	track, n, _, err := readVint(b)
	if err != nil {
		return fmt.Errorf("%s at byte %d: track number: %w", elementName(el.id), el.off, err)
	}
	if len(b) < n+3 {
		return fmt.Errorf("%s at byte %d: header truncated", elementName(el.id), el.off)
	}
	relative := int16(binary.BigEndian.Uint16(b[n : n+2]))
	flags := b[n+2]
	if lacing := flags >> 1 & 0x3; lacing != 0 {
		kind := [4]string{1: "Xiph", 2: "fixed-size", 3: "EBML"}[lacing]
		return fmt.Errorf("%s at byte %d: %s lacing %w", elementName(el.id), el.off, kind, ErrUnsupported)
	}
	if clusterTimecode > math.MaxInt64-math.MaxInt16 {
		return fmt.Errorf("cluster timecode %d out of range", clusterTimecode)
	}
	frame := b[n+3 : len(b) : len(b)] // capped: appending to Data must not overwrite the file
	p.blocks = append(p.blocks, webmBlock{
		track:    track,
		timecode: int64(clusterTimecode) + int64(relative),
		data:     frame,
	})
	return nil
}

// uint reads an unsigned integer element: big-endian, 0 to 8 bytes (RFC 8794 §7.2).
func (p *webmParser) uint(el element) (uint64, error) {
	b := p.data[el.data:el.end]
	if len(b) > 8 {
		return 0, fmt.Errorf("%s at byte %d: unsigned integer of %d bytes", elementName(el.id), el.off, len(b))
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// string reads a string element, which may be padded with NULs (RFC 8794 §7.4).
func (p *webmParser) string(el element) string {
	return string(bytes.TrimRight(p.data[el.data:el.end], "\x00"))
}

// clip builds the streams from the first VP8 and the first Opus track; tracks with
// other codecs are ignored.
func (p *webmParser) clip() (*Clip, error) {
	var video, audio *webmTrack
	for i := range p.tracks {
		t := &p.tracks[i]
		switch {
		case t.codec == codecVP8 && video == nil:
			video = t
		case t.codec == codecOpus && audio == nil:
			audio = t
		default:
			continue
		}
		if t.encoded {
			return nil, fmt.Errorf("WebM: track %d: content encoding (compression or encryption) %w", t.number, ErrUnsupported)
		}
	}
	if video == nil && audio == nil {
		return nil, fmt.Errorf("WebM: no VP8 or Opus track; other codecs are %w", ErrUnsupported)
	}

	var clip Clip
	if video != nil {
		if video.width > math.MaxUint16 || video.height > math.MaxUint16 {
			return nil, fmt.Errorf("WebM: track %d: size %dx%d out of range", video.number, video.width, video.height)
		}
		frames, err := p.frames(video.number)
		if err != nil {
			return nil, fmt.Errorf("WebM: track %d: %w", video.number, err)
		}
		if len(frames) > 0 {
			last := time.Duration(min(video.defaultDuration, math.MaxInt64))
			setDurations(frames, last)
			clip.Video = &Stream{
				MimeType:  webrtc.MimeTypeVP8,
				ClockRate: 90000,
				Width:     uint16(video.width),
				Height:    uint16(video.height),
				Frames:    frames,
			}
		}
	}
	if audio != nil {
		if audio.channels == 0 || audio.channels > math.MaxUint16 {
			return nil, fmt.Errorf("WebM: track %d: %d channels out of range", audio.number, audio.channels)
		}
		frames, err := p.frames(audio.number)
		if err != nil {
			return nil, fmt.Errorf("WebM: track %d: %w", audio.number, err)
		}
		if len(frames) > 0 {
			// WebM block timestamps are rounded to the timecode scale and muxers jitter
			// them, but each Opus packet says how long it lasts (RFC 6716 §3.1): use
			// that, and lay the timestamps end to end as an RTP sender does.
			setDurations(frames, 20*time.Millisecond)
			ts := frames[0].Timestamp
			for i := range frames {
				if d, err := opusPacketDuration(frames[i].Data); err == nil {
					frames[i].Duration = d
				}
				frames[i].Timestamp = ts
				ts += frames[i].Duration
			}
			clip.Audio = &Stream{
				MimeType:  webrtc.MimeTypeOpus,
				ClockRate: opusClockRate,
				Channels:  uint16(audio.channels),
				Frames:    frames,
			}
		}
	}
	if clip.Video == nil && clip.Audio == nil {
		return nil, errors.New("WebM: no frames in the VP8 or Opus track")
	}
	return &clip, nil
}

// frames returns the blocks of a track as frames with their timestamps, in file order.
func (p *webmParser) frames(track uint64) ([]Frame, error) {
	n := 0
	for _, b := range p.blocks {
		if b.track == track {
			n++
		}
	}
	frames := make([]Frame, 0, n)
	scale := int64(p.scale) // at most MaxInt64, checked when read
	for _, b := range p.blocks {
		if b.track != track {
			continue
		}
		hi, lo := bits.Mul64(uint64(abs(b.timecode)), uint64(scale))
		if hi != 0 || lo > math.MaxInt64 {
			return nil, fmt.Errorf("timecode %d × %d ns out of range", b.timecode, scale)
		}
		ts := time.Duration(b.timecode * scale)
		frames = append(frames, Frame{Data: b.data, Timestamp: ts})
	}
	return frames, nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// readID reads an element ID: a variable-length integer of at most 4 bytes whose marker
// bit is kept as part of the ID (RFC 8794 §5).
func readID(b []byte) (uint32, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("truncated")
	}
	n := bits.LeadingZeros8(b[0]) + 1
	if n > 4 {
		return 0, 0, fmt.Errorf("invalid first byte 0x%02x", b[0])
	}
	if len(b) < n {
		return 0, 0, errors.New("truncated")
	}
	var id uint32
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	return id, n, nil
}

// readVint reads a variable-length integer of 1 to 8 bytes with its marker bit removed
// (RFC 8794 §4); all value bits set means an unknown size (§6.2).
func readVint(b []byte) (v uint64, n int, allOnes bool, err error) {
	if len(b) == 0 {
		return 0, 0, false, errors.New("truncated")
	}
	if b[0] == 0 {
		return 0, 0, false, errors.New("variable-length integer longer than 8 bytes")
	}
	n = bits.LeadingZeros8(b[0]) + 1
	if len(b) < n {
		return 0, 0, false, errors.New("truncated")
	}
	v = uint64(b[0] & (0xff >> n))
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n, v == 1<<(7*n)-1, nil
}
