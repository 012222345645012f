package sfu

// vp8KeyFrameStart reports whether an RTP payload of VP8 is the first packet of a key
// frame, where a subscriber can start decoding a layer.
//
// The payload starts with the VP8 payload descriptor (RFC 7741 §4.2): a first byte
// X|R|N|S|R|PID, then, when X is set, a byte I|L|T|K|RSV and the optional fields it names
// (a 7- or 15-bit PictureID when I, TL0PICIDX when L, TID/KEYIDX when T or K). A packet
// with S=1 and PID=0 begins a frame with the VP8 payload header (RFC 7741 §4.3), whose
// first byte's lowest bit, P, is 0 for a key frame (RFC 6386 §9.1).
func vp8KeyFrameStart(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b := payload[0]
	if b&0x10 == 0 || b&0x07 != 0 { // S=0, or a partition other than the first
		return false
	}
	i := 1
	if b&0x80 != 0 { // X: extension byte
		if len(payload) < 2 {
			return false
		}
		x := payload[1]
		i = 2
		if x&0x80 != 0 { // I: PictureID, M bit for 15 bits
			if len(payload) < i+1 {
				return false
			}
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID|Y|KEYIDX
			i++
		}
	}
	if len(payload) <= i {
		return false
	}
	return payload[i]&0x01 == 0
}
