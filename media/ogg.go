package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Ogg pages are parsed here rather than with oggreader.OggReader because a page can
// carry several Opus packets (ffmpeg's muxer packs them), or a part of one, and only
// the page's segment table, which OggReader does not expose, says where they split.

// Ogg page header layout (RFC 3533 §6).
const (
	oggPageHeaderSize = 27
	oggFlagContinued  = 0x01 // the page starts with the rest of the previous page's last packet
	oggFlagBOS        = 0x02 // first page of a logical bitstream
	oggFlagEOS        = 0x04 // last page of a logical bitstream
)

var (
	opusHeadSignature = []byte("OpusHead") // first packet of an Ogg Opus stream (RFC 7845 §5.1)
	opusTagsSignature = []byte("OpusTags") // second packet (RFC 7845 §5.2)
)

type oggPage struct {
	flags   byte
	serial  uint32
	lacing  []byte // segment table: a value below 255 ends a packet
	payload []byte
	size    int // header, segment table and payload, in bytes
}

// readOggPage reads the page at the start of data, checking its CRC when verify is set
// (only FuzzLoad turns it off, to reach the packet parsing with mutated data).
func readOggPage(data []byte, verify bool) (oggPage, error) {
	if len(data) < oggPageHeaderSize {
		return oggPage{}, fmt.Errorf("header truncated at %d bytes", len(data))
	}
	if !bytes.HasPrefix(data, oggSignature) {
		return oggPage{}, errors.New("no OggS capture pattern")
	}
	if v := data[4]; v != 0 {
		return oggPage{}, fmt.Errorf("version %d: %w", v, ErrUnsupported)
	}
	segments := int(data[26])
	if len(data) < oggPageHeaderSize+segments {
		return oggPage{}, fmt.Errorf("segment table of %d entries exceeds file", segments)
	}
	lacing := data[oggPageHeaderSize : oggPageHeaderSize+segments]
	payloadSize := 0
	for _, l := range lacing {
		payloadSize += int(l)
	}
	payloadStart := oggPageHeaderSize + segments
	if len(data)-payloadStart < payloadSize {
		return oggPage{}, fmt.Errorf("payload of %d bytes exceeds file", payloadSize)
	}
	page := data[:payloadStart+payloadSize]
	if verify {
		if want, got := binary.LittleEndian.Uint32(page[22:26]), oggCRC(page); want != got {
			return oggPage{}, fmt.Errorf("checksum %08x, computed %08x", want, got)
		}
	}
	return oggPage{
		flags:   data[5],
		serial:  binary.LittleEndian.Uint32(data[14:18]),
		lacing:  lacing,
		payload: page[payloadStart:],
		size:    len(page),
	}, nil
}

// parseOgg reads the first Opus stream of an Ogg file; other logical streams are skipped.
// Timestamps count from the first audio packet, by the packets' durations.
func parseOgg(data []byte, verify bool) (*Clip, error) {
	stream := &Stream{MimeType: webrtc.MimeTypeOpus, ClockRate: opusClockRate}
	var (
		serial      uint32
		found       bool
		packets     int // of the Opus stream, headers included
		pending     []byte
		havePending bool // pending holds the start of a packet continued on the next page
		ts          time.Duration
	)
	handle := func(packet []byte) error {
		defer func() { packets++ }()
		switch packets {
		case 0:
			if !bytes.HasPrefix(packet, opusHeadSignature) {
				return errors.New("first packet is not OpusHead")
			}
			head, err := oggreader.ParseOpusHead(packet)
			if err != nil {
				return fmt.Errorf("OpusHead: %w", err)
			}
			if head.Channels == 0 {
				return errors.New("OpusHead: zero channels")
			}
			stream.Channels = uint16(head.Channels)
		case 1:
			if !bytes.HasPrefix(packet, opusTagsSignature) {
				return errors.New("second packet is not OpusTags")
			}
		default:
			d, err := opusPacketDuration(packet)
			if err != nil {
				return err
			}
			stream.Frames = append(stream.Frames, Frame{Data: packet, Timestamp: ts, Duration: d})
			ts += d
		}
		return nil
	}

	for off := 0; off < len(data); {
		page, err := readOggPage(data[off:], verify)
		if err != nil {
			return nil, fmt.Errorf("Ogg page at byte %d: %w", off, err)
		}
		pageOff := off
		off += page.size
		if !found {
			if page.flags&oggFlagBOS == 0 || !bytes.HasPrefix(page.payload, opusHeadSignature) {
				continue
			}
			found, serial = true, page.serial
		}
		if page.serial != serial {
			continue
		}

		// skip drops the first packet of a page whose start was on a page we never saw
		// (lost or belonging to before the stream began): it cannot be decoded.
		skip := page.flags&oggFlagContinued != 0 && !havePending
		if page.flags&oggFlagContinued == 0 && havePending {
			pending, havePending = nil, false // the rest of that packet is lost
		}
		start, end := 0, 0
		for _, l := range page.lacing {
			end += int(l)
			if l == 255 {
				continue
			}
			packet := page.payload[start:end:end] // capped: appending to Data must not overwrite the file
			start = end
			if skip {
				skip = false
				continue
			}
			if havePending {
				packet = slices.Clip(append(pending, packet...))
				pending, havePending = nil, false
			}
			if err := handle(packet); err != nil {
				return nil, fmt.Errorf("Ogg page at byte %d: packet %d: %w", pageOff, packets-1, err)
			}
		}
		if n := len(page.lacing); n > 0 && page.lacing[n-1] == 255 && !skip {
			// A copy, never a slice of data, so that the appends above cannot write into it.
			pending = append(pending, page.payload[start:end]...)
			havePending = true
		}
		if page.flags&oggFlagEOS != 0 {
			break // a chained stream may follow; it is a different stream
		}
	}
	// A packet still pending here was cut off by the end of the file; it is dropped so
	// that a recording cut short still loads.
	if !found {
		return nil, fmt.Errorf("Ogg: no Opus stream; other codecs are %w", ErrUnsupported)
	}
	if len(stream.Frames) == 0 {
		return nil, errors.New("Ogg: Opus stream has no audio packets")
	}
	return &Clip{Audio: stream}, nil
}

// oggCRCTable is for the CRC-32 of RFC 3533 §6: polynomial 0x04c11db7, initial value 0,
// no reflection, so hash/crc32 (which reflects) does not compute it.
var oggCRCTable = func() (table [256]uint32) {
	for i := range table {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		table[i] = r
	}
	return table
}()

// oggCRC is the checksum of a page, computed with its checksum field as zeros.
func oggCRC(page []byte) uint32 {
	var crc uint32
	for i, b := range page {
		if i >= 22 && i < 26 {
			b = 0
		}
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
	}
	return crc
}
