// Package nattest holds Parley's NAT traversal test: two native peers, each behind its own
// NAT in its own Linux network namespace and unable to reach the other, make a call that
// must connect through the built-in TURN server. It has tests only; they need root, ip
// (iproute2) and iptables, and fail without them unless PARLEY_SKIP_NETNS=1.
package nattest
