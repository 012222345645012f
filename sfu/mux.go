package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
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

// mediaMux is the SFU's media port: its sockets and the mux over them. The addresses are
// looked up again before each new participant's peer connection (refresh), so that an
// address that appears after the start (a network that came up late, a new DHCP lease) is
// bound and offered. Sockets stay open until close, also those of addresses that went
// away: peer connections made before may still use them.
type mediaMux struct {
	log *slog.Logger

	mu     sync.Mutex
	list   func() ([]netip.Addr, error) // the addresses to listen on now
	port   int                          // the one port; 0 until the first socket picks it
	bound  map[netip.Addr]boundAddr     // every address bound so far
	active []netip.Addr                 // those offered to new peer connections, sorted
	mux    ice.UDPMux                   // over active
	conns  []*udpbatch.Conn             // every socket, in the order bound
}

type boundAddr struct {
	conn *udpbatch.Conn
	mux  *ice.UDPMuxDefault
}

// listenMedia binds port (0: one picked by the kernel) on every local address the SFU
// offers as a host candidate: 127.0.0.1 only with loopbackOnly, else every address of
// every interface that is up, but loopback and IPv6 link-local ones (those need a zone
// that a remote peer cannot name).
func listenMedia(port int, loopbackOnly bool, log *slog.Logger) (*mediaMux, error) {
	list := func() ([]netip.Addr, error) { return mediaAddrs(loopbackOnly) }
	// With port 0, the port the kernel picks for the first address may be taken on
	// another: try again with a new one.
	for attempt := 0; ; attempt++ {
		m := &mediaMux{list: list, log: log, port: port, bound: map[netip.Addr]boundAddr{}}
		_, err := m.refresh()
		if err == nil {
			if len(m.active) == 0 {
				log.Warn("no interface address for the SFU's media port yet: group calls will not connect until one appears")
			}
			return m, nil
		}
		m.close()
		if port != 0 || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
}

// refresh looks up the addresses to listen on, binds those not bound yet on the port, and
// reports whether the set offered to new peer connections changed (current then returns
// the new mux). At the start any address that cannot be bound is an error; later one is
// logged and left out, and tried again next time.
func (m *mediaMux) refresh() (changed bool, err error) {
	m.mu.Lock()
	list := m.list
	m.mu.Unlock()
	addrs, err := list()
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	starting := m.mux == nil
	var active []netip.Addr
	for _, ip := range addrs {
		if _, ok := m.bound[ip]; !ok {
			b, err := m.bind(ip)
			if err != nil {
				if starting {
					return false, err
				}
				m.log.Warn("media port: a new address cannot be bound", "addr", ip, "err", err)
				continue
			}
			m.bound[ip] = b
			if !starting {
				m.log.Info("media port: new address", "addr", netip.AddrPortFrom(ip, uint16(m.port)))
			}
		}
		active = append(active, ip)
	}
	slices.SortFunc(active, netip.Addr.Compare)
	active = slices.Compact(active)
	if !starting && slices.Equal(active, m.active) {
		return false, nil
	}
	muxes := make([]ice.UDPMux, 0, len(active))
	for _, ip := range active {
		muxes = append(muxes, m.bound[ip].mux)
	}
	m.active, m.mux = active, ice.NewMultiUDPMuxDefault(muxes...)
	return true, nil
}

// bind opens the port on ip; m.mu is held.
func (m *mediaMux) bind(ip netip.Addr) (boundAddr, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(m.port))))
	if err != nil {
		return boundAddr{}, fmt.Errorf("media port: %w", err)
	}
	if m.port == 0 {
		m.port = c.LocalAddr().(*net.UDPAddr).Port
	}
	// Room for bursts: a key frame forwarded to many subscribers, many publishers' packets.
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	b, err := udpbatch.New(c, udpbatch.Options{})
	if err != nil {
		c.Close()
		return boundAddr{}, fmt.Errorf("media port: %w", err)
	}
	m.conns = append(m.conns, b)
	return boundAddr{conn: b, mux: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: b})}, nil
}

// current is the mux over the addresses offered now.
func (m *mediaMux) current() ice.UDPMux {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mux
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

// addrs are the addresses the media port offers now.
func (m *mediaMux) addrs() []netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.AddrPort
	for _, ip := range m.active {
		out = append(out, m.bound[ip].conn.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// conn is the socket bound on ip, or nil.
func (m *mediaMux) conn(ip netip.Addr) *udpbatch.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bound[ip].conn
}

// localPort is the media port.
func (m *mediaMux) localPort() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.port
}

// stats sums the sockets' write counts.
func (m *mediaMux) stats() udpbatch.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
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
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.bound {
		_ = b.mux.Close()
	}
	for _, c := range m.conns {
		_ = c.Close()
	}
}
