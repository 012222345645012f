// Package losstest holds Parley's loss test: a group call through the SFU, its clients in
// Linux network namespaces, made once without loss and once with 5 % random UDP loss on
// the server's link, to check that NACK retransmissions (RFC 4585 §6.2.1) repair it. It has
// tests only; they need root, ip (iproute2) and iptables, and fail without them unless
// PARLEY_SKIP_NETNS=1.
package losstest
