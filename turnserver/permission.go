package turnserver

import (
	"net"
	"net/netip"
)

// refusedPeers are the peer address ranges the server does not relay to unless
// Config.AllowPeers covers them: a TURN server reaches whatever its own host reaches, so
// relaying to these would let any client with credentials send UDP into the server's own
// machine and private networks (SSRF through TURN; see RFC 8656 §21.6 and the
// denied-peer-ip ranges coturn's documentation recommends).
var refusedPeers = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (RFC 791)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared CGNAT space (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	// IPv4-compatible IPv6 (deprecated by RFC 4291 §2.5.5.1), with :: and ::1 in it.
	{netip.MustParsePrefix("::/96"), "unspecified, loopback or IPv4-compatible"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052 §2.1): its addresses reach the IPv4
// address in their last 32 bits, which is judged instead.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// peerRefused says why the server refuses to relay to peer, or "" if it relays. allow
// overrides the refusal.
func peerRefused(peer netip.Addr, allow []netip.Prefix) string {
	peer = peer.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, p := range allow {
		if p.Contains(peer) {
			return ""
		}
	}
	if !peer.IsValid() {
		return "invalid"
	}
	judged := peer
	if nat64.Contains(peer) {
		b := peer.As16()
		judged = netip.AddrFrom4([4]byte(b[12:]))
		for _, p := range allow {
			if p.Contains(judged) {
				return ""
			}
		}
	}
	for _, r := range refusedPeers {
		if r.prefix.Contains(judged) {
			return r.why
		}
	}
	return ""
}

// permissionHandler is the pion/turn PermissionHandler for CreatePermission and
// ChannelBind (RFC 8656 §9, §12): pion/turn answers a refusal with 403 (Forbidden).
func (s *Server) permissionHandler(client net.Addr, peerIP net.IP) bool {
	peer, _ := netip.AddrFromSlice(peerIP)
	why := peerRefused(peer, s.cfg.AllowPeers)
	if why != "" {
		s.log.Debug("TURN permission refused; Config.AllowPeers can allow it",
			"peer", peerIP.String(), "client", client.String(), "peer_range", why)
		return false
	}
	return true
}
