// Package turnserver is Parley's built-in STUN/TURN server (RFC 8489, RFC 8656) on pion/turn,
// with TURN REST API credentials.
//
// It listens on one port for both UDP and TCP, relays over UDP only, checks credentials made
// by Credentials from a shared secret (so that it and an external coturn are
// interchangeable), and refuses to relay to loopback, private, link-local and multicast
// addresses unless Config.AllowPeers allows them.
package turnserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/pion/turn/v5"

	"github.com/parley-rtc/parley/protocol"
)

// Config sets up a Server. Its zero value is a working default except for Secret, which
// must be set: a server on ":3478", realm "parley", credentials valid for 1 h, advertising and
// relaying on the machine's first non-loopback IPv4 address, relaying to public addresses
// only.
type Config struct {
	// Addr is the host:port of both the UDP and the TCP listener; "" means ":3478". With
	// port 0 the server picks a port that is free for both. With an unspecified host
	// (":3478" for IPv4 and IPv6, "0.0.0.0:3478" for IPv4 only) UDP is served on one socket
	// per local address found at start, not link-local ones, so that each reply leaves from
	// the address its request came to; an address added later is served over TCP only.
	Addr string
	// Secret is the TURN REST API shared secret that Credentials signs with (coturn's
	// static-auth-secret). Required.
	Secret string
	// Realm is the REALM of RFC 8489 §9.2; "" means "parley".
	Realm string
	// CredentialTTL is how long the credentials ICEServers hands out are valid; 0 means 1 h.
	CredentialTTL time.Duration

	// PublicIP is the address advertised for the server (ICEServers) and for its relayed
	// addresses (XOR-RELAYED-ADDRESS), for a server behind a 1:1 NAT. nil means the host of
	// Addr, or if that is unspecified the machine's first non-loopback IPv4 address, or else
	// 127.0.0.1.
	PublicIP net.IP
	// RelayIP is the address relay sockets are bound to. nil means the host of Addr; if that
	// is unspecified, PublicIP if it is an address of this machine (so that relayed packets
	// leave from the address they are advertised at on a multi-homed host), else the first
	// non-loopback IPv4 address, else 127.0.0.1.
	RelayIP net.IP
	// RelayPortMin and RelayPortMax, both inclusive, restrict relay ports to a range, for
	// firewalls; both 0 means any port the system gives.
	RelayPortMin, RelayPortMax uint16

	// AllowPeers are peer address ranges the server relays to although it refuses their
	// kind by default: loopback, private (RFC 1918, RFC 4193), shared CGNAT (RFC 6598),
	// link-local, multicast, broadcast, reserved and unspecified addresses. For a server
	// that must relay to a LAN, e.g. 192.168.1.0/24.
	AllowPeers []netip.Prefix

	// Logger receives structured logs; nil means slog.Default(). Secrets and passwords are
	// never logged; usernames ("expiry:userID") and addresses are, at debug level.
	Logger *slog.Logger
}

// DefaultPort is the STUN/TURN port of RFC 8489 §6.2.1 and RFC 8656 §4.
const DefaultPort = 3478

// ErrNoSecret is returned by New when Config.Secret is empty.
var ErrNoSecret = errors.New("turnserver: Config.Secret is required")

// Server is a running STUN/TURN server. Create it with New, stop it with Close.
type Server struct {
	cfg     Config
	log     *slog.Logger
	addr    netip.AddrPort // bound address of both listeners
	public  net.IP
	relay   net.IP
	turn    *turn.Server
	sockets *sockets
}

// New starts a server listening on cfg.Addr over UDP and TCP.
func New(cfg Config) (*Server, error) {
	if cfg.Secret == "" {
		return nil, ErrNoSecret
	}
	if cfg.Addr == "" {
		cfg.Addr = ":" + strconv.Itoa(DefaultPort)
	}
	if cfg.Realm == "" {
		cfg.Realm = "parley"
	}
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if (cfg.RelayPortMin == 0) != (cfg.RelayPortMax == 0) || cfg.RelayPortMin > cfg.RelayPortMax {
		return nil, fmt.Errorf("turnserver: relay port range %d-%d: give both ends, min <= max",
			cfg.RelayPortMin, cfg.RelayPortMax)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sockets: &sockets{}}

	udps, tcp, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	s.addr = tcp.Addr().(*net.TCPAddr).AddrPort()
	tcpT, _ := s.sockets.add(tcp.Close)

	listenIP := net.IP(nil)
	if ip := s.addr.Addr().Unmap(); !ip.IsUnspecified() {
		listenIP = net.IP(ip.AsSlice())
	}
	s.public, s.relay = cfg.PublicIP, cfg.RelayIP
	if s.public == nil {
		s.public = listenIP
	}
	if s.relay == nil {
		s.relay = listenIP
	}
	if s.relay == nil && s.public != nil && isLocal(s.public) {
		s.relay = s.public
	}
	if s.public == nil || s.relay == nil {
		first := firstIPv4()
		if s.public == nil {
			s.public = first
		}
		if s.relay == nil {
			s.relay = first
		}
	}

	relays := &relayGenerator{ip: s.relay, public: s.public, min: cfg.RelayPortMin, max: cfg.RelayPortMax,
		sockets: s.sockets}
	var packetConns []turn.PacketConnConfig
	for _, udp := range udps {
		t, _ := s.sockets.add(udp.Close)
		packetConns = append(packetConns, turn.PacketConnConfig{
			PacketConn:            &trackedPacketConn{PacketConn: udp, t: t},
			RelayAddressGenerator: relays,
			PermissionHandler:     s.permissionHandler,
		})
	}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       authHandler(cfg.Secret, time.Now, s.log),
		PacketConnConfigs: packetConns,
		ListenerConfigs: []turn.ListenerConfig{{
			Listener:              &trackedListener{Listener: tcp, t: tcpT},
			RelayAddressGenerator: relays,
			PermissionHandler:     s.permissionHandler,
		}},
		LoggerFactory: pionLogs{s.log},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, proto, userID, _ string, relayed net.Addr, _ int) {
				s.log.Debug("TURN allocation created", "client", src.String(), "transport", proto,
					"user", userID, "relayed", relayed.String())
			},
			OnAllocationDeleted: func(src, _ net.Addr, proto, userID, _ string) {
				s.log.Debug("TURN allocation deleted", "client", src.String(), "transport", proto, "user", userID)
			},
		},
	})
	if err != nil {
		_ = s.sockets.closeAll()
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	s.log.Info("STUN/TURN server listening", "addr", s.addr.String(), "udp_sockets", len(udps),
		"public_ip", s.public.String(), "relay_ip", s.relay.String(), "realm", cfg.Realm)
	return s, nil
}

