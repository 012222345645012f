package sfu

import (
	"math/bits"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Loss repair (generic NACK, RFC 4585 §6.2.1): the SFU answers a subscriber's NACK from
// one cache per forwarded layer (retransmit.go), and Pion's NACK generator asks a
// publisher for what the SFU missed. The SFU counts around them: the NACKs subscribers
// send in readSubscriberRTCP, and the rest with nackCounter, an interceptor registered
// first so that it sits between them and the network.

// nackCounts are the SFU's totals since New.
type nackCounts struct {
	received      atomic.Uint64 // NACK messages from subscribers about forwarded tracks
	nacked        atomic.Uint64 // sequence numbers they named
	retransmitted atomic.Uint64 // RTP packets resent to subscribers in answer
	sent          atomic.Uint64 // NACK messages to publishers
	sentPackets   atomic.Uint64 // sequence numbers they named
	written       atomic.Uint64 // RTP packets written to subscribers, not counting retransmissions
}

// nackedPackets is how many sequence numbers a NACK names: each pair names its packet ID
// and one more per bit of its bitmask (RFC 4585 §6.2.1).
func nackedPackets(n *rtcp.TransportLayerNack) uint64 {
	var c uint64
	for _, p := range n.Nacks {
		c += 1 + uint64(bits.OnesCount16(uint16(p.LostPackets)))
	}
	return c
}

// nackCounter is an interceptor.Factory whose interceptors count, for every peer
// connection of the SFU, the NACKs it sends and the retransmissions it makes.
type nackCounter struct{ c *nackCounts }

func (f nackCounter) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackInterceptor{c: f.c}, nil
}

type nackInterceptor struct {
	interceptor.NoOp
	c *nackCounts
}

// BindRTCPWriter counts the NACKs the generator sends to the publisher.
func (i *nackInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok {
				i.c.sent.Add(1)
				i.c.sentPackets.Add(nackedPackets(n))
			}
		}
		return w.Write(pkts, a)
	})
}

// BindLocalStream counts the packets written on one forwarded track, and of them the
// responder's retransmissions. With RTX
// negotiated (RFC 4588) they are the packets on the retransmission SSRC. Without, the
// responder resends on the track's own SSRC, and a retransmission is a sequence number
// sent before: a table of the last 1024 tells, which covers the cache (cacheSize).
func (i *nackInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if rtx := info.SSRCRetransmission; rtx != 0 {
		return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
			switch h.SSRC {
			case rtx:
				i.c.retransmitted.Add(1)
			case info.SSRC:
				i.c.written.Add(1)
			}
			return w.Write(h, payload, a)
		})
	}
	// Atomic slots, as the forwarder and the responder write concurrently: no lock on the
	// path of every packet.
	var sent [1024]atomic.Uint32
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == info.SSRC {
			mark := uint32(h.SequenceNumber) + 1 // 0: empty
			if again := sent[h.SequenceNumber%uint16(len(sent))].Swap(mark) == mark; again {
				i.c.retransmitted.Add(1)
			} else {
				i.c.written.Add(1)
			}
		}
		return w.Write(h, payload, a)
	})
}
