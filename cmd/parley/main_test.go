package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-rtc/parley/peer"
)

// buildParley builds the binary once per test run.
func buildParley(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "parley")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func mediaFile(name string) string {
	if d := os.Getenv("PARLEY_MEDIA"); d != "" {
		return filepath.Join(d, name)
	}
	return filepath.Join("..", "..", "..", "shared", "media", name)
}

// startServe runs `parley serve` on a free port and returns its base URL; the test
// checks at its end that SIGINT stops it cleanly.
func startServe(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--log-level", "warn",
		"--turn-addr", "off", "--data-dir", t.TempDir())
	url, wait := startCmd(t, cmd)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := wait(10 * time.Second); err != nil {
			t.Errorf("parley serve after SIGINT: %v", err)
		}
	})
	return url
}

// startCmd starts a `parley serve` command and reads its base URL from its first line.
// wait waits up to d for it to exit (killing it after) and says how it went.
func startCmd(t *testing.T, cmd *exec.Cmd) (url string, wait func(d time.Duration) error) {
	t.Helper()
	return startCmdStderr(t, cmd, os.Stderr)
}

// startCmdStderr is startCmd with the command's stderr going to stderr.
func startCmdStderr(t *testing.T, cmd *exec.Cmd, stderr io.Writer) (url string, wait func(d time.Duration) error) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	var result error
	wait = func(d time.Duration) error {
		once.Do(func() {
			select {
			case result = <-done:
			case <-time.After(d):
				_ = cmd.Process.Kill()
				<-done
				result = fmt.Errorf("did not exit within %v", d)
			}
		})
		return result
	}
	t.Cleanup(func() { _ = wait(0) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading parley serve's first line: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "parley: listening on ")
	if !ok {
		t.Fatalf("parley serve's first line is %q", line)
	}
	go io.Copy(io.Discard, stdout)
	return url, wait
}

// TestCommandLineCall makes a call the way the README says: one server, two `parley call`
// processes, the host printing its session ID for the guest.
func TestCommandLineCall(t *testing.T) {
	bin := buildParley(t)
	url := startServe(t, bin)
	dir := t.TempDir()

	host := exec.Command(bin, "call", "--server", url, "--new", "--loopback", "--name", "  Ada Lovelace ",
		"--video", mediaFile("chrome-vp8.ivf"), "--audio", mediaFile("chrome-opus.ogg"),
		"--duration", "2s", "--report", filepath.Join(dir, "host.json"))
	hostOut, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var hostErr strings.Builder
	host.Stderr = &hostErr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(hostOut).ReadString('\n')
	if err != nil {
		t.Fatalf("host printed no session line: %v; stderr: %s", err, hostErr.String())
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "session ")
	if !ok || len(id) != 22 {
		t.Fatalf("host's first line is %q, want 'session <22-char ID>'", line)
	}

	guest := exec.Command(bin, "call", "--server", url, "--join", id, "--loopback", "--name", "Grace",
		"--video", mediaFile("chrome-vp8-opus.webm"), "--duration", "2s",
		"--record", filepath.Join(dir, "rec"), "--report", "-")
	out, err := guest.Output()
	if err != nil {
		t.Fatalf("guest: %v\n%s", err, exitStderr(err))
	}
	if err := host.Wait(); err != nil {
		t.Fatalf("host: %v\n%s", err, hostErr.String())
	}
	var g, h peer.Report
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatalf("guest report %q: %v", out, err)
	}
	hb, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatalf("host report %q: %v", hb, err)
	}
	for _, r := range []peer.Report{h, g} {
		if r.Session != id || r.VideoFramesReceived < 30 || r.AudioPacketsReceived < 50 || r.VideoFramesSent < 30 {
			t.Errorf("%s report: %+v", r.Role, r)
		}
	}
	// Each knows the other's name (the host's trimmed); neither's own is in its report.
	if len(h.Names) != 1 || !slices.Contains(slices.Collect(maps.Values(h.Names)), "Grace") {
		t.Errorf("host report names %v, want the guest's name Grace", h.Names)
	}
	if len(g.Names) != 1 || !slices.Contains(slices.Collect(maps.Values(g.Names)), "Ada Lovelace") {
		t.Errorf("guest report names %v, want the host's name Ada Lovelace", g.Names)
	}
	if h.Role != "host" || g.Role != "guest" {
		t.Errorf("roles: host report says %q, guest report says %q", h.Role, g.Role)
	}
	for _, f := range []string{"video.ivf", "audio.ogg"} {
		if st, err := os.Stat(filepath.Join(dir, "rec", f)); err != nil || st.Size() < 10000 {
			t.Errorf("recording %s: %v", f, err)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	bin := buildParley(t)
	url := startServe(t, bin)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"call", "--server", url, "--join", "nope"}, "unknown"},
		{[]string{"call", "--server", url}, "exactly one of --new and --join"},
		{[]string{"call", "--server", url, "--new", "--name", strings.Repeat("n", 65)}, "--name: bad display name: 65 bytes long"},
		{[]string{"call", "--server", url, "--new", "--name", "a\tb"}, "--name: bad display name: control character U+0009"},
		{[]string{"call", "--server", url, "--new", "--video", "main.go"}, "unknown container format"},
		{[]string{"call", "--server", "http://127.0.0.1:1", "--new"}, "connect to signaling server"},
		{[]string{"serve", "--addr", "256.0.0.1:99999"}, "listen on"},
		{[]string{"bench", "sfu", "--runs", "0"}, "--runs 0: want at least 1"},
		{[]string{"bench", "sfu", "--against", "main.go"}, "--against main.go: not an executable file"},
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, tc.args...)
		out, err := cmd.CombinedOutput()
		msg := strings.TrimSpace(string(out))
		if err == nil || cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("parley %v succeeded, want a non-zero exit", tc.args)
		}
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, tc.want) {
			t.Errorf("parley %v said %q, want one line containing %q", tc.args, msg, tc.want)
		}
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
