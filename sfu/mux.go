package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"

	"github.com/pion/ice/v4"

	"github.com/parley-rtc/parley/udpbatch"
)

// The SFU's media goes through one UDP port: every participant's ICE, DTLS, SRTP and SRTCP,
// told apart by pion/ice's UDP mux (by the STUN username's ufrag first, then by the
// remote address). One socket per local address, all on that port, so that a reply leaves
// from the address the participant sent to (a socket on the wildcard address would leave
// the source to the routing table, and ICE drops a response from the wrong address, RFC
// 8445 §7.2.5.2.1). Each socket batches its writes (package udpbatch): where a peer
// connection of its own made one sendto(2) per packet per subscriber, the SFU now makes
// one sendmmsg(2) per batch.

// mediaMux is the SFU's media port: its sockets and the mux over them.
type mediaMux struct {
	mux   ice.UDPMux
	conns []*udpbatch.Conn
}

// listenMedia binds port (0: one picked by the kernel) on every local address the SFU
// offers as a host candidate: 127.0.0.1 only with loopbackOnly, else every address of
// every interface that is up, but loopback and IPv6 link-local ones (those need a zone
// that a remote peer cannot name).
func listenMedia(port int, loopbackOnly bool, log *slog.Logger) (*mediaMux, error) {
	addrs, err := mediaAddrs(loopbackOnly)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		log.Warn("no interface address for the SFU's media port: group calls will not connect")
	}
	// With port 0, the port the kernel picks for the first address may be taken on
	// another: try again with a new one.
	for attempt := 0; ; attempt++ {
		m, err := bindAll(addrs, port)
		if err == nil || port != 0 || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			return m, err
		}
	}
}

func mediaAddrs(loopbackOnly bool) ([]netip.Addr, error) {
	if loopbackOnly {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			out = append(out, ip)
		}
	}
	return out, nil
}

func bindAll(addrs []netip.Addr, port int) (*mediaMux, error) {
	m := &mediaMux{}
	var muxes []ice.UDPMux
	for _, ip := range addrs {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			m.close()
			return nil, fmt.Errorf("media port: %w", err)
		}
		if port == 0 {
			port = c.LocalAddr().(*net.UDPAddr).Port
		}
		// Room for bursts: a key frame forwarded to many subscribers, many publishers' packets.
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		b, err := udpbatch.New(c, udpbatch.Options{})
		if err != nil {
			c.Close()
			m.close()
			return nil, fmt.Errorf("media port: %w", err)
		}
		m.conns = append(m.conns, b)
		muxes = append(muxes, ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: b}))
	}
	m.mux = ice.NewMultiUDPMuxDefault(muxes...)
	return m, nil
}

// addrs are the addresses the media port listens on.
func (m *mediaMux) addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range m.conns {
		out = append(out, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// stats sums the sockets' write counts.
func (m *mediaMux) stats() udpbatch.Stats {
	var s udpbatch.Stats
	for _, c := range m.conns {
		cs := c.Stats()
		s.Sent += cs.Sent
		s.Batches += cs.Batches
		s.Dropped += cs.Dropped
		s.Waits += cs.Waits
		s.Errors += cs.Errors
	}
	return s
}

// close closes the mux and the sockets, and so ends their writers.
func (m *mediaMux) close() {
	if m.mux != nil {
		_ = m.mux.Close()
	}
	for _, c := range m.conns {
		_ = c.Close()
	}
}
