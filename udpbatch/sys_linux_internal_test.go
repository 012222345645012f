//go:build linux

package udpbatch

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket addresses round-trip: IPv4 (also given IPv4-mapped) as sockaddr_in, IPv6 as
// sockaddr_in6, and a zone as its interface's index and back to its name.
func TestSockaddr(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatalf("loopback interface: %v", err)
	}
	cases := []struct{ in, want string }{
		{"192.0.2.1:5004", "192.0.2.1:5004"},
		{"[::ffff:192.0.2.1]:5004", "192.0.2.1:5004"},
		{"[2001:db8::1]:65535", "[2001:db8::1]:65535"},
		{"[fe80::1%lo]:9", "[fe80::1%lo]:9"},
		{"[fe80::1%" + strconv.Itoa(lo.Index) + "]:9", "[fe80::1%lo]:9"},
	}
	var out, in zones
	for _, c := range cases {
		var sa sockaddr
		n := putSockaddr(&sa, netip.MustParseAddrPort(c.in), &out)
		var any unix.RawSockaddrAny
		copy((*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(&any))[:n], (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(&sa))[:n])
		if got := fromSockaddr(&any, &in); got.String() != c.want {
			t.Errorf("%s: back as %v, want %s", c.in, got, c.want)
		}
	}
	if out.byName["lo"] != uint32(lo.Index) {
		t.Errorf("zone lo cached as index %d, want %d", out.byName["lo"], lo.Index)
	}
}
