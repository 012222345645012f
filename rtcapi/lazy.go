package rtcapi

import (
	"sync"

	"github.com/pion/interceptor"
)

// lazyStart delays an interceptor's BindRTCPWriter until the connection's first remote
// stream. Pion's NACK generator and receiver report interceptors each start a goroutine
// with a ticker there (every 100 ms and every second), which wakes whether or not anything
// arrives to report on: on a connection that only sends, as each of an SFU's subscribers
// that does not publish, they have nothing to do. At 200 such connections that was 2,200
// wake-ups a second. Both return the writer they are given unchanged, and need it only for
// what they send about remote streams. (The transport-wide feedback interceptor starts its
// ticker at the first packet received already.)
type lazyStart struct{ interceptor.Factory }

func (f lazyStart) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.Factory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &lazyInterceptor{Interceptor: i}, nil
}

type lazyInterceptor struct {
	interceptor.Interceptor

	mu      sync.Mutex
	writer  interceptor.RTCPWriter
	started bool
}

func (l *lazyInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	l.mu.Lock()
	l.writer = w
	l.mu.Unlock()
	return w
}

func (l *lazyInterceptor) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	l.mu.Lock()
	if !l.started && l.writer != nil {
		l.started = true
		l.Interceptor.BindRTCPWriter(l.writer)
	}
	l.mu.Unlock()
	return l.Interceptor.BindRemoteStream(info, r)
}
