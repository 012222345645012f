package rtcapi

import (
	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/protocol"
)

// CandidateMessage is the message that trickles one of Pion's ICE candidates (RFC 8838
// §4) in session to peer to: the candidate, or for nil, which Pion gives when gathering is
// done, end-of-candidates. The protocol package knows nothing of Pion, so the conversion
// lives here, with the rest of Parley's use of Pion.
func CandidateMessage(session, to string, c *webrtc.ICECandidate) protocol.Candidate {
	msg := protocol.Candidate{SessionID: session, To: to}
	if c == nil {
		msg.EndOfCandidates = true
		return msg
	}
	init := c.ToJSON()
	msg.Candidate = &protocol.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid,
		SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment}
	return msg
}

// CandidateInit converts a trickled candidate for PeerConnection.AddICECandidate.
func CandidateInit(c *protocol.ICECandidate) webrtc.ICECandidateInit {
	return webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex,
		UsernameFragment: c.UsernameFragment}
}
