package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// ebml encodes an element with an 8-byte size (as ffmpeg writes its big elements).
func ebml(id uint32, children ...[]byte) []byte {
	var b []byte
	for shift := 24; shift >= 0; shift -= 8 {
		if c := byte(id >> shift); c != 0 || len(b) > 0 {
			b = append(b, c)
		}
	}
	body := bytes.Join(children, nil)
	b = binary.BigEndian.AppendUint64(b, 1<<56|uint64(len(body)))
	return append(b, body...)
}

// ebmlUnknown encodes an element of unknown size, as MediaRecorder writes Segment and
// Cluster.
func ebmlUnknown(id uint32, children ...[]byte) []byte {
	b := ebml(id, children...)
	n := len(b) - len(bytes.Join(children, nil)) - 8
	copy(b[n:], []byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return b
}

func ebmlUint(id uint32, v uint64) []byte {
	return ebml(id, binary.BigEndian.AppendUint64(nil, v))
}

func block(track byte, relative int16, flags byte, frame []byte) []byte {
	b := []byte{0x80 | track}
	b = binary.BigEndian.AppendUint16(b, uint16(relative))
	return append(append(b, flags), frame...)
}

var (
	testKeyFrame   = []byte{0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x00, 0x30, 0x00}
	testDeltaFrame = []byte{0x51, 0x01, 0x00, 0xaa}
	testOpus20ms   = []byte{31 << 3, 0xff, 0xfe}
)

func testHeader(docType string) []byte {
	return ebml(idEBML, ebml(idDocType, []byte(docType)))
}

func testTracks() []byte {
	return ebml(idTracks,
		ebml(idTrackEntry, ebmlUint(idTrackNumber, 1), ebmlUint(idTrackType, 1), ebml(idCodecID, []byte("V_VP8")),
			ebml(idVideo, ebmlUint(idPixelWidth, 64), ebmlUint(idPixelHeight, 48))),
		ebml(idTrackEntry, ebmlUint(idTrackNumber, 2), ebmlUint(idTrackType, 2), ebml(idCodecID, []byte("A_OPUS\x00")),
			ebml(idAudio, ebmlUint(idChannels, 2))),
		ebml(idTrackEntry, ebmlUint(idTrackNumber, 3), ebmlUint(idTrackType, 1), ebml(idCodecID, []byte("V_VP9"))),
	)
}

// testWebM is a small WebM with a VP8, an Opus and a VP9 track, two clusters, a
// BlockGroup, unknown elements, and, if unknown is set, Segment and Clusters of unknown
// size, as browsers' MediaRecorder writes them.
func testWebM(unknown bool) []byte {
	cluster, segment := ebml, ebml
	if unknown {
		cluster, segment = ebmlUnknown, ebmlUnknown
	}
	return append(testHeader("webm"), segment(idSegment,
		ebml(idSeekHead, ebml(0x4DBB)), // skipped
		ebml(idInfo, ebmlUint(idTimecodeScale, 500_000)),
		testTracks(),
		ebml(0xEC, make([]byte, 10)), // Void
		cluster(idCluster,
			ebmlUint(idTimecode, 100), // × 0.5 ms
			ebml(idSimpleBlock, block(1, 0, 0x80, testKeyFrame)),
			ebml(idSimpleBlock, block(2, 0, 0x80, testOpus20ms)),
			ebml(idSimpleBlock, block(3, 0, 0x80, []byte("vp9"))),
			ebml(idBlockGroup, ebml(idBlock, block(2, 40, 0, testOpus20ms)), ebmlUint(0x9B, 40)),
			ebml(0xBF, []byte{1, 2, 3, 4}), // CRC-32, skipped
		),
		cluster(idCluster,
			ebmlUint(idTimecode, 166),
			ebml(idSimpleBlock, block(1, 0, 0, testDeltaFrame)),
			ebml(idSimpleBlock, block(2, 14, 0x80, testOpus20ms)),
		),
		ebml(idCues), // ends an unknown-size cluster
	)...)
}

func TestWebMStructure(t *testing.T) {
	for _, unknown := range []bool{false, true} {
		clip, err := LoadReader(bytes.NewReader(testWebM(unknown)))
		if err != nil {
			t.Fatalf("unknown sizes %v: %v", unknown, err)
		}
		v, a := clip.Video, clip.Audio
		if v == nil || a == nil {
			t.Fatalf("unknown sizes %v: got video %v, audio %v", unknown, v != nil, a != nil)
		}
		if v.Width != 64 || v.Height != 48 || a.Channels != 2 {
			t.Errorf("got %dx%d and %d channels, want 64x48 and 2", v.Width, v.Height, a.Channels)
		}
		ms := time.Millisecond
		want := []Frame{
			{Data: testKeyFrame, Timestamp: 50 * ms, Duration: 33 * ms},
			{Data: testDeltaFrame, Timestamp: 83 * ms, Duration: 33 * ms}, // last: the mean gap
		}
		checkStream(t, "video", v, want)
		want = []Frame{
			{Data: testOpus20ms, Timestamp: 50 * ms, Duration: 20 * ms},
			{Data: testOpus20ms, Timestamp: 70 * ms, Duration: 20 * ms}, // from a BlockGroup
			{Data: testOpus20ms, Timestamp: 90 * ms, Duration: 20 * ms}, // last: from the TOC
		}
		checkStream(t, "audio", a, want)
	}
}

func checkStream(t *testing.T, name string, s *Stream, want []Frame) {
	t.Helper()
	if len(s.Frames) != len(want) {
		t.Fatalf("%s: got %d frames, want %d", name, len(s.Frames), len(want))
	}
	for i, f := range s.Frames {
		w := want[i]
		if !bytes.Equal(f.Data, w.Data) || f.Timestamp != w.Timestamp || f.Duration != w.Duration {
			t.Errorf("%s frame %d: got % x at %v for %v, want % x at %v for %v",
				name, i, f.Data, f.Timestamp, f.Duration, w.Data, w.Timestamp, w.Duration)
		}
	}
}

// TestWebMSampleWithUnknownSizes rewrites the sample's Segment and Cluster sizes to
// "unknown" in place, as a live recording has them, and expects the same frames.
func TestWebMSampleWithUnknownSizes(t *testing.T) {
	data := mustRead(t, sampleWebM)
	want := mustLoad(t, sampleWebM)

	p := &webmParser{data: data}
	markUnknown := func(el element) {
		_, idLen, _ := readID(data[el.off:])
		_, sizeLen, _, _ := readVint(data[el.off+idLen:])
		size := data[el.off+idLen : el.off+idLen+sizeLen]
		size[0] |= 0xff >> sizeLen
		for i := 1; i < sizeLen; i++ {
			size[i] = 0xff
		}
	}
	header, err := p.element(0, len(data))
	if err != nil {
		t.Fatal(err)
	}
	seg, err := p.element(header.end, len(data))
	if err != nil || seg.id != idSegment {
		t.Fatalf("no segment after the EBML header: %v", err)
	}
	clusters := 0
	for off := seg.data; off < seg.end; {
		el, err := p.element(off, seg.end)
		if err != nil {
			t.Fatal(err)
		}
		if el.id == idCluster {
			markUnknown(el)
			clusters++
		}
		off = el.end
	}
	markUnknown(seg)
	if clusters < 2 {
		t.Fatalf("found %d clusters, want several", clusters)
	}

	got, err := LoadReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ got, want *Stream }{{got.Video, want.Video}, {got.Audio, want.Audio}} {
		checkStream(t, s.want.MimeType, s.got, s.want.Frames)
	}
}

