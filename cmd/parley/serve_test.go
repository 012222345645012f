package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/jointoken"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sigclient"
	"github.com/parley-rtc/parley/turnserver"
	"github.com/parley-rtc/parley/udpbatch"
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

// TestNoSecretsInLogs runs the server at debug level through passwords, tokens and TURN
// credentials, and checks that none of them appears in its logs.
func TestNoSecretsInLogs(t *testing.T) {
	const turnSecret, tokenSecret, password = "turn-secret-Zq81", "token-secret-0123456789abcdef-XYZ", "pass-Kx93"
	bin := buildParley(t)
	var logs strings.Builder
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--log-level", "debug", "--data-dir", t.TempDir(),
		"--turn-addr", "127.0.0.1:0", "--turn-secret", turnSecret, "--token-secret", tokenSecret)
	url, wait := startCmdStderr(t, cmd, &logs)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	host, err := sigclient.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var secrets = []string{turnSecret, tokenSecret, password}
	for _, s := range host.Welcome.ICEServers {
		if s.Credential != "" {
			secrets = append(secrets, s.Credential)
		}
	}
	if len(secrets) != 4 {
		t.Fatalf("welcome has no TURN credential: %+v", host.Welcome)
	}
	_ = host.Send(ctx, protocol.CreateSession{Password: password})
	ready, _ := host.Read(ctx)
	session := ready.(protocol.SessionReady).SessionID
	tok, _ := jointoken.Issue([]byte(tokenSecret), session, time.Now().Add(-2*time.Hour), time.Hour) // expired
	secrets = append(secrets, tok)
	guest, err := sigclient.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []protocol.JoinSession{{SessionID: session, Password: password + "x"}, {SessionID: session, Token: tok}} {
		_ = guest.Send(ctx, j)
		if m, err := guest.Read(ctx); err != nil || m.Type() != protocol.TypeJoinError {
			t.Fatalf("join %+v: %v %v", j, m, err)
		}
	}
	_ = host.Close()
	_ = guest.Close()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "join refused") {
		t.Fatalf("the debug log does not show the refused joins, so this test checks nothing:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log contains a secret %q:\n%s", s, out)
		}
	}
}

func TestExternalICEServers(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	got := externalICEServers([]string{"stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"},
		"s3cret", "user1", now, time.Hour)
	if len(got) != 2 || len(got[0].URLs) != 1 || got[0].Username != "" || len(got[1].URLs) != 2 {
		t.Fatalf("got %+v", got)
	}
	user, pass := turnserver.Credentials("s3cret", "user1", now, time.Hour)
	if got[1].Username != user || got[1].Credential != pass || user != "1800003600:user1" {
		t.Errorf("TURN credentials %q/%q, want %q/%q (expiry:userID)", got[1].Username, got[1].Credential, user, pass)
	}
}

// TestMediaPortAndProfile: --media-port is the SFU's UDP port (it is taken while the
// server runs, and free again after), /healthz/sfu reports the SFU's totals (on Linux, that
// the port sends from its send-only socket), and --cpuprofile leaves a profile (gzipped
// protobuf) once the server has shut down.
func TestMediaPortAndProfile(t *testing.T) {
	bin := buildParley(t)
	free, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	free.Close()
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--turn-addr", "off", "--data-dir", t.TempDir(),
		"--sfu-loopback", "--media-port", strconv.Itoa(port), "--cpuprofile", prof)
	url, wait := startCmd(t, cmd)

	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); !errors.Is(err, syscall.EADDRINUSE) {
		if c != nil {
			c.Close()
		}
		t.Errorf("UDP port %d while the server runs: %v, want EADDRINUSE", port, err)
	}
	resp, err := http.Get(url + "/healthz/sfu")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Rooms   *int            `json:"rooms"`
		Written *uint64         `json:"written"`
		Media   *udpbatch.Stats `json:"media"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || h.Rooms == nil || *h.Rooms != 0 || h.Written == nil || h.Media == nil {
		t.Errorf("GET /healthz/sfu: %s, %+v, %v", resp.Status, h, err)
	} else if runtime.GOOS == "linux" && !h.Media.SendOnly {
		t.Errorf("GET /healthz/sfu: media %+v, want send_only: the media port sends from its send-only socket", *h.Media)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := wait(8 * time.Second); err != nil {
		t.Fatalf("parley serve after SIGTERM: %v", err)
	}
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("CPU profile: %d bytes, %v; want a gzipped profile", len(b), err)
	}
	// Both of the media port's sockets closed with the server.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Errorf("UDP port %d after the server stopped: %v", port, err)
	} else {
		c.Close()
	}
}
