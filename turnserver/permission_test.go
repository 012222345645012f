package turnserver

import (
	"net/netip"
	"testing"
)

func TestPeerRefused(t *testing.T) {
	allowLab := []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		peer    string
		allow   []netip.Prefix
		refused bool
	}{
		// Public addresses are relayed to.
		{"8.8.8.8", nil, false},
		{"203.0.113.7", nil, false},
		{"100.63.255.255", nil, false},
		{"100.128.0.0", nil, false},
		{"172.32.0.1", nil, false},
		{"11.0.0.1", nil, false},
		{"2001:db8::1", nil, false},
		{"2a00:1450:4001::1", nil, false},
		{"64:ff9b::808:808", nil, false}, // NAT64 of 8.8.8.8

		// What they are not.
		{"0.0.0.0", nil, true},
		{"0.1.2.3", nil, true},
		{"10.0.0.1", nil, true},
		{"10.99.1.2", nil, true},
		{"100.64.0.1", nil, true},
		{"100.127.255.254", nil, true},
		{"127.0.0.1", nil, true},
		{"127.255.255.254", nil, true},
		{"169.254.169.254", nil, true}, // cloud metadata service
		{"172.16.0.1", nil, true},
		{"172.31.255.255", nil, true},
		{"192.168.1.1", nil, true},
		{"224.0.0.251", nil, true},
		{"239.255.255.250", nil, true},
		{"255.255.255.255", nil, true},
		{"::", nil, true},
		{"::1", nil, true},
		{"::127.0.0.1", nil, true},
		{"::ffff:127.0.0.1", nil, true},
		{"::ffff:192.168.0.1", nil, true},
		{"64:ff9b::7f00:1", nil, true}, // NAT64 of 127.0.0.1
		{"fc00::1", nil, true},
		{"fd12:3456::1", nil, true},
		{"fe80::1", nil, true},
		{"ff02::1", nil, true},
		{"", nil, true}, // no address at all

		// AllowPeers lets through exactly what it covers.
		{"10.99.1.2", allowLab, false},
		{"10.98.1.2", allowLab, true},
		{"127.0.0.1", allowLab, false},
		{"127.0.0.2", allowLab, true},
		{"::ffff:127.0.0.1", allowLab, false},
		{"64:ff9b::7f00:1", allowLab, false},
		{"192.168.1.1", allowLab, true},
		{"8.8.8.8", allowLab, false},
	} {
		var peer netip.Addr
		if tc.peer != "" {
			peer = netip.MustParseAddr(tc.peer)
		}
		why := peerRefused(peer, tc.allow)
		if (why != "") != tc.refused {
			t.Errorf("peerRefused(%s, %v) = %q; want refused %v", tc.peer, tc.allow, why, tc.refused)
		}
	}
}
