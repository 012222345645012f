package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/protocol"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "parley.conf")
	err := os.WriteFile(file, []byte("# settings\naddr 127.0.0.1:1111\nlog-level debug\nmax-conns-per-ip 7\nturn-ttl 2h\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PARLEY_LOG_LEVEL", "warn")
	t.Setenv("PARLEY_MESSAGE_RATE", "5")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := serveFlags(fs)
	if err := parseConfig(fs, []string{"--config", file, "--max-conns-per-ip", "9"}); err != nil {
		t.Fatal(err)
	}
	// Command line over environment over file over default.
	if cfg.maxConnsPerIP != 9 || cfg.logLevel != "warn" || cfg.addr != "127.0.0.1:1111" ||
		cfg.turnTTL != 2*time.Hour || cfg.messageRate != 5 || cfg.messageBurst != 60 {
		t.Errorf("config %+v", *cfg)
	}
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs)
	fs.SetOutput(new(strings.Builder))
	if err := parseConfig(fs, []string{"--config", filepath.Join(t.TempDir(), "missing.conf")}); err == nil {
		t.Error("a missing config file was accepted")
	}
}

func TestServeHelpDocumentsEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs)
	var out strings.Builder
	fs.SetOutput(&out)
	if err := parseConfig(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "-"+f.Name) || f.Usage == "" {
			t.Errorf("--help does not document --%s", f.Name)
		}
	})
	if !strings.Contains(out.String(), "PARLEY_") {
		t.Error("--help does not mention the environment variables")
	}
}

// TestGracefulShutdown: on SIGTERM a connected client is told why and the process exits
// within the 5 s shutdown timeout.
func TestGracefulShutdown(t *testing.T) {
	bin := buildParley(t)
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--turn-addr", "off", "--data-dir", t.TempDir())
	url, wait := startCmd(t, cmd)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil { // welcome
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if m, derr := protocol.Decode(b); err != nil || derr != nil || m.(protocol.Error).Code != protocol.CodeShuttingDown {
		t.Errorf("after SIGTERM the client got %q, %v; want error shutting_down", b, err)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("then %v, want close status 1001", err)
	}
	if err := wait(8 * time.Second); err != nil {
		t.Errorf("parley serve after SIGTERM: %v", err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
