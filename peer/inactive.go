package peer

import (
	"fmt"

	"github.com/pion/sdp/v3"
)

// Pion (v4.2.20), answering an offer, stops the transceiver of every media section the offer
// makes inactive, and with it the receiver; when the section stayed inactive in the offer
// before too, that receiver is a fresh one that never received, and no later offer replaces
// it. So a media section the SFU ended and kept inactive for two offers or more delivers
// nothing once the SFU sends a new track in it (sfu.sync reuses ended sections): Pion logs
// "Could not determine PayloadType ... EOF" and OnTrack never fires.
//
// The SFU's offers are therefore applied with their inactive media sections read as
// sendonly without a track (no SSRC, no msid): what such a section carried ends all the same
// (Pion stops a receiver whose SSRCs are gone), but its transceiver is not stopped. The
// answer sent says inactive for them, as RFC 3264 §6.1 requires of an answer to an inactive
// stream; Pion's own says recvonly.

// keepInactive returns offer with its inactive media sections made sendonly, and their mids.
func keepInactive(offer string) (string, map[string]bool, error) {
	return rewriteDirection(offer, sdp.AttrKeyInactive, sdp.AttrKeySendOnly, nil)
}

// answerInactive returns answer with the media sections of ended (keepInactive's mids)
// inactive.
func answerInactive(answer string, ended map[string]bool) (string, error) {
	if len(ended) == 0 {
		return answer, nil
	}
	out, _, err := rewriteDirection(answer, sdp.AttrKeyRecvOnly, sdp.AttrKeyInactive, ended)
	return out, err
}

// rewriteDirection replaces the direction attribute from by to in the media sections of
// desc that have it (only those whose mid is in mids, if mids is not nil), and returns
// their mids.
func rewriteDirection(desc, from, to string, mids map[string]bool) (string, map[string]bool, error) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(desc); err != nil {
		return "", nil, fmt.Errorf("parse the session description: %w", err)
	}
	changed := map[string]bool{}
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		if mids != nil && !mids[mid] {
			continue
		}
		for i, a := range m.Attributes {
			if a.Key == from {
				m.Attributes[i] = sdp.NewPropertyAttribute(to)
				changed[mid] = true
			}
		}
	}
	if len(changed) == 0 {
		return desc, changed, nil
	}
	out, err := parsed.Marshal()
	if err != nil {
		return "", nil, fmt.Errorf("write the session description: %w", err)
	}
	return string(out), changed, nil
}
