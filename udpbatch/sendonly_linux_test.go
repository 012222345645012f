//go:build linux

package udpbatch_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/parley-rtc/parley/internal/netns"
	"github.com/parley-rtc/parley/udpbatch"
)

// A Conn of Listen sends from its send-only socket, and reads every datagram that arrives at
// its address: 16 peers, whose datagrams the kernel would spread over the two sockets of the
// group without its program. It sends from its own address, holds the port alone, and
// frees it on Close. On IPv4, IPv6, and a dual-stack socket with IPv4 peers.
func TestListen(t *testing.T) {
	for _, c := range []struct{ listen, peer string }{{"127.0.0.1", "127.0.0.1"}, {"::1", "::1"}, {"::", "127.0.0.1"}} {
		t.Run(c.listen, func(t *testing.T) {
			b, err := udpbatch.Listen(netip.AddrPortFrom(netip.MustParseAddr(c.listen), 0), udpbatch.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if !b.Stats().SendOnly {
				t.Fatal("Stats().SendOnly = false: the Conn sends from the socket it reads")
			}
			port := uint16(b.LocalAddr().(*net.UDPAddr).Port)
			local := netip.AddrPortFrom(netip.MustParseAddr(c.peer), port) // b, as its peers see it

			const peers, each = 16, 4
			var addrs []netip.AddrPort
			for i := range peers {
				p, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				addrs = append(addrs, p.LocalAddr().(*net.UDPAddr).AddrPort())
				for j := range each {
					if _, err := p.WriteToUDPAddrPort(datagram(uint32(i), uint32(j), 100), local); err != nil {
						t.Fatal(err)
					}
				}
				defer func() {
					// b's datagram to this peer, from b's address.
					if t.Failed() {
						return // it may never have been sent
					}
					buf := make([]byte, 100)
					_ = p.SetReadDeadline(time.Now().Add(10 * time.Second))
					n, from, err := p.ReadFromUDPAddrPort(buf)
					if err != nil || n != 8 || from != local {
						t.Errorf("peer %d: read %d bytes from %v, %v; want 8 from %v", i, n, from, err, local)
					}
				}()
			}
			got := map[netip.AddrPort]int{}
			buf := make([]byte, 200)
			_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
			for range peers * each {
				n, from, err := b.ReadFromAddrPort(buf)
				if err != nil {
					t.Fatalf("read after %d datagrams from %d peers: %v", len(got), peers, err)
				}
				from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
				if n != 100 || !slices.Contains(addrs, from) {
					t.Fatalf("read %d bytes from %v, not one of the peers' datagrams", n, from)
				}
				got[from]++
			}
			for i, a := range addrs {
				if got[a] != each {
					t.Errorf("peer %d: %d of its %d datagrams read", i, got[a], each)
				}
				if _, err := b.WriteToAddrPort(datagram(99, uint32(i), 8), a); err != nil {
					t.Fatal(err)
				}
			}

			addr := &net.UDPAddr{IP: net.ParseIP(c.listen), Port: int(port)}
			if other, err := net.ListenUDP("udp", addr); err == nil {
				other.Close()
				t.Errorf("another socket bound %v, the Conn's address", addr)
			}
			if other, err := udpbatch.Listen(addr.AddrPort(), udpbatch.Options{}); err == nil {
				other.Close()
				t.Errorf("another Conn listened on %v, the first's address", addr)
			}
			t.Cleanup(func() {
				// After Close (deferred above, run first), both sockets have let the port go.
				again, err := net.ListenUDP("udp", addr)
				if err != nil {
					t.Errorf("bind %v after Close: %v", addr, err)
					return
				}
				again.Close()
			})
		})
	}
}

// With NoSendOnly, the Conn sends from the socket it reads, which works as before.
func TestListenNoSendOnly(t *testing.T) {
	b, err := udpbatch.Listen(netip.MustParseAddrPort("127.0.0.1:0"), udpbatch.Options{NoSendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Stats().SendOnly {
		t.Error("Stats().SendOnly = true with NoSendOnly")
	}
	p, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := receive(t, p)
	if _, err := b.WriteToAddrPort(datagram(1, 0, 8), p.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	if want := b.LocalAddr().(*net.UDPAddr).AddrPort(); r.from != want {
		t.Errorf("datagram from %v, want %v", r.from, want)
	}
}

var udpNS = regexp.MustCompile(`^parleyudp-(\d+)-(a|b)$`)

// When the send-only socket's buffer is full, because the link is slower than the writes
// (a token bucket of 4 Mbit/s on the sending side of a veth pair, which holds the datagrams
// and so the buffer), its batches go from the socket itself, waiting for room in the
// poller: every datagram arrives, in order, from the Conn's address, and SendOnlyFull counts
// the calls that went around.
func TestListenSendOnlyFull(t *testing.T) {
	netns.Require(t, "TestListenSendOnlyFull", "to build a slow link between two network namespaces")
	if _, err := exec.LookPath("tc"); err != nil {
		t.Fatal("TestListenSendOnlyFull needs tc (Debian: iproute2) to slow its link down; set PARLEY_SKIP_NETNS=1 to skip it")
	}
	netns.RemoveStale(t, udpNS)
	a := netns.Add(t, fmt.Sprintf("parleyudp-%d-a", os.Getpid()))
	z := netns.Add(t, fmt.Sprintf("parleyudp-%d-b", os.Getpid()))
	netns.Link(a, "u0", "10.98.0.1/24", z, "u1", "10.98.0.2/24")
	a.Exec("tc", "qdisc", "add", "dev", "u0", "root", "tbf", "rate", "4mbit", "burst", "1600", "limit", "2000000")

	var b *udpbatch.Conn
	if err := a.Do(func() (err error) {
		b, err = udpbatch.Listen(netip.MustParseAddrPort("10.98.0.1:0"), udpbatch.Options{WriteBuffer: 32 << 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var p *net.UDPConn
	if err := z.Do(func() (err error) {
		p, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(10, 98, 0, 2)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_ = p.SetReadBuffer(4 << 20)
	r := receive(t, p)

	const n = 300 // 300 kB: 0.6 s at 4 Mbit/s, several times the buffer
	to := p.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range n {
		if _, err := b.WriteToAddrPort(datagram(1, uint32(i), 1000), to); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, n)
	r.mu.Lock()
	got, from := r.got[1], r.from
	r.mu.Unlock()
	for i, seq := range got {
		if seq != uint32(i) {
			t.Fatalf("datagram %d arrived as number %d", seq, i)
		}
	}
	if want := b.LocalAddr().(*net.UDPAddr).AddrPort(); from != want {
		t.Errorf("datagrams from %v, want %v", from, want)
	}
	s := b.Stats()
	if !s.SendOnly || s.SendOnlyFull == 0 || s.Sent != n || s.Errors != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v: want send-only, some calls finding it full, %d sent, none refused or dropped", s, n)
	}
}
