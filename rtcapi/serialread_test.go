package rtcapi

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
)

// Two bindings of one SSRC never read at once; bindings of other SSRCs are not held up.
func TestSerialReads(t *testing.T) {
	i, err := serialReads{}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	var inside, overlaps atomic.Int32
	slow := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		if inside.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(time.Millisecond)
		inside.Add(-1)
		return len(b), a, nil
	})
	same := &interceptor.StreamInfo{SSRC: 1}
	readers := []interceptor.RTPReader{i.BindRemoteStream(same, slow), i.BindRemoteStream(same, slow)}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, _, err := r.Read(make([]byte, 4), nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d reads of SSRC 1 overlapped", n)
	}

	// A read of another SSRC goes through while SSRC 1 is being read.
	block := make(chan struct{})
	held := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		<-block
		return 0, a, nil
	})
	go func() { _, _, _ = i.BindRemoteStream(same, held).Read(nil, nil) }()
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		_, _, _ = i.BindRemoteStream(&interceptor.StreamInfo{SSRC: 2}, slow).Read(make([]byte, 4), nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("a read of SSRC 2 waited for SSRC 1")
	}
	close(block)

	i.UnbindRemoteStream(same)
	i.UnbindRemoteStream(same)
	i.UnbindRemoteStream(same)
	if n := len(i.(*serialReader).locks); n != 1 {
		t.Errorf("%d locks after SSRC 1's bindings were unbound, want 1 (SSRC 2's)", n)
	}
}
