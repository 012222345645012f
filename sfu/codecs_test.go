package sfu

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestForwardedCodecs(t *testing.T) {
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	rtx8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=96"}, PayloadType: 97}
	vp9a := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, PayloadType: 98}
	rtx9a := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=98"}, PayloadType: 99}
	vp9b := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=2"}, PayloadType: 100}
	rtx9b := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=100"}, PayloadType: 101}
	h264 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	video := []webrtc.RTPCodecParameters{vp8, rtx8, vp9a, rtx9a, vp9b, rtx9b, h264}
	for _, tc := range []struct {
		name string
		all  []webrtc.RTPCodecParameters
		c    webrtc.RTPCodecCapability
		want []uint8
	}{
		{"vp8 and its rtx", video, webrtc.RTPCodecCapability{MimeType: "video/vp8", ClockRate: 90000}, []uint8{96, 97}},
		{"vp9 by fmtp", video, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, SDPFmtpLine: "profile-id=2"}, []uint8{100, 101}},
		{"h264, fmtp in another order", video, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			SDPFmtpLine: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1"}, []uint8{102}},
		{"fmtp unmatched: first of the type", video, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, SDPFmtpLine: "profile-id=1"}, []uint8{98, 99}},
		{"opus, no rtx", []webrtc.RTPCodecParameters{opus}, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, []uint8{111}},
		{"unknown codec", video, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1}, nil},
	} {
		got := forwardedCodecs(tc.all, tc.c)
		var pts []uint8
		for _, p := range got {
			pts = append(pts, uint8(p.PayloadType))
		}
		if len(pts) != len(tc.want) {
			t.Errorf("%s: payload types %v, want %v", tc.name, pts, tc.want)
			continue
		}
		for i := range pts {
			if pts[i] != tc.want[i] {
				t.Errorf("%s: payload types %v, want %v", tc.name, pts, tc.want)
				break
			}
		}
	}
}

func TestFitsMessage(t *testing.T) {
	line := "a=rtcp-fb:96 nack pli\r\n" // 23 bytes, 25 once JSON escapes CR and LF
	small := strings.Repeat(line, 1000)
	if err := fitsMessage("k3QzP0sVb7tLwE4nH6uR1A", small); err != nil {
		t.Errorf("a %d-byte offer: %v", len(small), err)
	}
	// 2,700 lines are 62,100 bytes of SDP but 67,500 in JSON: over 65,536.
	big := strings.Repeat(line, 2700)
	if err := fitsMessage("k3QzP0sVb7tLwE4nH6uR1A", big); !errors.Is(err, errOfferTooLarge) {
		t.Errorf("a %d-byte offer (escaped over 64 KiB): %v, want errOfferTooLarge", len(big), err)
	}
}
