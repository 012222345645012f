//go:build !linux

package udpbatch

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Elsewhere than Linux, x/net sends the batches (sendmmsg(2) where the system has it, one
// datagram per call otherwise) and net reads.

// batchWriter is what ipv4.PacketConn and ipv6.PacketConn have in common (their Message
// types are one type).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type sender struct {
	full  bool // never: there is no send-only socket here
	w     batchWriter
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	ips   [][16]byte // what addrs' IPs point into: no allocation per datagram
}

func newSender(c *net.UDPConn, size int, _ int) (*sender, error) {
	s := &sender{msgs: make([]ipv4.Message, size), addrs: make([]net.UDPAddr, size), ips: make([][16]byte, size)}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		s.w = ipv4.NewPacketConn(c)
	} else {
		s.w = ipv6.NewPacketConn(c)
	}
	for i := range s.msgs {
		s.msgs[i].Buffers = make([][]byte, 1)
	}
	return s, nil
}

func (s *sender) max() int { return len(s.msgs) }

// gso reports that no segmented messages are sent here.
func (s *sender) gso() bool { return false }

func gsoRefused(error) bool { return false }

// send sends batch, one message per datagram: segs is always nil here.
func (s *sender) send(batch []*Datagram, _ []int) (int, error) {
	for i, d := range batch {
		ip := d.to.Addr().Unmap()
		s.ips[i] = ip.As16()
		a := s.ips[i][:]
		if ip.Is4() {
			a = a[12:]
		}
		s.addrs[i] = net.UDPAddr{IP: a, Port: int(d.to.Port()), Zone: ip.Zone()}
		s.msgs[i].Buffers[0] = d.Buf
		s.msgs[i].Addr = &s.addrs[i]
	}
	n, err := s.w.WriteBatch(s.msgs[:len(batch)], 0)
	for i := range batch {
		s.msgs[i].Buffers[0], s.msgs[i].Addr = nil, nil
	}
	return max(n, 0), err // sendmmsg(2) returns -1 when the first datagram fails
}

func (s *sender) close() {}

func closeTwin(int) {}

// listen opens the socket on laddr: it is also the one that sends, here.
func listen(laddr netip.AddrPort, o Options) (*net.UDPConn, int, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return nil, -1, err
	}
	if o.ReadBuffer > 0 {
		_ = c.SetReadBuffer(o.ReadBuffer)
	}
	if o.WriteBuffer > 0 {
		_ = c.SetWriteBuffer(o.WriteBuffer)
	}
	return c, -1, nil
}

type receiver struct{ c *net.UDPConn }

func newReceiver(c *net.UDPConn) (*receiver, error) { return &receiver{c}, nil }

func (r *receiver) read(p []byte) (int, netip.AddrPort, error) { return r.c.ReadFromUDPAddrPort(p) }
