package turnserver_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-rtc/parley/turnserver"
)

// These tests drive the server with coturn's test client, turnutils_uclient (Debian package
// coturn), an independent implementation of TURN, with TURN REST API credentials.

// coturnTool returns the path of a coturn tool; without it the test fails, unless
// PARLEY_SKIP_COTURN=1.
func coturnTool(t *testing.T, name string) string {
	t.Helper()
	if os.Getenv("PARLEY_SKIP_COTURN") == "1" {
		t.Skip("PARLEY_SKIP_COTURN=1")
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (Debian: apt-get install coturn); set PARLEY_SKIP_COTURN=1 to skip: %v", name, err)
	}
	return path
}

// uclient runs turnutils_uclient against s with the given credentials and extra flags, in
// verbose mode, returning its output and whether it exited with status 0.
func uclient(t *testing.T, s *turnserver.Server, user, pass string, args ...string) (string, bool) {
	t.Helper()
	bin := coturnTool(t, "turnutils_uclient")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(append([]string{"-u", user, "-w", pass, "-p", strconv.Itoa(int(s.Addr().Port())), "-v"}, args...),
		s.Addr().Addr().String())
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("turnutils_uclient %s: timed out:\n%s", strings.Join(args, " "), out)
	}
	t.Logf("turnutils_uclient %s: %v", strings.Join(args[4:], " "), err)
	return string(out), err == nil
}

// coturnPeer starts turnutils_peer, coturn's UDP echo peer, on two consecutive loopback
// ports (it takes port and port+1, for RTP and RTCP) and returns the first.
func coturnPeer(t *testing.T) int {
	t.Helper()
	bin := coturnTool(t, "turnutils_peer")
	port := consecutiveUDPPorts(t, 2)
	cmd := exec.Command(bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Ready when it echoes.
	probe, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	buf := make([]byte, 16)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		probe.Write([]byte("probe"))
		probe.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := probe.Read(buf); err == nil && string(buf[:n]) == "probe" {
			return port
		}
	}
	t.Fatalf("turnutils_peer on 127.0.0.1:%d does not echo", port)
	return 0
}

// consecutiveUDPPorts finds n consecutive free UDP ports on loopback.
func consecutiveUDPPorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		first, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := first.LocalAddr().(*net.UDPAddr).Port
		conns := []net.PacketConn{first}
		for p := base + 1; p < base+n; p++ {
			c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if len(conns) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free UDP ports", n)
	return 0
}

var (
	totalsRE = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$`)
	lostRE   = regexp.MustCompile(`Total lost packets (\d+) \(`)
)

// TestCoturnClientRelays has turnutils_uclient allocate over UDP and TCP, with and without
// an RTCP allocation (EVEN-PORT and RESERVATION-TOKEN, RFC 8656 §14.6, §14.9), relaying by
// channels and by Send indications, to turnutils_peer on 127.0.0.1, which AllowPeers allows.
func TestCoturnClientRelays(t *testing.T) {
	coturnTool(t, "turnutils_uclient")
	s := start(t, turnserver.Config{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	peer := coturnPeer(t)
	const n = 20
	for _, tc := range []struct {
		name     string
		flags    []string
		sessions int // allocations that each send n packets: 2 with RTCP
	}{
		{"udp-channels-rtcp", nil, 2},
		{"udp-send", []string{"-s", "-c"}, 1},
		{"tcp-channels", []string{"-t", "-c"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user, pass := turnserver.Credentials(secret, "uclient-"+tc.name, time.Now(), time.Minute)
			args := append([]string{"-e", "127.0.0.1", "-r", strconv.Itoa(peer), "-n", strconv.Itoa(n)}, tc.flags...)
			out, ok := uclient(t, s, user, pass, args...)
			if !ok {
				t.Fatalf("turnutils_uclient failed:\n%s", out)
			}
			m := totalsRE.FindStringSubmatch(lastLineWith(out, "tot_send_msgs="))
			lost := lostRE.FindStringSubmatch(out)
			if m == nil || lost == nil {
				t.Fatalf("no totals in turnutils_uclient's output:\n%s", out)
			}
			sent, _ := strconv.Atoi(m[1])
			recv, _ := strconv.Atoi(m[2])
			nlost, _ := strconv.Atoi(lost[1])
			want := n * tc.sessions
			// Loopback loses nothing, but the client's socket buffer may drop a packet.
			if sent != want || recv < want*95/100 || nlost > want*5/100 {
				t.Errorf("sent %d, received %d, lost %d; want %d sent and received, 0 lost:\n%s",
					sent, recv, nlost, want, out)
			}
		})
	}
}

func lastLineWith(out, s string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// TestCoturnClientRefused checks that expired or forged credentials allocate nothing.
func TestCoturnClientRefused(t *testing.T) {
	coturnTool(t, "turnutils_uclient")
	s := start(t, turnserver.Config{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	expiredUser, expiredPass := turnserver.Credentials(secret, "alice", time.Now(), -time.Minute)
	validUser, _ := turnserver.Credentials(secret, "alice", time.Now(), time.Minute)
	_, otherPass := turnserver.Credentials("another secret", "alice", time.Now(), time.Minute)
	for _, tc := range []struct{ name, user, pass string }{
		{"expired", expiredUser, expiredPass},
		{"other-secret", validUser, otherPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := uclient(t, s, tc.user, tc.pass, "-c", "-e", "127.0.0.1", "-r", "9", "-n", "1")
			if ok {
				t.Errorf("turnutils_uclient succeeded:\n%s", out)
			}
			// RFC 8489 §9.2.4 says 401; pion/turn v5.1.0 answers 400 (Bad Request).
			if !strings.Contains(out, "error 401") && !strings.Contains(out, "error 400") {
				t.Errorf("no 401 or 400 error in turnutils_uclient's output:\n%s", out)
			}
			if strings.Contains(out, "Received relay addr") {
				t.Errorf("an allocation was made:\n%s", out)
			}
			if n := s.AllocationCount(); n != 0 {
				t.Errorf("AllocationCount() = %d, want 0", n)
			}
		})
	}
}

// TestCoturnClientLoopbackRefused checks the SSRF guard with the default configuration: a
// client with valid credentials allocates, but its permission (and channel) to a peer on
// 127.0.0.1 is refused, and the peer receives nothing.
func TestCoturnClientLoopbackRefused(t *testing.T) {
	coturnTool(t, "turnutils_uclient")
	s := start(t, turnserver.Config{})
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	port := strconv.Itoa(peer.LocalAddr().(*net.UDPAddr).Port)
	user, pass := turnserver.Credentials(secret, "mallory", time.Now(), time.Minute)

	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"create-permission", []string{"-s"}, "create permission error 403"},
		// pion/turn v5.1.0 refuses a ChannelBind to a forbidden peer with 401, not 403.
		{"channel-bind", nil, "channel bind: error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := uclient(t, s, user, pass, append([]string{"-c", "-e", "127.0.0.1", "-r", port, "-n", "5"}, tc.flags...)...)
			if ok {
				t.Errorf("turnutils_uclient succeeded:\n%s", out)
			}
			if !strings.Contains(out, "Received relay addr") {
				t.Errorf("no allocation; the refusal must come at the permission:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("no %q in turnutils_uclient's output:\n%s", tc.want, out)
			}
		})
	}
	peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	if n, from, err := peer.ReadFrom(buf); err == nil {
		t.Errorf("the loopback peer received %q from %s", bytes.TrimSpace(buf[:n]), from)
	}
}
