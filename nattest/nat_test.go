package nattest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-rtc/parley/internal/netns"
)

// The test network, all inside namespaces the test makes (10.99.0.0/16 is used by nothing
// else of Parley's):
//
//	peerA 10.99.11.2 ── 10.99.11.1 natA 10.99.1.2 ── 10.99.1.1 ┐
//	                                (MASQUERADE)                 srv (ip_forward=0)
//	peerB 10.99.12.2 ── 10.99.12.1 natB 10.99.2.2 ── 10.99.2.1 ┘
//
// Each NAT routes everything to srv, and srv forwards nothing, so a peer reaches srv's
// addresses and nothing beyond: not the other NAT, not the other peer. A call between
// them can only go through srv's TURN server.
const (
	srvA, natAOut, natAIn, peerAAddr = "10.99.1.1", "10.99.1.2", "10.99.11.1", "10.99.11.2"
	srvB, natBOut, natBIn, peerBAddr = "10.99.2.1", "10.99.2.2", "10.99.12.1", "10.99.12.2"
	prefixLen                        = "/24"
	testNet                          = "10.99.0.0/16"
	echoPort                         = "9999"
)

// The test binary doubles as a tiny UDP tool run inside the namespaces, so that checking
// who reaches whom needs nothing but ip: PARLEY_NATTEST_HELPER=echo echoes datagrams on
// PARLEY_NATTEST_ADDR; =probe exits 0 if PARLEY_NATTEST_ADDR echoes within a second.
const helperEnv, helperAddrEnv = "PARLEY_NATTEST_HELPER", "PARLEY_NATTEST_ADDR"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Getenv(helperAddrEnv)))
	}
	os.Exit(m.Run())
}

func helper(mode, addr string) int {
	switch mode {
	case "echo":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("ready")
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return 2
			}
			c.WriteTo(buf[:n], from)
		}
	case "probe":
		c, err := net.Dial("udp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		buf := make([]byte, 64)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			c.Write([]byte("probe"))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == "probe" {
				return 0
			}
			time.Sleep(50 * time.Millisecond) // after an ICMP error, not to spin
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "unknown %s=%s\n", helperEnv, mode)
	return 2
}

// TestCallThroughTURN makes a call between two peers behind separate NATs that cannot reach
// each other: it must connect through the TURN server that `parley serve` runs, over a
// relay candidate pair, and carry media both ways.
func TestCallThroughTURN(t *testing.T) {
	netns.Require(t, "the NAT traversal test", "to build network namespaces")
	video, audio := netns.MediaFiles(t)
	bin := netns.BuildParley(t)
	n := newNetwork(t)
	n.checkIsolation(t)

	dir := t.TempDir()
	// End well before go test's -timeout would, which kills the test without its cleanup.
	deadline := time.Now().Add(2 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	server := n.srv.Start(ctx, t, "server", bin, "serve", "--addr", srvA+":8080",
		"--turn-addr", "0.0.0.0:3478", "--turn-public-ip", srvA, "--turn-allow-peers", testNet,
		"--log-level", "warn", "--data-dir", filepath.Join(dir, "data"))
	if _, err := server.WaitLine("parley: listening on", 15*time.Second); err != nil {
		t.Fatalf("parley serve did not start: %v\n%s", err, server.Output())
	}

	url := "http://" + srvA + ":8080"
	common := []string{"--server", url, "--video", video, "--audio", audio, "--duration", "4s"}
	repA, repB := filepath.Join(dir, "peerA.json"), filepath.Join(dir, "peerB.json")
	host := n.peerA.Start(ctx, t, "peerA", append([]string{bin, "call", "--new", "--report", repA}, common...)...)
	line, err := host.WaitLine("session ", 15*time.Second)
	if err != nil {
		t.Fatalf("peerA did not create a session: %v\n%s\nserver:\n%s", err, host.Output(), server.Output())
	}
	session := strings.TrimSpace(strings.TrimPrefix(line, "session "))
	guest := n.peerB.Start(ctx, t, "peerB", append([]string{bin, "call", "--join", session, "--report", repB}, common...)...)

	errA, errB := host.Wait(), guest.Wait()
	if errA != nil || errB != nil {
		t.Errorf("parley call exited: peerA %v, peerB %v", errA, errB)
	}
	for _, p := range []struct {
		name, report string
		proc         *netns.Proc
	}{{"peerA", repA, host}, {"peerB", repB, guest}} {
		rep, err := netns.ReadReport(p.report)
		if err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.proc.Output())
			continue
		}
		t.Logf("%s: connected in %.0f ms over %s-%s; received %d video frames, %d audio packets",
			p.name, rep.ConnectedMS, rep.LocalCandidateType, rep.RemoteCandidateType,
			rep.VideoFramesReceived, rep.AudioPacketsReceived)
		if rep.VideoFramesReceived < 60 || rep.AudioPacketsReceived < 100 {
			t.Errorf("%s received %d video frames and %d audio packets, want at least 60 and 100: %+v\n%s",
				p.name, rep.VideoFramesReceived, rep.AudioPacketsReceived, rep, p.proc.Output())
		}
		if rep.LocalCandidateType != "relay" && rep.RemoteCandidateType != "relay" {
			t.Errorf("%s: selected candidate pair %q-%q, want a relay candidate on at least one side "+
				"(local_candidate_type, remote_candidate_type)", p.name, rep.LocalCandidateType, rep.RemoteCandidateType)
		}
	}
	if t.Failed() {
		t.Logf("server output:\n%s", server.Output())
	}
}

