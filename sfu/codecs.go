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

// narrowCodecs narrows each media section a participant's offers made (its own tracks, or
// its receive-only sections) to the first codec the offer lists for it that the SFU
// supports, with that codec's RTX: the one the participant's side sends anyway, as the
// first of the answer (RFC 3264 §6.1). Otherwise Pion answers with, and lists in each later
// SFU offer, every codec the participant offered: a video section of a Pion client's is
// then 4.6 KB instead of 0.9 KB, and it stays in every SFU offer after its track ends, each
// screen share adding one. The SFU's own sections, for the tracks it forwards, are narrow
// already (forwardedCodecs).
func narrowCodecs(pc *webrtc.PeerConnection) {
	for _, tr := range pc.GetTransceivers() {
		r := tr.Receiver()
		if r == nil {
			continue
		}
		cs := r.GetParameters().Codecs
		var first *webrtc.RTPCodecParameters
		n := 0
		for i := range cs {
			if !strings.EqualFold(cs[i].MimeType, webrtc.MimeTypeRTX) {
				if first == nil {
					first = &cs[i]
				}
				n++
			}
		}
		if n <= 1 {
			continue
		}
		_ = tr.SetCodecPreferences(forwardedCodecs(cs, first.RTPCodecCapability))
	}
}