// listen opens the listeners on addr, all on one port: a TCP listener, and a UDP socket,
// or when addr's host is unspecified one UDP socket per local address. A STUN or TURN
// client takes replies only from the address it sent to, and a NAT on the way drops any
// other; a UDP socket bound to the wildcard address replies from whichever address the
// route back has, which on a machine with several addresses need not be that one.
func listen(addr string) ([]net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("turnserver: address %q: %w", addr, err)
	}
	hosts := []string{host}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if hosts, err = localAddrs(host == "" || ip.To4() == nil); err != nil {
			return nil, nil, fmt.Errorf("turnserver: listen on %s: %w", addr, err)
		}
	}
	// With port 0 the port the system picks for the first socket may be taken for another:
	// try again.
	for try := 0; ; try++ {
		udps, tcp, err := listenOn(hosts, host, port)
		if err == nil {
			return udps, tcp, nil
		}
		if port != "0" || try == 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("turnserver: %w", err)
		}
	}
}

// listenOn opens a UDP socket on each of udpHosts and a TCP listener on tcpHost, on port, or
// if that is "0" on the port the system gives the first.
func listenOn(udpHosts []string, tcpHost, port string) (udps []net.PacketConn, tcp net.Listener, err error) {
	defer func() {
		if err != nil {
			for _, c := range udps {
				_ = c.Close()
			}
		}
	}()
	for _, h := range udpHosts {
		c, err := net.ListenPacket("udp", net.JoinHostPort(h, port))
		if err != nil {
			return udps, nil, fmt.Errorf("listen on UDP: %w", err)
		}
		udps = append(udps, c)
		port = strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	}
	tcp, err = net.Listen("tcp", net.JoinHostPort(tcpHost, port))
	if err != nil {
		return udps, nil, fmt.Errorf("listen on TCP: %w", err)
	}
	return udps, tcp, nil
}

// localAddrs lists the machine's IPv4 addresses, and its IPv6 ones if v6, except link-local
// ones.
func localAddrs(v6 bool) ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLinkLocalUnicast() || (n.IP.To4() == nil && !v6) {
			continue
		}
		out = append(out, n.IP.String())
	}
	if len(out) == 0 {
		return nil, errors.New("no local address")
	}
	return out, nil
}

// Addr is the address both listeners are bound to, with the port actually used.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// PublicIP is the address the server advertises for itself and its relayed addresses.
func (s *Server) PublicIP() net.IP { return s.public }

// AllocationCount is the number of live TURN allocations.
func (s *Server) AllocationCount() int { return s.turn.AllocationCount() }

// ICEServers returns what a client needs to use this server, in the shape of the Welcome
// message: the STUN URL, and the TURN URLs over UDP and TCP (RFC 7065) with credentials for
// userID valid for Config.CredentialTTL from now.
func (s *Server) ICEServers(userID string, now time.Time) []protocol.ICEServer {
	hostPort := net.JoinHostPort(s.public.String(), strconv.Itoa(int(s.addr.Port())))
	username, password := Credentials(s.cfg.Secret, userID, now, s.cfg.CredentialTTL)
	return []protocol.ICEServer{
		{URLs: []string{"stun:" + hostPort}},
		{
			URLs:       []string{"turn:" + hostPort + "?transport=udp", "turn:" + hostPort + "?transport=tcp"},
			Username:   username,
			Credential: password,
		},
	}
}

// Close stops the server: it closes the listeners, every TCP connection and every relay
// socket before it returns, which ends all allocations; the pion/turn goroutines that read
// those sockets end as their reads fail, within milliseconds.
func (s *Server) Close() error {
	err := s.turn.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil // closed before
	}
	if cerr := s.sockets.closeAll(); err == nil {
		err = cerr
	}
	return err
}

// isLocal says whether ip is an address of one of this machine's interfaces.
func isLocal(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// firstIPv4 is the first global-unicast or private IPv4 address of the first interface that
// is up and not loopback, or 127.0.0.1.
func firstIPv4() net.IP {
	ifaces, err := net.Interfaces()
	if err == nil {
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
					return n.IP.To4()
				}
			}
		}
	}
	return net.IPv4(127, 0, 0, 1).To4()
}
