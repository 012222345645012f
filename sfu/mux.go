package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"

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

	// rtcp maps the addresses a peer connection's packets come from to the SRTP path
	// that takes its RTCP (rtcpin.go): the remote address of its selected ICE pair, and
	// those its STUN requests to its local ufrag come from (ufrags). Replaced, never
	// changed, so that a read looks them up without a lock.
	rtcpMu sync.Mutex
	rtcp   atomic.Pointer[map[icePair]*srtpOut]
	ufrags atomic.Pointer[map[string]*srtpOut]
}

// icePair is a local address of the media port (which socket) and a remote address and
// port.
type icePair struct {
	local  netip.Addr
	remote netip.AddrPort
}

// maxRTCPAddrs bounds the remote addresses noted for one peer connection: a STUN request
// naming its ufrag may come from anywhere.
const maxRTCPAddrs = 8

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
	// Room for bursts: a key frame forwarded to many subscribers, many publishers' packets.
	b, err := udpbatch.Listen(netip.AddrPortFrom(ip, uint16(m.port)), udpbatch.Options{ReadBuffer: 4 << 20, WriteBuffer: 4 << 20})
	if err != nil {
		return boundAddr{}, fmt.Errorf("media port: %w", err)
	}
	if m.port == 0 {
		m.port = b.LocalAddr().(*net.UDPAddr).Port
	}
	m.conns = append(m.conns, b)
	tap := &rtcpTap{Conn: b, m: m, local: ip.Unmap()}
	return boundAddr{conn: b, mux: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: tap})}, nil
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
	s.SendOnly = len(m.conns) > 0 // if every socket's is
	for _, c := range m.conns {
		cs := c.Stats()
		s.Sent += cs.Sent
		s.Batches += cs.Batches
		s.Dropped += cs.Dropped
		s.Waits += cs.Waits
		s.Errors += cs.Errors
		s.Segmented += cs.Segmented
		s.SendOnlyFull += cs.SendOnlyFull
		s.SendOnly = s.SendOnly && cs.SendOnly
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

// setRTCP makes o, while its SRTP path is on, take the RTCP that arrives over pair and
// from the addresses its STUN requests to ufrag come from; with ufrag "" and pair's remote
// invalid, o takes none.
func (m *mediaMux) setRTCP(o *srtpOut, pair icePair, ufrag string) {
	m.rtcpMu.Lock()
	defer m.rtcpMu.Unlock()
	addrs := map[icePair]*srtpOut{}
	if old := m.rtcp.Load(); old != nil {
		maps.Copy(addrs, *old)
	}
	maps.DeleteFunc(addrs, func(_ icePair, p *srtpOut) bool { return p == o })
	if pair.remote.IsValid() {
		addrs[pair] = o
	}
	m.rtcp.Store(&addrs)
	ufrags := map[string]*srtpOut{}
	if old := m.ufrags.Load(); old != nil {
		maps.Copy(ufrags, *old)
	}
	maps.DeleteFunc(ufrags, func(_ string, p *srtpOut) bool { return p == o })
	if ufrag != "" {
		ufrags[ufrag] = o
	}
	m.ufrags.Store(&ufrags)
}

// rtcpFor is the SRTP path that takes the RTCP arriving over pair, or nil.
func (m *mediaMux) rtcpFor(pair icePair) *srtpOut {
	if t := m.rtcp.Load(); t != nil {
		return (*t)[pair]
	}
	return nil
}

// stunFrom notes where a STUN request comes from: a peer connection sends its media from
// where it sends its connectivity checks and consent checks (RFC 7675) on the pair it
// uses, which need not be the pair the SFU's side selected (a host with a loopback and a
// network address may send from one and receive on the other). The request's USERNAME is
// "<the SFU's ufrag>:<the peer's>" (RFC 8445 §7.2.2), as pion/ice's mux reads it too. Its
// integrity is not checked here: a request naming another's ufrag only sends that
// address's RTCP to a context it does not decrypt with, and so on to Pion.
func (m *mediaMux) stunFrom(pair icePair, b []byte) {
	ufrags := m.ufrags.Load()
	if ufrags == nil || len(*ufrags) == 0 {
		return
	}
	msg := &stun.Message{Raw: b}
	if msg.Decode() != nil || msg.Type != stun.BindingRequest {
		return
	}
	user, err := msg.Get(stun.AttrUsername)
	if err != nil {
		return
	}
	local, _, _ := strings.Cut(string(user), ":")
	o := (*ufrags)[local]
	if o == nil || m.rtcpFor(pair) == o {
		return
	}
	m.rtcpMu.Lock()
	defer m.rtcpMu.Unlock()
	if (*m.ufrags.Load())[local] != o { // gone meanwhile
		return
	}
	addrs := map[icePair]*srtpOut{}
	n := 0
	for k, p := range *m.rtcp.Load() {
		addrs[k] = p
		if p == o {
			n++
		}
	}
	if n >= maxRTCPAddrs {
		return
	}
	addrs[pair] = o
	m.rtcp.Store(&addrs)
}

// rtcpTap is one media socket as pion/ice's UDP mux reads it: SRTCP from a peer connection
// whose SRTP path takes it (rtcpin.go) is handled as it is read, and the mux never sees
// it; everything else (STUN, DTLS, SRTP, other SRTCP) goes on to the mux.
type rtcpTap struct {
	*udpbatch.Conn
	m     *mediaMux
	local netip.Addr
}

// ReadFromAddrPort is the read pion/ice's mux makes (ice.AddrPortReaderWriter).
func (t *rtcpTap) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := t.Conn.ReadFromAddrPort(p)
		if err != nil {
			return n, from, err
		}
		pair := icePair{t.local, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
		if stun.IsMessage(p[:n]) {
			t.m.stunFrom(pair, p[:n])
			return n, from, nil
		}
		if !isRTCP(p[:n]) {
			return n, from, nil
		}
		if o := t.m.rtcpFor(pair); o == nil || !o.readRTCP(p[:n]) {
			return n, from, nil
		}
	}
}

// ReadFrom is ReadFromAddrPort for a reader that wants a net.Addr.
func (t *rtcpTap) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := t.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// isRTCP tells an RTCP packet from the others sharing the port (RFC 7983 §7; RFC 5761 §4):
// the first byte of RTP and RTCP is 128 to 191, and RTCP's packet types are 192 to 223
// (where an RTP packet's marker bit and payload type could not be, as negotiated).
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0] >= 128 && b[0] <= 191 && b[1] >= 192 && b[1] <= 223
}
