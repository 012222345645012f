package sfu

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/parley-rtc/parley/protocol"
)

// The media port is the one asked for, or one the system picks; a port in use is an error
// from New, and Close frees the port.
func TestMediaPort(t *testing.T) {
	send := func(string, protocol.Message) {}
	a, err := New(Config{Send: send, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	addrs := a.MediaAddrs()
	if len(addrs) != 1 || addrs[0].Addr().String() != "127.0.0.1" || addrs[0].Port() == 0 {
		t.Fatalf("media addresses %v, want one on 127.0.0.1 with a port", addrs)
	}
	port := int(addrs[0].Port())

	if _, err := New(Config{Send: send, LoopbackOnly: true, MediaPort: port}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("a second SFU on port %d: %v, want EADDRINUSE", port, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed, the port is free again: a plain socket takes it, then an SFU asked for it.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("port %d after Close: %v", port, err)
	}
	c.Close()
	b, err := New(Config{Send: send, LoopbackOnly: true, MediaPort: port})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.MediaAddrs(); len(got) != 1 || int(got[0].Port()) != port {
		t.Fatalf("media addresses %v, want port %d", got, port)
	}
}

// Without LoopbackOnly the port is bound on interface addresses, never loopback or IPv6
// link-local ones, all on one port.
func TestMediaAddrs(t *testing.T) {
	s, err := New(Config{Send: func(string, protocol.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addrs := s.MediaAddrs()
	t.Logf("media addresses: %v", addrs)
	for _, a := range addrs {
		if a.Addr().IsLoopback() || a.Addr().IsLinkLocalUnicast() || a.Port() != addrs[0].Port() {
			t.Errorf("media address %v among %v", a, addrs)
		}
	}
}
