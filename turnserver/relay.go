package turnserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"

	"github.com/pion/turn/v5"
)

// errTCPRelay refuses TCP allocations (RFC 6062): WebRTC relays media over UDP only, and a
// TCP relay would let clients open TCP connections from the server to any peer.
var errTCPRelay = errors.New("TCP relay allocations (RFC 6062) are not supported")

// sockets is the set of sockets the server has opened and not yet closed: listeners,
// accepted TCP connections and relay sockets. Close closes whatever is left, so that no
// socket, and no pion/turn goroutine reading one, outlives the server.
type sockets struct {
	mu     sync.Mutex
	open   map[*trackedSocket]struct{}
	closed bool
}

type trackedSocket struct {
	set   *sockets
	close func() error
	once  sync.Once
}

// add tracks a socket; it returns false, having closed the socket, once the set is closed.
func (s *sockets) add(close func() error) (*trackedSocket, bool) {
	t := &trackedSocket{set: s, close: close}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = close()
		return nil, false
	}
	if s.open == nil {
		s.open = make(map[*trackedSocket]struct{})
	}
	s.open[t] = struct{}{}
	return t, true
}

// Close closes the socket once; a second Close returns nil, because pion/turn closes
// allocations again after the server has, and stops closing the rest at the first error.
func (t *trackedSocket) Close() error {
	err := error(nil)
	t.once.Do(func() {
		t.set.mu.Lock()
		delete(t.set.open, t)
		t.set.mu.Unlock()
		err = t.close()
	})
	return err
}

// closeAll closes every open socket and refuses new ones.
func (s *sockets) closeAll() error {
	s.mu.Lock()
	s.closed = true
	open := make([]*trackedSocket, 0, len(s.open))
	for t := range s.open {
		open = append(open, t)
	}
	s.mu.Unlock()
	var errs []error
	for _, t := range open {
		if err := t.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type trackedPacketConn struct {
	net.PacketConn
	t *trackedSocket
}

func (c *trackedPacketConn) Close() error { return c.t.Close() }

type trackedConn struct {
	net.Conn
	t *trackedSocket
}

func (c *trackedConn) Close() error { return c.t.Close() }

// trackedListener tracks every connection it accepts.
type trackedListener struct {
	net.Listener
	t *trackedSocket
}

func (l *trackedListener) Close() error { return l.t.Close() }

func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		t, ok := l.t.set.add(c.Close)
		if !ok {
			continue // the server is closing; the listener's next Accept fails
		}
		return &trackedConn{Conn: c, t: t}, nil
	}
}

// relayGenerator opens the UDP relay sockets of allocations (RFC 8656 §7.2) on ip, with a
// port from [min, max] when max is not 0, and tells clients the relayed address is on
// public. It implements turn.RelayAddressGenerator.
type relayGenerator struct {
	ip, public net.IP
	min, max   uint16
	sockets    *sockets
}

func (g *relayGenerator) Validate() error { return nil }

func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if (conf.Network == "udp4") != (g.ip.To4() != nil) {
		return nil, nil, fmt.Errorf("relay address %s is not of the requested family %s", g.ip, conf.Network)
	}
	var conn net.PacketConn
	var err error
	switch {
	case conf.RequestedPort != 0: // the odd port after an EVEN-PORT reservation (RFC 8656 §7.2)
		if g.max != 0 && (conf.RequestedPort < int(g.min) || conf.RequestedPort > int(g.max)) {
			return nil, nil, fmt.Errorf("requested relay port %d is outside %d-%d", conf.RequestedPort, g.min, g.max)
		}
		conn, err = g.listen(conf.Network, conf.RequestedPort)
	case g.max == 0:
		conn, err = g.listen(conf.Network, 0)
	default:
		// Every port of the range once, from a random one, so that a nearly full range
		// still finds its last free port.
		n := int(g.max) - int(g.min) + 1
		first := rand.IntN(n)
		for i := 0; i < n; i++ {
			if conn, err = g.listen(conf.Network, int(g.min)+(first+i)%n); err == nil {
				break
			}
		}
		if err != nil {
			err = fmt.Errorf("no free relay port in %d-%d: %w", g.min, g.max, err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	t, ok := g.sockets.add(conn.Close)
	if !ok {
		return nil, nil, net.ErrClosed
	}
	relayed := *conn.LocalAddr().(*net.UDPAddr)
	relayed.IP = g.public
	return &trackedPacketConn{PacketConn: conn, t: t}, &relayed, nil
}

func (g *relayGenerator) listen(network string, port int) (net.PacketConn, error) {
	return net.ListenPacket(network, net.JoinHostPort(g.ip.String(), strconv.Itoa(port)))
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}
