// Package simulcasttest holds Parley's simulcast test: a publisher sends three layers of one
// video through the SFU to two subscribers, one on an open link and one behind a 640 kbit/s
// policer in a Linux network namespace; the SFU's bandwidth estimate must give the first
// the top layer and the second a lower one, each as one continuous RTP stream. It has
// tests only; they need root, ip (iproute2), iptables and ffmpeg, and fail without them
// unless PARLEY_SKIP_NETNS=1.
package simulcasttest
