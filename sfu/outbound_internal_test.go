package sfu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// TestOutbound writes what the forwarder and the NACK responder would through a
// connection's outbound interceptor, and checks what it counts and numbers: transport-wide
// sequence numbers across streams, retransmissions told from first sends, and the sender
// reports it sends.
func TestOutbound(t *testing.T) {
	var counts nackCounts
	o := newOutbound(&counts)
	o.interval = 20 * time.Millisecond
	f, err := o.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan *rtcp.SenderReport, 100)
	f.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				select {
				case reports <- sr:
				default:
				}
			}
		}
		return 0, nil
	}))

	const twccID = 5
	exts := []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: twccID}}
	var numbers []uint16
	nop := interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		if ext := h.GetExtension(twccID); len(ext) == 2 {
			numbers = append(numbers, binary.BigEndian.Uint16(ext))
		}
		return len(p), nil
	})
	write := func(w interceptor.RTPWriter, ssrc uint32, seqs ...uint16) {
		for _, s := range seqs {
			if _, err := w.Write(&rtp.Header{SSRC: ssrc, SequenceNumber: s, Timestamp: uint32(s) * 3000}, make([]byte, 100), nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Without RTX, a retransmission repeats a sequence number on the track's SSRC.
	plain := f.BindLocalStream(&interceptor.StreamInfo{SSRC: 1, ClockRate: 90000, RTPHeaderExtensions: exts}, nop)
	write(plain, 1, 65534, 65535, 0, 1, 2, 65535, 1, 3, 2+1024)
	if got := counts.retransmitted.Load(); got != 2 {
		t.Errorf("without RTX: %d retransmissions, want 2", got)
	}
	// With RTX (RFC 4588), it is a packet on the retransmission SSRC.
	rtx := f.BindLocalStream(&interceptor.StreamInfo{SSRC: 2, SSRCRetransmission: 3, ClockRate: 48000, RTPHeaderExtensions: exts}, nop)
	write(rtx, 2, 10, 11, 12)
	write(rtx, 3, 100, 101)
	if got := counts.retransmitted.Load(); got != 4 {
		t.Errorf("with RTX: %d retransmissions in all, want 4", got)
	}
	if got := counts.written.Load(); got != 7+3 {
		t.Errorf("%d first sends, want 10", got)
	}
	// Every packet, retransmissions too, numbered in the order sent, across streams.
	if len(numbers) != 14 {
		t.Fatalf("%d packets numbered, want 14", len(numbers))
	}
	for i, n := range numbers {
		if n != uint16(i) {
			t.Fatalf("transport-wide sequence numbers %v, want 0 to 13", numbers)
		}
	}

	// Each stream's sender report counts its first sends, and its RTP time is now's on the
	// stream's clock.
	deadline := time.After(5 * time.Second)
	for seen := map[uint32]bool{}; len(seen) < 2; {
		select {
		case sr := <-reports:
			var packets uint32
			switch sr.SSRC {
			case 1:
				packets = 7
			case 2:
				packets = 3
			default:
				t.Fatalf("a sender report for SSRC %d", sr.SSRC)
			}
			if sr.PacketCount != packets || sr.OctetCount != 100*packets {
				t.Errorf("SSRC %d: report of %d packets, %d octets; want %d, %d", sr.SSRC, sr.PacketCount, sr.OctetCount, packets, 100*packets)
			}
			at := time.Unix(int64(sr.NTPTime>>32)-2_208_988_800, int64((sr.NTPTime&0xffffffff)*1e9>>32))
			if d := time.Since(at); d < 0 || d > time.Second {
				t.Errorf("SSRC %d: report's NTP time %v, %v from now", sr.SSRC, at, d)
			}
			seen[sr.SSRC] = true
		case <-deadline:
			t.Fatal("no sender report of each stream within 5 s")
		}
	}

	// The RTP time: that of the last frame's first packet sent in sequence, plus the time
	// since on the stream's clock.
	st := o.stream(1)
	t0 := time.Now()
	h := &rtp.Header{SSRC: 1, SequenceNumber: 2000, Timestamp: 90000}
	o.stamp(st, h, 100, 112, t0)
	h.SequenceNumber++ // the same frame's next packet, 5 ms later: not its start
	o.stamp(st, h, 100, 112, t0.Add(5*time.Millisecond))
	h.SequenceNumber, h.Timestamp = 1990, 1234 // out of sequence: not the last frame
	o.stamp(st, h, 100, 112, t0.Add(7*time.Millisecond))
	o.mu.Lock()
	sr := st.report(t0.Add(100 * time.Millisecond))
	o.mu.Unlock()
	if want := uint32(90000 + 9000); sr.RTPTime != want {
		t.Errorf("RTP time %d 100 ms after the frame at 90000 began, want %d", sr.RTPTime, want)
	}

	// Closing ends the reports; a stream unbound is gone.
	f.UnbindLocalStream(&interceptor.StreamInfo{SSRC: 1})
	if o.stream(1) != nil {
		t.Error("stream 1 still there after unbind")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for len(reports) > 0 {
		<-reports
	}
	time.Sleep(3 * o.interval)
	if len(reports) != 0 {
		t.Errorf("%d sender reports after close", len(reports))
	}
}

// A stream has no sender report before its first packet: it has no timestamp to report.
func TestNoReportBeforeFirstPacket(t *testing.T) {
	st := &sendStream{ssrc: 1, clockRate: 90000}
	if sr := st.report(time.Now()); sr != nil {
		t.Errorf("report %+v before any packet", sr)
	}
}
