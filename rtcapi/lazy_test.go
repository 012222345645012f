package rtcapi

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
)

// running reports whether a goroutine runs the function named fn.
func running(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// TestLazyStart: Pion's NACK generator and receiver report interceptors, wrapped, start their ticker goroutines at the first remote stream and not
// before, and stop them on Close.
func TestLazyStart(t *testing.T) {
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		factory interceptor.Factory
		loop    string
	}{
		{gen, "nack.(*GeneratorInterceptor).loop"},
		{rr, "report.(*ReceiverInterceptor).loop"},
	} {
		i, err := lazyStart{c.factory}.NewInterceptor("")
		if err != nil {
			t.Fatal(err)
		}
		w := interceptor.RTCPWriterFunc(func([]rtcp.Packet, interceptor.Attributes) (int, error) { return 0, nil })
		if got := i.BindRTCPWriter(w); got == nil {
			t.Fatalf("%s: BindRTCPWriter returned nil", c.loop)
		}
		if running(c.loop) {
			t.Fatalf("%s runs with no remote stream", c.loop)
		}
		r := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) { return 0, a, nil })
		i.BindRemoteStream(&interceptor.StreamInfo{SSRC: 1, MimeType: "video/VP8", ClockRate: 90000,
			RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}, r)
		// Started, it may not have been scheduled yet.
		for deadline := time.Now().Add(5 * time.Second); !running(c.loop); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s does not run within 5 s of a remote stream bound", c.loop)
			}
		}
		if err := i.Close(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for running(c.loop) {
			if time.Now().After(deadline) {
				t.Fatalf("%s still runs after Close", c.loop)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
