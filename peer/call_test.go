package peer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/signaling"
)

// mediaDir is ../shared/media beside the project root, or $PARLEY_MEDIA.
func mediaDir() string {
	if d := os.Getenv("PARLEY_MEDIA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "media")
}

func load(t testing.TB, name string) *media.Clip {
	t.Helper()
	clip, err := media.Load(filepath.Join(mediaDir(), name))
	if err != nil {
		t.Fatalf("load sample media: %v", err)
	}
	return clip
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startServer(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(signaling.New(signaling.Config{Logger: quietLogger()}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type result struct {
	rep peer.Report
	err error
}

// runCall runs a host and a guest against server and returns their reports.
func runCall(ctx context.Context, server string, host, guest peer.Config) (result, result) {
	host.Server, guest.Server = server, server
	host.Create = true
	ids := make(chan string, 1)
	host.OnSession = func(id string) { ids <- id }
	hostDone := make(chan result, 1)
	go func() {
		rep, err := peer.Run(ctx, host)
		hostDone <- result{rep, err}
	}()
	var g result
	select {
	case id := <-ids:
		guest.Join = id
		rep, err := peer.Run(ctx, guest)
		g = result{rep, err}
	case h := <-hostDone:
		return h, result{err: errors.New("host ended before its session was ready")}
	}
	return <-hostDone, g
}

func TestCallBothWays(t *testing.T) {
	server := startServer(t)
	ivf, ogg, webm := load(t, "chrome-vp8.ivf"), load(t, "chrome-opus.ogg"), load(t, "chrome-vp8-opus.webm")
	hostDir, guestDir := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	h, g := runCall(ctx, server,
		peer.Config{Video: ivf.Video, Audio: ogg.Audio, RecordDir: hostDir, Duration: 3 * time.Second,
			LoopbackOnly: true, Logger: quietLogger()},
		peer.Config{Video: webm.Video, Audio: webm.Audio, RecordDir: guestDir, Duration: 3 * time.Second,
			LoopbackOnly: true, Logger: quietLogger()})
	for _, r := range []result{h, g} {
		if r.err != nil {
			t.Fatalf("%s: %v", r.rep.Role, r.err)
		}
		t.Logf("%s: %+v", r.rep.Role, r.rep)
		if r.rep.VideoFramesReceived < 60 {
			t.Errorf("%s received %d video frames, want >= 60", r.rep.Role, r.rep.VideoFramesReceived)
		}
		if r.rep.AudioPacketsReceived < 100 {
			t.Errorf("%s received %d audio packets, want >= 100", r.rep.Role, r.rep.AudioPacketsReceived)
		}
		if r.rep.ConnectedMS <= 0 || r.rep.FirstVideoMS < r.rep.ConnectedMS {
			t.Errorf("%s: connected_ms %v, first_video_ms %v: want 0 < connected <= first video",
				r.rep.Role, r.rep.ConnectedMS, r.rep.FirstVideoMS)
		}
		if r.rep.LocalCandidateType != "host" || r.rep.RemoteCandidateType != "host" {
			t.Errorf("%s: selected pair %s-%s, want host-host on loopback", r.rep.Role, r.rep.LocalCandidateType, r.rep.RemoteCandidateType)
		}
		if r.rep.RemoteVideoWidth != 480 || r.rep.RemoteVideoHeight != 270 {
			t.Errorf("%s: remote video %dx%d, want 480x270", r.rep.Role, r.rep.RemoteVideoWidth, r.rep.RemoteVideoHeight)
		}
	}
	if h.rep.Session == "" || h.rep.Session != g.rep.Session || h.rep.Role != "host" || g.rep.Role != "guest" {
		t.Errorf("reports disagree: host %q/%q, guest %q/%q", h.rep.Session, h.rep.Role, g.rep.Session, g.rep.Role)
	}
	for _, dir := range []string{hostDir, guestDir} {
		checkRecording(t, dir)
	}
}

// checkRecording checks that dir holds a decodable 480x270 VP8 IVF and an Opus Ogg file.
func checkRecording(t *testing.T, dir string) {
	t.Helper()
	video := filepath.Join(dir, "video.ivf")
	f, err := os.Open(video)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatalf("recorded IVF: %v", err)
	}
	if hdr.Width != 480 || hdr.Height != 270 || hdr.FourCC != "VP80" {
		t.Errorf("recorded IVF header: %s %dx%d, want VP80 480x270", hdr.FourCC, hdr.Width, hdr.Height)
	}
	frames := 0
	for {
		frame, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		if frames == 0 && (len(frame) < 10 || frame[0]&1 != 0) {
			t.Errorf("first recorded frame is not a VP8 key frame")
		}
		frames++
	}
	if frames < 60 {
		t.Errorf("recorded IVF holds %d frames, want >= 60", frames)
	}
	// Decode every frame with a real decoder: errors or a short count fail the test.
	out, err := exec.Command(ffmpegPath(t), "-v", "error", "-i", video, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg could not decode %s cleanly: %v\n%s", video, err, out)
	}
	probe, err := exec.Command(ffprobePath(t), "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "default=nw=1:nk=1", video).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", video, err)
	}
	fields := strings.Fields(string(probe))
	if len(fields) != 3 || fields[0] != "480" || fields[1] != "270" {
		t.Errorf("ffprobe says %q, want 480 270 <frames>", probe)
	} else if n, _ := strconv.Atoi(fields[2]); n != frames {
		t.Errorf("ffprobe decoded %d frames of %d", n, frames)
	}

	audio := filepath.Join(dir, "audio.ogg")
	af, err := os.Open(audio)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer af.Close()
	or, oh, err := oggreader.NewWith(af)
	if err != nil {
		t.Fatalf("recorded Ogg: %v", err)
	}
	if oh.SampleRate != 48000 || oh.Channels != 2 {
		t.Errorf("recorded Ogg: %d Hz %d channels, want 48000 Hz 2 channels", oh.SampleRate, oh.Channels)
	}
	pages := 0
	for {
		if _, _, err := or.ParseNextPage(); err != nil {
			break
		}
		pages++
	}
	if pages < 100 {
		t.Errorf("recorded Ogg holds %d pages, want >= 100", pages)
	}
}

func ffmpegPath(t *testing.T) string  { return tool(t, "ffmpeg") }
func ffprobePath(t *testing.T) string { return tool(t, "ffprobe") }

func tool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to check recordings (apt-get install ffmpeg; make deps does it)", name)
	}
	return p
}

func TestJoinErrors(t *testing.T) {
	server := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := peer.Run(ctx, peer.Config{Server: server, Join: "no-such-session", Logger: quietLogger()})
	if !errors.Is(err, peer.ErrJoin) || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("join unknown session: %v, want ErrJoin (unknown)", err)
	}
	_, err = peer.Run(ctx, peer.Config{Server: "http://127.0.0.1:1", Create: true, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "connect to signaling server") {
		t.Errorf("unreachable server: %v, want a connect error", err)
	}
}

func TestPasswordProtectedCall(t *testing.T) {
	server := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make(chan string, 1)
	hostDone := make(chan result, 1)
	go func() {
		rep, err := peer.Run(ctx, peer.Config{Server: server, Create: true, Password: "pw", LoopbackOnly: true,
			Duration: 500 * time.Millisecond, Logger: quietLogger(), OnSession: func(id string) { ids <- id }})
		hostDone <- result{rep, err}
	}()
	id := <-ids
	_, err := peer.Run(ctx, peer.Config{Server: server, Join: id, Password: "wrong", Logger: quietLogger()})
	if !errors.Is(err, peer.ErrJoin) || !strings.Contains(err.Error(), "wrong_password") {
		t.Errorf("wrong password: %v, want ErrJoin (wrong_password)", err)
	}
	g, err := peer.Run(ctx, peer.Config{Server: server, Join: id, Password: "pw", LoopbackOnly: true,
		Duration: 500 * time.Millisecond, Logger: quietLogger()})
	h := <-hostDone
	if err != nil || h.err != nil || g.ConnectedMS == 0 || h.rep.ConnectedMS == 0 {
		t.Errorf("right password: guest %v %+v, host %v %+v", err, g, h.err, h.rep)
	}
}
