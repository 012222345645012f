package sfu

import "net/netip"

// SetMediaAddrs makes the addresses the SFU's media port listens on, from the next
// participant's peer connection on, those list returns: a test's stand-in for the
// machine's interfaces changing.
func SetMediaAddrs(s *SFU, list func() ([]netip.Addr, error)) {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	s.media.list = list
}