// network is the test's namespaces.
type network struct {
	srv, natA, natB, peerA, peerB netns.NS
}

// newNetwork makes the namespaces and links; they are removed when the test ends, however
// it ends, and those a killed test process left behind at the next run.
func newNetwork(t *testing.T) *network {
	t.Helper()
	netns.RemoveStale(t, nsName)
	add := func(role string) netns.NS { return netns.Add(t, fmt.Sprintf("parley-%d-%s", os.Getpid(), role)) }
	n := &network{srv: add("srv"), natA: add("natA"), natB: add("natB"), peerA: add("peerA"), peerB: add("peerB")}

	netns.Link(n.srv, "toA", srvA+prefixLen, n.natA, "wan", natAOut+prefixLen)
	netns.Link(n.srv, "toB", srvB+prefixLen, n.natB, "wan", natBOut+prefixLen)
	netns.Link(n.natA, "lan", natAIn+prefixLen, n.peerA, "eth0", peerAAddr+prefixLen)
	netns.Link(n.natB, "lan", natBIn+prefixLen, n.peerB, "eth0", peerBAddr+prefixLen)

	n.srv.Sysctl("net/ipv4/ip_forward", "0")
	for _, nat := range []struct {
		ns  netns.NS
		srv string
	}{{n.natA, srvA}, {n.natB, srvB}} {
		nat.ns.Sysctl("net/ipv4/ip_forward", "1")
		nat.ns.IP("route", "add", "default", "via", nat.srv)
		nat.ns.Exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
	}
	n.peerA.IP("route", "add", "default", "via", natAIn)
	n.peerB.IP("route", "add", "default", "via", natBIn)
	return n
}

var nsName = regexp.MustCompile(`^parley-(\d+)-(srv|natA|natB|peerA|peerB)$`)

// checkIsolation checks the premise of the test with UDP echoes: each peer reaches the
// server, and neither reaches the other peer or the other peer's NAT.
func (n *network) checkIsolation(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Each echo is bound to the address probed: bound to the wildcard address, srv's would
	// answer peerB from 10.99.2.1, which natB drops as it is not whom peerB sent to.
	for _, e := range []struct {
		ns   netns.NS
		addr string
	}{{n.srv, srvA}, {n.natA, natAOut}, {n.natB, natBOut}, {n.peerA, peerAAddr}, {n.peerB, peerBAddr}} {
		echo := e.ns.StartEnv(ctx, t, "echo in "+e.ns.Name,
			[]string{helperEnv + "=echo", helperAddrEnv + "=" + net.JoinHostPort(e.addr, echoPort)}, self)
		if _, err := echo.WaitLine("ready", 10*time.Second); err != nil {
			t.Fatalf("UDP echo in %s: %v\n%s", e.ns.Name, err, echo.Output())
		}
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		from  netns.NS
		to    string
		reach bool
	}{
		{n.peerA, srvA, true},
		{n.peerB, srvA, true},
		{n.peerA, natBOut, false},
		{n.peerA, peerBAddr, false},
		{n.peerB, natAOut, false},
		{n.peerB, peerAAddr, false},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("ip", "netns", "exec", p.from.Name, self)
			cmd.Env = append(netns.Environ(), helperEnv+"=probe", helperAddrEnv+"="+net.JoinHostPort(p.to, echoPort))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case err == nil && !p.reach:
				t.Errorf("%s reaches %s; the test network must keep the peers apart", p.from.Name, p.to)
			case errors.As(err, &exit) && exit.ExitCode() == 1 && p.reach:
				t.Errorf("%s does not reach %s", p.from.Name, p.to)
			case err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1):
				t.Errorf("probe from %s to %s: %v\n%s", p.from.Name, p.to, err, out)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}
