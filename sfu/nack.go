package sfu

import (
	"math/bits"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// Loss repair (generic NACK, RFC 4585 §6.2.1): the SFU answers a subscriber's NACK from
// one cache per forwarded layer (retransmit.go), and Pion's NACK generator asks a
// publisher for what the SFU missed. The SFU counts around them: the NACKs subscribers
// send in readSubscriberRTCP, the NACKs it sends with nackCounter, an interceptor registered
// first so that it sits between them and the network, and its retransmissions where it
// counts every packet it sends (outbound.go).

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
// connection of the SFU, the NACKs it sends.
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
