package media_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley-rtc/parley/media"
)

func ExampleLoad() {
	clip, err := media.Load("../../shared/media/chrome-vp8-opus.webm")
	if err != nil {
		log.Fatal(err)
	}
	v, a := clip.Video, clip.Audio
	fmt.Printf("%s %dx%d, %d frames\n", v.MimeType, v.Width, v.Height, len(v.Frames))
	fmt.Printf("%s %d channels, %d packets\n", a.MimeType, a.Channels, len(a.Frames))
	// Output:
	// video/VP8 480x270, 899 frames
	// audio/opus 2 channels, 1500 packets
}

// Play sends a clip's video on a WebRTC track as a camera would, looping, until ctx ends.
func ExamplePlay() {
	clip, err := media.Load("../../shared/media/chrome-vp8.ivf")
	if err != nil {
		log.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: clip.Video.MimeType, ClockRate: clip.Video.ClockRate},
		"video", "parley")
	if err != nil {
		log.Fatal(err)
	}
	// track would be added to a PeerConnection here.

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = media.Play(ctx, clip.Video, true, func(f media.Frame) error {
		return track.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration})
	})
	if err != nil {
		log.Fatal(err)
	}
}
