package rtcapi

import (
	"sync"

	"github.com/pion/interceptor"
)

// Pion v4.2.20 can read one incoming RTP stream from two goroutines at once, a data race
// on the SRTP read stream's queue of peeked packets. It happens when a packet arrives on
// an SSRC that no remote description declares yet: Pion starts probing the stream for a
// MID and RID header extension (RFC 8843 §15, RFC 8852) to find its transceiver. If a
// later description declares the SSRC (a=ssrc, RFC 5576) while the probe still runs, the
// receiver that description starts reads the same stream. A peer that sends a new track
// before the offer that announces it does exactly that: a hostile one, or a Pion client
// whose withdrawn offer had already marked its sender negotiated.
//
// serialReads makes the two take turns. It sits closest to the network, where both
// bindings of the SSRC read the SRTP stream, and gives each SSRC of a peer connection one
// lock. The probe gives up after a few packets, which the receiver then misses; the stream
// goes on.
type serialReads struct{}

func (serialReads) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &serialReader{locks: map[uint32]*ssrcLock{}}, nil
}

type serialReader struct {
	interceptor.NoOp
	mu    sync.Mutex
	locks map[uint32]*ssrcLock // by SSRC
}

type ssrcLock struct {
	sync.Mutex
	bound int // bindings of the SSRC that use it
}

func (s *serialReader) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	s.mu.Lock()
	l := s.locks[info.SSRC]
	if l == nil {
		l = &ssrcLock{}
		s.locks[info.SSRC] = l
	}
	l.bound++
	s.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		l.Lock()
		defer l.Unlock()
		return r.Read(b, a)
	})
}

func (s *serialReader) UnbindRemoteStream(info *interceptor.StreamInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.locks[info.SSRC]; l != nil {
		if l.bound--; l.bound <= 0 {
			delete(s.locks, info.SSRC)
		}
	}
}
