package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/parley-rtc/parley/media"
	"github.com/parley-rtc/parley/peer"
	"github.com/parley-rtc/parley/protocol"
)

func call(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	server := fs.String("server", "http://127.0.0.1:8080", "`URL` of the parley server")
	create := fs.Bool("new", false, "create a session and print 'session <ID>' on stdout")
	join := fs.String("join", "", "join the session with this `ID`")
	group := fs.Bool("group", false, "with --new: make it a group session, its media through the server's SFU")
	password := fs.String("password", "", "with --new: protect the session with this `password`; with --join: the session's password")
	token := fs.String("token", "", "with --join: a signed join `token` (see parley token)")
	name := fs.String("name", "", "your display `name` for the others (at most 64 bytes)")
	video := fs.String("video", "", "send video from this `file`: VP8 in IVF, or a WebM with VP8 (and Opus)")
	audio := fs.String("audio", "", "send audio from this `file`: Opus in Ogg (or WebM)")
	record := fs.String("record", "", "write received media to `DIR`/video.ivf and DIR/audio.ogg")
	duration := fs.Duration("duration", 0, "hang up this long after the call connects (0: when the peer leaves or on Ctrl-C)")
	timeout := fs.Duration("connect-timeout", 30*time.Second, "give up if the call has not connected this long after the offer")
	report := fs.String("report", "", "on exit write a JSON report to `FILE` (- for stdout)")
	loopback := fs.Bool("loopback", false, "gather only loopback ICE candidates (both peers on this machine)")
	verbose := fs.Bool("v", false, "log debug detail to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *create == (*join != "") {
		return errors.New("give exactly one of --new and --join ID")
	}
	if *group && !*create {
		return errors.New("--group goes with --new; a joined session is a group if its host made it one")
	}
	*name = strings.TrimSpace(*name)
	if err := protocol.CheckName(*name); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := peer.Config{
		Server: *server, Create: *create, Group: *group, Join: *join, Password: *password, Token: *token, Name: *name, RecordDir: *record,
		Duration: *duration, ConnectTimeout: *timeout, LoopbackOnly: *loopback,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		OnSession: func(id string) {
			if *create {
				fmt.Printf("session %s\n", id)
			}
		},
	}
	var err error
	if cfg.Video, cfg.Audio, err = loadMedia(*video, *audio); err != nil {
		return err
	}
	rep, err := peer.Run(ctx, cfg)
	if *report != "" {
		if werr := writeReport(*report, rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// loadMedia loads the --video and --audio files; a WebM given as --video also supplies the
// audio when --audio is not given.
func loadMedia(videoPath, audioPath string) (video, audio *media.Stream, err error) {
	if videoPath != "" {
		clip, err := media.Load(videoPath)
		if err != nil {
			return nil, nil, err
		}
		if clip.Video == nil {
			return nil, nil, fmt.Errorf("--video %s: no VP8 video in it", videoPath)
		}
		video, audio = clip.Video, clip.Audio
	}
	if audioPath != "" {
		clip, err := media.Load(audioPath)
		if err != nil {
			return nil, nil, err
		}
		if clip.Audio == nil {
			return nil, nil, fmt.Errorf("--audio %s: no Opus audio in it", audioPath)
		}
		audio = clip.Audio
	}
	return video, audio, nil
}

func writeReport(path string, rep peer.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}
