package bench

import "strings"

// offerSDP is a realistic SDP offer of the size a browser sends for one audio and one
// video track (3.3 KB): Chrome's codec list, header extensions, ICE and DTLS attributes
// (RFC 8829 §5.2). The signaling server relays it without parsing it, so only its size and
// its characters (CRLF line ends, which JSON escapes) matter here.
var offerSDP = strings.ReplaceAll(offerLines, "\n", "\r\n")

// answerSDP is the answer to offerSDP, of about the same size: the other peer's ICE
// credentials, fingerprint, IDs and SSRCs, and the active DTLS role (RFC 8842 §5.2).
var answerSDP = strings.NewReplacer(
	"o=- 4611731400430051336", "o=- 8120994317263311125",
	"a=setup:actpass", "a=setup:active",
	"a=ice-ufrag:Hn4R", "a=ice-ufrag:pX7d",
	"a=ice-pwd:ZqgZ0kFJ0vC3cNVq7yTQm1xd", "a=ice-pwd:b3Tq9LmW2yKc8RfVn0HsJx4e",
	"7B:8B:F0:65:5F:78:E2:51", "C4:19:2E:A0:7D:55:0B:F6",
	"6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21", "0d9e4a72-1c3b-4f85-b6a0-7e2f5c8d1b93",
	"q8ZvHk2b3N0xYw1T", "Lr5tN9eWq2XzA7cB",
	"3735928559", "1122334455",
	"2882400001", "3344556601",
	"2882400002", "3344556602",
).Replace(offerSDP)

// candidateLine is a trickled host candidate on loopback (RFC 8839 §5.1).
const candidateLine = "candidate:1467250027 1 udp 2122260223 127.0.0.1 54321 typ host generation 0 ufrag Hn4R network-id 1"

const offerLines = `v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS 6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Hn4R
a=ice-pwd:ZqgZ0kFJ0vC3cNVq7yTQm1xd
a=ice-options:trickle
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21 1f0a4c55-0d1b-4a9f-8b3e-2f6a1d7c9e44
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:q8ZvHk2b3N0xYw1T
a=ssrc:3735928559 msid:6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21 1f0a4c55-0d1b-4a9f-8b3e-2f6a1d7c9e44
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Hn4R
a=ice-pwd:ZqgZ0kFJ0vC3cNVq7yTQm1xd
a=ice-options:trickle
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendrecv
a=msid:6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21 9e2d7b3a-44c1-4f6e-a1d8-5b0c3e9f2a17
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 goog-remb
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 ccm fir
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:100 H264/90000
a=rtcp-fb:100 goog-remb
a=rtcp-fb:100 transport-cc
a=rtcp-fb:100 ccm fir
a=rtcp-fb:100 nack
a=rtcp-fb:100 nack pli
a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:101 rtx/90000
a=fmtp:101 apt=100
a=rtpmap:102 red/90000
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=ssrc-group:FID 2882400001 2882400002
a=ssrc:2882400001 cname:q8ZvHk2b3N0xYw1T
a=ssrc:2882400001 msid:6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21 9e2d7b3a-44c1-4f6e-a1d8-5b0c3e9f2a17
a=ssrc:2882400002 cname:q8ZvHk2b3N0xYw1T
a=ssrc:2882400002 msid:6c3b1f1e-5bd4-4b8e-9d0c-3f0e0c8d7a21 9e2d7b3a-44c1-4f6e-a1d8-5b0c3e9f2a17
`