func TestWebMErrors(t *testing.T) {
	segment := func(children ...[]byte) []byte {
		return append(testHeader("webm"), ebml(idSegment, children...)...)
	}
	oversized := ebml(idCluster, ebmlUint(idTimecode, 0), ebml(idSimpleBlock, block(1, 0, 0x80, testKeyFrame)))
	// The simple block's 8-byte size field follows its 1-byte ID and the 9+8-byte timecode.
	binary.BigEndian.PutUint64(oversized[12+17+1:], 1<<56|99999)

	for _, c := range []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"matroska doc type", append(testHeader("matroska"), ebml(idSegment, testTracks(),
			ebml(idCluster, ebmlUint(idTimecode, 0), ebml(idSimpleBlock, block(1, 0, 0x80, testKeyFrame))))...), "", nil},
		{"other doc type", append(testHeader("mkv3d"), ebml(idSegment)...), `doc type "mkv3d" not supported`, ErrUnsupported},
		{"no segment", testHeader("webm"), "no segment", nil},
		{"no tracks", segment(), "no VP8 or Opus track", ErrUnsupported},
		{"no frames", segment(testTracks()), "no frames", nil},
		{"block size exceeds cluster", segment(testTracks(), oversized, ebml(idCues)),
			"segment at byte 26: cluster at byte 292: simple block at byte 321: size 99999 exceeds element", nil},
		{"block before timecode", segment(testTracks(), ebml(idCluster, ebml(idSimpleBlock, block(1, 0, 0x80, testKeyFrame)))),
			"before the cluster timecode", nil},
		{"Xiph lacing", segment(testTracks(), ebml(idCluster, ebmlUint(idTimecode, 0), ebml(idSimpleBlock, block(2, 0, 0x82, testOpus20ms)))),
			"Xiph lacing not supported", ErrUnsupported},
		{"EBML lacing", segment(testTracks(), ebml(idCluster, ebmlUint(idTimecode, 0), ebml(idBlockGroup, ebml(idBlock, block(2, 0, 0x06, testOpus20ms))))),
			"EBML lacing not supported", ErrUnsupported},
		{"block header cut", segment(testTracks(), ebml(idCluster, ebmlUint(idTimecode, 0), ebml(idSimpleBlock, []byte{0x81, 0}))),
			"header truncated", nil},
		{"timecode scale zero", segment(ebml(idInfo, ebmlUint(idTimecodeScale, 0))), "timecode scale 0", nil},
		{"timestamp overflow", segment(ebml(idInfo, ebmlUint(idTimecodeScale, 1_000_000_000)), testTracks(),
			ebml(idCluster, ebmlUint(idTimecode, 1<<40), ebml(idSimpleBlock, block(1, 0, 0x80, testKeyFrame)))), "out of range", nil},
		{"unknown-size tracks", segment(ebmlUnknown(idTracks)), "tracks at byte 38: unknown size not supported", ErrUnsupported},
		{"encrypted track", segment(ebml(idTracks, ebml(idTrackEntry, ebmlUint(idTrackNumber, 1), ebml(idCodecID, []byte("V_VP8")), ebml(idContentEncodings))),
			ebml(idCluster, ebmlUint(idTimecode, 0), ebml(idSimpleBlock, block(1, 0, 0x80, testKeyFrame)))), "content encoding", ErrUnsupported},
		{"integer too long", segment(ebml(idInfo, ebml(idTimecodeScale, make([]byte, 9)))), "unsigned integer of 9 bytes", nil},
		{"bad element ID", segment([]byte{0x00, 0x81}), "element ID at byte 38: invalid first byte 0x00", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadReader(bytes.NewReader(c.data))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("got %q, want it to wrap %q", err, c.is)
			}
		})
	}
}
