package sfu

import (
	"strconv"
	"strings"

	"github.com/pion/webrtc/v4"
)

// forwardedCodecs picks, from the codecs a subscriber's transceiver may offer (all of the
// SFU's codecs of that kind), the one the forwarded track is in and its RTX (RFC 4588
// §8.6, "apt"). Offering only those keeps each media section small: with every default
// codec a video section is about 2 KB, and a 16-person group's offer (30 sections) would
// pass the 64 KiB limit of a signaling message. Nil if c is not among them.
func forwardedCodecs(all []webrtc.RTPCodecParameters, c webrtc.RTPCodecCapability) []webrtc.RTPCodecParameters {
	match := -1
	for i, p := range all {
		if !strings.EqualFold(p.MimeType, c.MimeType) {
			continue
		}
		if sameFmtp(p.SDPFmtpLine, c.SDPFmtpLine) {
			match = i
			break
		}
		if match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil
	}
	out := []webrtc.RTPCodecParameters{all[match]}
	apt := "apt=" + strconv.Itoa(int(all[match].PayloadType))
	for _, p := range all {
		if strings.EqualFold(p.MimeType, webrtc.MimeTypeRTX) && hasFmtpParam(p.SDPFmtpLine, apt) {
			out = append(out, p)
		}
	}
	return out
}

// sameFmtp compares two fmtp lines (RFC 4566 §6 a=fmtp) as sets of parameters.
func sameFmtp(a, b string) bool {
	pa, pb := strings.Split(a, ";"), strings.Split(b, ";")
	if len(pa) != len(pb) {
		return false
	}
	for _, p := range pa {
		if !hasFmtpParam(b, strings.TrimSpace(p)) {
			return false
		}
	}
	return true
}

func hasFmtpParam(line, param string) bool {
	for p := range strings.SplitSeq(line, ";") {
		if strings.EqualFold(strings.TrimSpace(p), param) {
			return true
		}
	}
	return false
}
