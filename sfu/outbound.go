package sfu

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/parley-rtc/parley/bwe"
)

// What the SFU sends one participant is counted on its way out, by one outbound per peer
// connection, under one lock:
//   - each packet gets the connection's next transport-wide sequence number
//     (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2), and is recorded with it in the
//     bandwidth estimate (package bwe), which the participant's transport-wide feedback then
//     moves;
//   - each RTP stream keeps what its sender reports carry (RFC 3550 §6.4.1): packets and
//     octets sent, and the RTP timestamp of a moment of the sender's clock; a report goes
//     every senderReportInterval;
//   - first sends are told from retransmissions, for the NACK counts.
//
// This was four interceptors, each with its own lock and its own state per stream: Pion's
// transport-wide sequence numbers and sender reports, and the SFU's estimate recorder and
// retransmission counter. At 200 subscribers the cache misses of reaching four places per
// packet cost more than what they did there. Forwarded packets now come here past Pion's
// track and interceptors (srtpOut.forward); everything else (retransmissions, and all
// packets while the SFU's SRTP write path is off) through the interceptor outbound also is.

// The estimate was Pion's GCC (pion/interceptor's gcc and cc) until it was measured as the
// largest part of the SFU's own CPU time at 200 subscribers, about a sixth of it: per packet
// sent, a map entry, a list element and two allocations, and per connection two goroutines
// fed through unbuffered channels. Here a packet sent is a slot of an array, and the
// feedback is acted on where it is read.

// senderReportInterval is how often each stream's sender report goes, as Pion sends them.
const senderReportInterval = time.Second

type outbound struct {
	nacks    *nackCounts
	interval time.Duration // between sender reports

	mu      sync.Mutex
	est     *bwe.Estimator
	seq     uint16                 // the next transport-wide sequence number
	streams map[uint32]*sendStream // by SSRC, while bound

	start, end sync.Once
	stop       chan struct{} // closed when the peer connection closes
	wg         sync.WaitGroup
}

func newOutbound(nacks *nackCounts) *outbound {
	return &outbound{nacks: nacks, interval: senderReportInterval, streams: map[uint32]*sendStream{}, stop: make(chan struct{}),
		est: bwe.New(bwe.Config{Initial: initialEstimate, Min: minEstimate, Max: maxEstimate})}
}

// sendStream is one RTP stream the SFU sends: one forwarded track to one subscriber.
// outbound.mu guards it.
type sendStream struct {
	ssrc, rtx uint32 // rtx: its retransmission stream's (RFC 4588), 0 for none
	twcc      uint8  // the header extension ID of transport-wide sequence numbers, 0 for none
	clockRate float64

	// Of its first sends, as its sender reports count them. The RTP timestamp and the time
	// it went are those of a frame's first packet in sequence, so that the time spent
	// sending a frame of many packets does not skew the report's timestamp (as Pion does).
	packets, octets uint32
	began           bool
	lastSeq         uint16
	lastTS          uint32
	lastAt          time.Time

	// Without an RTX stream a retransmission goes on the stream itself, and is a sequence
	// number sent before: a table of the last 1024 tells, which covers the cache
	// (cacheSize).
	sent []uint32 // sequence number + 1 by slot; 0 for none
}

// stream returns the stream of an SSRC, nil if none is bound.
func (o *outbound) stream(ssrc uint32) *sendStream {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.streams[ssrc]
}

// stamp counts one packet of stream st, of size bytes (its header, transport-wide number
// included, and payload) with payload bytes of payload, and returns its transport-wide
// sequence number.
func (o *outbound) stamp(st *sendStream, h *rtp.Header, payload, size int, now time.Time) uint16 {
	o.mu.Lock()
	defer o.mu.Unlock()
	first := h.SSRC == st.ssrc
	if first && st.sent != nil {
		slot, mark := &st.sent[h.SequenceNumber%uint16(len(st.sent))], uint32(h.SequenceNumber)+1
		first, *slot = *slot != mark, mark
	}
	switch {
	case first:
		o.nacks.written.Add(1)
		st.count(h, payload, now)
	case h.SSRC == st.ssrc || (st.rtx != 0 && h.SSRC == st.rtx):
		o.nacks.retransmitted.Add(1)
	}
	if st.twcc == 0 {
		return 0
	}
	seq := o.seq
	o.seq++
	o.est.Sent(seq, size, now)
	return seq
}

