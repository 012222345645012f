package media

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzLoad checks that no input makes Load panic or hang, and that what it accepts keeps
// the promises of Clip. Seeds are the starts of the sample files, small complete files
// built from them, and truncated and corrupted variants.
func FuzzLoad(f *testing.F) {
	ivf, ogg, webm := mustRead(f, sampleIVF), mustRead(f, sampleOgg), mustRead(f, sampleWebM)
	seeds := [][]byte{ivf[:4096], ogg[:4096], webm[:4096], testWebM(false), testWebM(true)}

	// A complete IVF of three short frames: the real header and frame starts, resized.
	small := bytes.Clone(ivf[:32])
	for i, off := 0, 32; i < 3; i++ {
		size := binary.LittleEndian.Uint32(ivf[off:])
		frame := bytes.Clone(ivf[off : off+12+16])
		binary.LittleEndian.PutUint32(frame, 16)
		small = append(small, frame...)
		off += 12 + int(size)
	}
	seeds = append(seeds, small)

	// A complete Ogg file: the first eight pages, headers and a few audio packets.
	off := 0
	for range 8 {
		page, err := readOggPage(ogg[off:], true)
		if err != nil {
			f.Fatal(err)
		}
		off += page.size
	}
	seeds = append(seeds, ogg[:off])

	for _, s := range seeds { // the variants appended are not ranged over
		seeds = append(seeds, s[:len(s)/2], s[:len(s)-1])
		corrupt := bytes.Clone(s)
		corrupt[len(corrupt)/3] ^= 0x5a
		seeds = append(seeds, corrupt)
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		clip, err := LoadReader(bytes.NewReader(data))
		if err == nil {
			checkClip(t, clip)
		}
		// Mutations rarely keep an Ogg page's CRC right; skip the check to reach the
		// packet parsing behind it.
		if bytes.HasPrefix(data, oggSignature) {
			if clip, err := parseOgg(data, false); err == nil {
				checkClip(t, clip)
			}
		}
	})
}

func checkClip(t *testing.T, clip *Clip) {
	if clip.Video == nil && clip.Audio == nil {
		t.Fatal("no error and no stream")
	}
	for _, s := range []*Stream{clip.Video, clip.Audio} {
		if s == nil {
			continue
		}
		if len(s.Frames) == 0 {
			t.Fatalf("%s stream without frames", s.MimeType)
		}
		for i, f := range s.Frames {
			if f.Duration < 0 {
				t.Fatalf("%s frame %d: negative duration %v", s.MimeType, i, f.Duration)
			}
			if cap(f.Data) != len(f.Data) {
				t.Fatalf("%s frame %d: data capacity %d beyond its length %d", s.MimeType, i, cap(f.Data), len(f.Data))
			}
		}
		if last := s.Frames[len(s.Frames)-1]; last.Duration <= 0 {
			t.Fatalf("%s: last frame has duration %v", s.MimeType, last.Duration)
		}
	}
}
