package turnserver_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/parley-rtc/parley/internal/leakcheck"
	"github.com/parley-rtc/parley/turnserver"
)

const secret = "test-secret"

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, cfg turnserver.Config) *turnserver.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := turnserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// echoPeer is a UDP peer on loopback that sends back what it gets.
func echoPeer(t *testing.T) net.Addr {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	return c.LocalAddr()
}

// client is a pion/turn client of s over UDP or TCP, with credentials for userID.
func client(t *testing.T, s *turnserver.Server, transport string, userID string, now time.Time) (*turn.Client, io.Closer) {
	t.Helper()
	server := s.Addr().String()
	if s.Addr().Addr().IsUnspecified() {
		server = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(s.Addr().Port())))
	}
	var conn net.PacketConn
	var closer io.Closer
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, closer = c, c
	case "tcp":
		c, err := net.Dial("tcp", server)
		if err != nil {
			t.Fatal(err)
		}
		conn, closer = turn.NewSTUNConn(c), c
	}
	user, pass := turnserver.Credentials(secret, userID, now, time.Minute)
	cl, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          "parley",
		RTO:            100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	return cl, closer
}

// TestRelay allocates over UDP and over TCP and echoes packets through the relay off a
// loopback peer that Config.AllowPeers allows.
func TestRelay(t *testing.T) {
	s := start(t, turnserver.Config{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	peer := echoPeer(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			// The previous subtest's client deleted its allocation on closing (a Refresh
			// with lifetime 0, RFC 8656 §7), which the server handles on its own time.
			waitAllocations(t, s, 0)
			cl, conn := client(t, s, transport, "alice", time.Now())
			defer conn.Close()
			defer cl.Close()

			mapped, err := cl.SendBindingRequest()
			if err != nil {
				t.Fatalf("STUN binding: %v", err)
			}
			if transport == "udp" && !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
				t.Errorf("STUN mapped address %s, want 127.0.0.1:*", mapped)
			}

			relay, err := cl.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			if got := relay.LocalAddr().(*net.UDPAddr).IP; !got.Equal(s.PublicIP()) {
				t.Errorf("relayed address %s, want it on the public IP %s", relay.LocalAddr(), s.PublicIP())
			}
			if n := s.AllocationCount(); n != 1 {
				t.Errorf("AllocationCount() = %d, want 1", n)
			}

			buf := make([]byte, 1500)
			for i := range 5 {
				msg := []byte("ping " + transport + " " + string(rune('0'+i)))
				if _, err := relay.WriteTo(msg, peer); err != nil {
					t.Fatalf("send through relay: %v", err)
				}
				relay.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, from, err := relay.ReadFrom(buf)
				if err != nil {
					t.Fatalf("receive through relay: %v", err)
				}
				if !bytes.Equal(buf[:n], msg) || from.String() != peer.String() {
					t.Fatalf("got %q from %s, want %q from %s", buf[:n], from, msg, peer)
				}
			}
		})
	}
}