// count adds a first send to what the stream's sender reports carry.
func (st *sendStream) count(h *rtp.Header, payload int, now time.Time) {
	if d := h.SequenceNumber - st.lastSeq; !st.began || (d > 0 && d < 1<<15) {
		st.lastSeq = h.SequenceNumber
		if !st.began || h.Timestamp != st.lastTS {
			st.lastTS, st.lastAt = h.Timestamp, now
		}
		st.began = true
	}
	st.packets++
	st.octets += uint32(payload)
}

// report is the stream's sender report at now, or nil before its first packet (when it has
// no timestamp to report).
func (st *sendStream) report(now time.Time) *rtcp.SenderReport {
	if !st.began {
		return nil
	}
	return &rtcp.SenderReport{
		SSRC:        st.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     st.lastTS + uint32(now.Sub(st.lastAt).Seconds()*st.clockRate),
		PacketCount: st.packets,
		OctetCount:  st.octets,
	}
}

// ntpTime is t in NTP's 64-bit format (RFC 5905 §6): seconds since 1900 in the high 32
// bits, the fraction in the low.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2_208_988_800 // seconds from 1900 to 1970
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// target is the bandwidth estimate, bit/s.
func (o *outbound) target() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.est.Target()
}

// feedback hands the estimate the participant's transport-wide feedback.
func (o *outbound) feedback(fb *rtcp.TransportLayerCC) {
	now := time.Now()
	o.mu.Lock()
	o.est.Feedback(fb, now)
	o.mu.Unlock()
}

// NewInterceptor makes the interceptor of the peer connection o belongs to, registered
// closest to the network but for the SRTP write path, so that it sees every packet,
// retransmissions included.
func (o *outbound) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &outboundInterceptor{o: o}, nil
}

type outboundInterceptor struct {
	interceptor.NoOp
	o *outbound
}

func (i *outboundInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	st := &sendStream{ssrc: info.SSRC, rtx: info.SSRCRetransmission, clockRate: float64(info.ClockRate)}
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			st.twcc = uint8(e.ID)
		}
	}
	if st.rtx == 0 {
		st.sent = make([]uint32, 1024)
	}
	o := i.o
	o.mu.Lock()
	o.streams[st.ssrc] = st
	o.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		var ext []byte
		if st.twcc != 0 {
			ext = make([]byte, 2) // the header keeps it until it is written
			if err := h.SetExtension(st.twcc, ext); err != nil {
				return 0, err
			}
		}
		seq := o.stamp(st, h, len(payload), h.MarshalSize()+len(payload), time.Now())
		if ext != nil {
			binary.BigEndian.PutUint16(ext, seq)
		}
		return w.Write(h, payload, a)
	})
}

func (i *outboundInterceptor) UnbindLocalStream(info *interceptor.StreamInfo) {
	i.o.mu.Lock()
	delete(i.o.streams, info.SSRC)
	i.o.mu.Unlock()
}

// BindRTCPWriter starts the sender reports, which end when the peer connection closes.
func (i *outboundInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	o := i.o
	o.start.Do(func() {
		o.wg.Add(1)
		go o.sendReports(w)
	})
	return w
}

// BindRTCPReader hands the estimate the transport-wide feedback that comes through Pion
// (rtcpin.go hands it what the SFU's own SRTCP read path takes).
func (i *outboundInterceptor) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(buf, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		pkts, err := a.GetRTCPPackets(buf[:n])
		if err != nil {
			return n, a, nil // not for the estimate to refuse; the reader above may
		}
		for _, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				i.o.feedback(fb)
			}
		}
		return n, a, nil
	})
}

func (i *outboundInterceptor) Close() error {
	o := i.o
	o.start.Do(func() {}) // no reports start after this
	o.end.Do(func() { close(o.stop) })
	o.wg.Wait()
	return nil
}

// sendReports sends each stream's sender report every interval until the
// peer connection closes.
func (o *outbound) sendReports(w interceptor.RTCPWriter) {
	defer o.wg.Done()
	t := time.NewTicker(o.interval)
	defer t.Stop()
	var reports []rtcp.Packet
	for {
		select {
		case <-o.stop:
			return
		case now := <-t.C:
			reports = reports[:0]
			o.mu.Lock()
			for _, st := range o.streams {
				if sr := st.report(now); sr != nil {
					reports = append(reports, sr)
				}
			}
			o.mu.Unlock()
			for _, sr := range reports {
				// An error means the connection is closing, which ends this.
				_, _ = w.Write([]rtcp.Packet{sr}, nil)
			}
		}
	}
}