// waitAllocations waits up to 10 s for the server to hold n allocations.
func waitAllocations(t *testing.T, s *turnserver.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.AllocationCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("AllocationCount() = %d after 10 s, want %d", s.AllocationCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWildcardAddr listens on every local address and relays for a client of one of them.
func TestWildcardAddr(t *testing.T) {
	s := start(t, turnserver.Config{Addr: "0.0.0.0:0", AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if !s.Addr().Addr().IsUnspecified() || s.Addr().Port() == 0 {
		t.Errorf("Addr() = %s, want 0.0.0.0 and the port picked", s.Addr())
	}
	peer := echoPeer(t)
	for _, transport := range []string{"udp", "tcp"} {
		cl, conn := client(t, s, transport, "alice", time.Now())
		relay, err := cl.Allocate()
		if err != nil {
			t.Fatalf("%s: allocate: %v", transport, err)
		}
		if err := cl.CreatePermission(peer); err != nil {
			t.Errorf("%s: permission: %v", transport, err)
		}
		relay.Close()
		cl.Close()
		conn.Close()
	}
}

// TestRefusedPeer checks the SSRF guard end to end: with the default configuration, a
// permission to relay to loopback is refused with 403.
func TestRefusedPeer(t *testing.T) {
	s := start(t, turnserver.Config{})
	peer := echoPeer(t)
	cl, conn := client(t, s, "udp", "mallory", time.Now())
	defer conn.Close()
	defer cl.Close()
	relay, err := cl.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()
	err = cl.CreatePermission(peer)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("CreatePermission(%s) = %v, want a 403 error", peer, err)
	}
}

// TestExpired checks that an expired credential allocates nothing.
func TestExpired(t *testing.T) {
	s := start(t, turnserver.Config{})
	cl, conn := client(t, s, "udp", "alice", time.Now().Add(-2*time.Minute))
	defer conn.Close()
	defer cl.Close()
	if relay, err := cl.Allocate(); err == nil {
		relay.Close()
		t.Fatal("allocated with an expired credential")
	}
	if n := s.AllocationCount(); n != 0 {
		t.Errorf("AllocationCount() = %d, want 0", n)
	}
}

func TestICEServers(t *testing.T) {
	s := start(t, turnserver.Config{})
	now := time.Unix(1700000000, 0)
	got := s.ICEServers("alice", now)
	hp := "127.0.0.1:" + portOf(s)
	if len(got) != 2 ||
		strings.Join(got[0].URLs, " ") != "stun:"+hp || got[0].Username != "" || got[0].Credential != "" ||
		strings.Join(got[1].URLs, " ") != "turn:"+hp+"?transport=udp turn:"+hp+"?transport=tcp" {
		t.Fatalf("ICEServers = %+v", got)
	}
	user, pass := turnserver.Credentials(secret, "alice", now, time.Hour)
	if got[1].Username != user || got[1].Credential != pass {
		t.Errorf("TURN credentials %q, %q; want %q, %q (1 h by default)", got[1].Username, got[1].Credential, user, pass)
	}

	pub := start(t, turnserver.Config{PublicIP: net.ParseIP("203.0.113.9"), CredentialTTL: time.Minute})
	got = pub.ICEServers("bob", now)
	if want := "stun:203.0.113.9:" + portOf(pub); got[0].URLs[0] != want {
		t.Errorf("with PublicIP: %s, want %s", got[0].URLs[0], want)
	}
	if !strings.HasPrefix(got[1].Username, "1700000060:") {
		t.Errorf("with CredentialTTL 1 min: username %q", got[1].Username)
	}
}

func portOf(s *turnserver.Server) string { return strconv.Itoa(int(s.Addr().Port())) }

func TestConfigErrors(t *testing.T) {
	if _, err := turnserver.New(turnserver.Config{Addr: "127.0.0.1:0"}); !errors.Is(err, turnserver.ErrNoSecret) {
		t.Errorf("no secret: %v, want ErrNoSecret", err)
	}
	for _, cfg := range []turnserver.Config{
		{Addr: "127.0.0.1:0", Secret: secret, RelayPortMin: 50000},
		{Addr: "127.0.0.1:0", Secret: secret, RelayPortMin: 50010, RelayPortMax: 50000},
		{Addr: "127.0.0.1", Secret: secret},
	} {
		if s, err := turnserver.New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	// Both listeners on the same fixed port: TCP taken makes New fail and free the UDP socket.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if s, err := turnserver.New(turnserver.Config{Addr: addr, Secret: secret}); err == nil {
		s.Close()
		t.Errorf("New on a taken TCP port %s succeeded", addr)
	}
	if c, err := net.ListenPacket("udp", addr); err != nil {
		t.Errorf("UDP %s still taken after New failed: %v", addr, err)
	} else {
		c.Close()
	}
}

// TestRelayPortRange allocates a range's every port, and one more, which is refused.
func TestRelayPortRange(t *testing.T) {
	base := freeUDPPorts(t, 3)
	s := start(t, turnserver.Config{RelayPortMin: base, RelayPortMax: base + 2})
	var ports []int
	for i := range 4 {
		cl, conn := client(t, s, "udp", "alice", time.Now())
		defer conn.Close()
		defer cl.Close()
		relay, err := cl.Allocate()
		if i == 3 {
			if err == nil {
				relay.Close()
				t.Errorf("a 4th allocation in a 3-port range succeeded")
			}
			break
		}
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		defer relay.Close()
		ports = append(ports, relay.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, p := range ports {
		if p < int(base) || p > int(base)+2 {
			t.Errorf("relay port %d outside %d-%d", p, base, base+2)
		}
	}
}

// freeUDPPorts finds n consecutive free UDP ports on loopback.
func freeUDPPorts(t *testing.T, n int) uint16 {
	t.Helper()
	for base := 42000; base < 60000; base += 97 {
		var conns []net.PacketConn
		for p := base; p < base+n; p++ {
			c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if len(conns) == n {
			return uint16(base)
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestCloseReleasesEverything closes a server with live allocations over UDP and TCP and an
// idle TCP connection: the server's sockets must be closed when Close returns, and its
// goroutines and file descriptors back to where they were before it started.
func TestCloseReleasesEverything(t *testing.T) {
	peer := echoPeer(t)
	// Once before measuring, so that what is created once per process is in the baseline.
	func() {
		s := start(t, turnserver.Config{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		cl, conn := client(t, s, "udp", "warmup", time.Now())
		relay, err := cl.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		relay.Close()
		cl.Close()
		conn.Close()
		s.Close()
	}()
	baseG, baseFD := leakcheck.Settle(-1, -1, 5*time.Second, 100*time.Millisecond)

	s, err := turnserver.New(turnserver.Config{Addr: "127.0.0.1:0", Secret: secret, Logger: quietLogger(),
		AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	var relays []net.Addr
	var closers []io.Closer
	for _, transport := range []string{"udp", "tcp", "udp"} {
		cl, conn := client(t, s, transport, "alice", time.Now())
		relay, err := cl.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := relay.WriteTo([]byte("hello"), peer); err != nil {
			t.Fatal(err)
		}
		relays = append(relays, relay.LocalAddr())
		// The client's socket goes first, so that closing its relay conn cannot tell the
		// server (no Refresh with lifetime 0): the allocations are left as a client that
		// vanished would leave them, for Close to end.
		closers = append(closers, closerFunc(func() error {
			conn.Close()
			relay.Close()
			cl.Close()
			return nil
		}))
	}
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if n := s.AllocationCount(); n != 3 {
		t.Errorf("AllocationCount() = %d, want 3", n)
	}

	// The check below must see a socket that is bound, or it proves nothing.
	if !heldHere("udp", relays[0].(*net.UDPAddr).Port) || !heldHere("tcp", mustUDPAddr(addr).(*net.UDPAddr).Port) {
		t.Fatal("heldHere does not see the server's own sockets")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The listeners and relay ports are released once Close returns: no socket of this
	// process is bound to them any more. (Binding them again would race with every other
	// process on the machine that takes ephemeral ports.) Go closes a socket's descriptor
	// when the last read in progress on it returns, which Close wakes but need not wait
	// for: a port may stay listed for a moment after.
	released := func(proto string, port int) bool {
		for deadline := time.Now().Add(2 * time.Second); heldHere(proto, port); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				return false
			}
		}
		return true
	}
	for _, a := range append(relays, mustUDPAddr(addr)) {
		if !released("udp", a.(*net.UDPAddr).Port) {
			t.Errorf("UDP %s still bound 2 s after Close", a)
		}
	}
	if !released("tcp", mustUDPAddr(addr).(*net.UDPAddr).Port) {
		t.Errorf("TCP %s still listening 2 s after Close", addr)
	}
	// The server closed its end of the idle connection.
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("idle TCP connection after Close: read %v, want EOF", err)
	}
	idle.Close()
	for _, c := range closers {
		c.Close()
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	g, fd := leakcheck.Settle(baseG, baseFD, 5*time.Second, 100*time.Millisecond)
	if g > baseG {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%d goroutines outlived the server (baseline %d):\n%s", g-baseG, baseG, buf[:n])
	}
	if fd > baseFD {
		t.Errorf("%d file descriptors outlived the server (baseline %d): %s", fd-baseFD, baseFD, strings.Join(leakcheck.FDs(), " "))
	}
}

// heldHere reports whether a socket of this process is bound to the local port: it finds
// the sockets on that port in /proc/self/net/{udp,tcp}[6] and looks for their inodes among
// this process's file descriptors.
func heldHere(proto string, port int) bool {
	inodes := map[string]bool{}
	for _, table := range []string{proto, proto + "6"} {
		b, err := os.ReadFile("/proc/self/net/" + table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			local := f[1] // hex address:hex port
			i := strings.LastIndexByte(local, ':')
			if p, err := strconv.ParseUint(local[i+1:], 16, 16); err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	for _, target := range leakcheck.FDs() {
		if inodes[target] {
			return true
		}
	}
	return false
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func mustUDPAddr(s string) net.Addr {
	a, err := net.ResolveUDPAddr("udp4", s)
	if err != nil {
		panic(err)
	}
	return a
}
