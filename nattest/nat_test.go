package nattest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-rtc/parley/peer"
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
	requireNetns(t)
	video, audio := mediaFiles(t)
	bin := buildParley(t)
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

	server := n.srv.start(ctx, t, "server", bin, "serve", "--addr", srvA+":8080",
		"--turn-addr", "0.0.0.0:3478", "--turn-public-ip", srvA, "--turn-allow-peers", testNet,
		"--log-level", "warn", "--data-dir", filepath.Join(dir, "data"))
	if _, err := server.waitLine("parley: listening on", 15*time.Second); err != nil {
		t.Fatalf("parley serve did not start: %v\n%s", err, server.output())
	}

	url := "http://" + srvA + ":8080"
	common := []string{"--server", url, "--video", video, "--audio", audio, "--duration", "4s"}
	repA, repB := filepath.Join(dir, "peerA.json"), filepath.Join(dir, "peerB.json")
	host := n.peerA.start(ctx, t, "peerA", append([]string{bin, "call", "--new", "--report", repA}, common...)...)
	line, err := host.waitLine("session ", 15*time.Second)
	if err != nil {
		t.Fatalf("peerA did not create a session: %v\n%s\nserver:\n%s", err, host.output(), server.output())
	}
	session := strings.TrimSpace(strings.TrimPrefix(line, "session "))
	guest := n.peerB.start(ctx, t, "peerB", append([]string{bin, "call", "--join", session, "--report", repB}, common...)...)

	errA, errB := host.wait(), guest.wait()
	if errA != nil || errB != nil {
		t.Errorf("parley call exited: peerA %v, peerB %v", errA, errB)
	}
	for _, p := range []struct {
		name, report string
		proc         *proc
	}{{"peerA", repA, host}, {"peerB", repB, guest}} {
		rep, err := readReport(p.report)
		if err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.proc.output())
			continue
		}
		t.Logf("%s: connected in %.0f ms over %s-%s; received %d video frames, %d audio packets",
			p.name, rep.ConnectedMS, rep.LocalCandidateType, rep.RemoteCandidateType,
			rep.VideoFramesReceived, rep.AudioPacketsReceived)
		if rep.VideoFramesReceived < 60 || rep.AudioPacketsReceived < 100 {
			t.Errorf("%s received %d video frames and %d audio packets, want at least 60 and 100: %+v\n%s",
				p.name, rep.VideoFramesReceived, rep.AudioPacketsReceived, rep, p.proc.output())
		}
		if rep.LocalCandidateType != "relay" && rep.RemoteCandidateType != "relay" {
			t.Errorf("%s: selected candidate pair %q-%q, want a relay candidate on at least one side "+
				"(local_candidate_type, remote_candidate_type)", p.name, rep.LocalCandidateType, rep.RemoteCandidateType)
		}
	}
	if t.Failed() {
		t.Logf("server output:\n%s", server.output())
	}
}

// requireNetns fails the test, or skips it with PARLEY_SKIP_NETNS=1, unless it can make
// network namespaces: root, ip and iptables.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Getenv("PARLEY_SKIP_NETNS") == "1" {
		t.Skip("PARLEY_SKIP_NETNS=1")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the NAT traversal test needs root, ip (Debian: iproute2) and iptables to build network "+
			"namespaces; missing: %s. Set PARLEY_SKIP_NETNS=1 to skip it", strings.Join(missing, ", "))
	}
}

// mediaFiles returns the clips the peers send: from PARLEY_MEDIA, or the shared media
// directory.
func mediaFiles(t *testing.T) (video, audio string) {
	t.Helper()
	dir := os.Getenv("PARLEY_MEDIA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "media")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	video, audio = filepath.Join(dir, "chrome-vp8.ivf"), filepath.Join(dir, "chrome-opus.ogg")
	for _, f := range []string{video, audio} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("media: %v (PARLEY_MEDIA names the directory)", err)
		}
	}
	return video, audio
}

// buildParley builds the parley binary from this module.
func buildParley(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "parley")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/parley")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/parley: %v\n%s", err, out)
	}
	return bin
}

// network is the test's namespaces.
type network struct {
	srv, natA, natB, peerA, peerB netns
}

// netns is a network namespace with a name unique to this test process.
type netns struct {
	name string
	t    *testing.T
}

// newNetwork makes the namespaces and links; they are removed when the test ends, however
// it ends, and those a killed test process left behind at the next run.
func newNetwork(t *testing.T) *network {
	t.Helper()
	removeStale(t)
	add := func(role string) netns {
		ns := netns{name: fmt.Sprintf("parley-%d-%s", os.Getpid(), role), t: t}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil &&
				!bytes.Contains(out, []byte("No such file")) {
				t.Errorf("remove namespace %s: %v: %s", ns.name, err, out)
			}
		})
		run(t, "ip", "netns", "add", ns.name)
		ns.ip("link", "set", "lo", "up")
		return ns
	}
	n := &network{srv: add("srv"), natA: add("natA"), natB: add("natB"), peerA: add("peerA"), peerB: add("peerB")}

	// link makes a veth pair between a's interface ifA and b's ifB.
	link := func(a netns, ifA, addrA string, b netns, ifB, addrB string) {
		a.ip("link", "add", "name", ifA, "type", "veth", "peer", "name", ifB, "netns", b.name)
		a.ip("addr", "add", addrA+prefixLen, "dev", ifA)
		b.ip("addr", "add", addrB+prefixLen, "dev", ifB)
		a.ip("link", "set", ifA, "up")
		b.ip("link", "set", ifB, "up")
	}
	link(n.srv, "toA", srvA, n.natA, "wan", natAOut)
	link(n.srv, "toB", srvB, n.natB, "wan", natBOut)
	link(n.natA, "lan", natAIn, n.peerA, "eth0", peerAAddr)
	link(n.natB, "lan", natBIn, n.peerB, "eth0", peerBAddr)

	n.srv.sysctl("net/ipv4/ip_forward", "0")
	for _, nat := range []struct {
		ns  netns
		srv string
	}{{n.natA, srvA}, {n.natB, srvB}} {
		nat.ns.sysctl("net/ipv4/ip_forward", "1")
		nat.ns.ip("route", "add", "default", "via", nat.srv)
		nat.ns.exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
	}
	n.peerA.ip("route", "add", "default", "via", natAIn)
	n.peerB.ip("route", "add", "default", "via", natBIn)
	return n
}

var nsName = regexp.MustCompile(`^parley-(\d+)-(srv|natA|natB|peerA|peerB)$`)

// removeStale removes the namespaces of test processes that no longer run: a test killed
// by go test's -timeout or a signal does not run its cleanup.
func removeStale(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := nsName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its test is running
		}
		if out, err := exec.Command("ip", "netns", "del", f[0]).CombinedOutput(); err != nil {
			t.Logf("remove stale namespace %s: %v: %s", f[0], err, out)
		} else {
			t.Logf("removed stale namespace %s", f[0])
		}
	}
}

func (ns netns) ip(args ...string) { run(ns.t, "ip", append([]string{"-n", ns.name}, args...)...) }

func (ns netns) exec(args ...string) {
	run(ns.t, "ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

func (ns netns) sysctl(key, value string) {
	ns.exec("sh", "-c", fmt.Sprintf("echo %s > /proc/sys/%s", value, key))
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

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
		ns   netns
		addr string
	}{{n.srv, srvA}, {n.natA, natAOut}, {n.natB, natBOut}, {n.peerA, peerAAddr}, {n.peerB, peerBAddr}} {
		echo := e.ns.startEnv(ctx, t, "echo in "+e.ns.name,
			[]string{helperEnv + "=echo", helperAddrEnv + "=" + net.JoinHostPort(e.addr, echoPort)}, self)
		if _, err := echo.waitLine("ready", 10*time.Second); err != nil {
			t.Fatalf("UDP echo in %s: %v\n%s", e.ns.name, err, echo.output())
		}
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		from  netns
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
			cmd := exec.Command("ip", "netns", "exec", p.from.name, self)
			cmd.Env = append(childEnv(), helperEnv+"=probe", helperAddrEnv+"="+net.JoinHostPort(p.to, echoPort))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case err == nil && !p.reach:
				t.Errorf("%s reaches %s; the test network must keep the peers apart", p.from.name, p.to)
			case errors.As(err, &exit) && exit.ExitCode() == 1 && p.reach:
				t.Errorf("%s does not reach %s", p.from.name, p.to)
			case err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1):
				t.Errorf("probe from %s to %s: %v\n%s", p.from.name, p.to, err, out)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// proc is a process running in a namespace, its output kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	// lines has the stdout lines, closed at EOF.
	lines chan string
	done  chan struct{}
	err   error
}

func (ns netns) start(ctx context.Context, t *testing.T, name string, args ...string) *proc {
	return ns.startEnv(ctx, t, name, nil, args...)
}

// startEnv starts args in ns with env added to the test's environment; the process is
// ended when the test ends, if it has not by then.
func (ns netns) startEnv(ctx context.Context, t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name}, args...)...)
	cmd.Env = append(childEnv(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, lines: make(chan string, 64), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out.Write(append(sc.Bytes(), '\n'))
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for more lines
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLine waits for a stdout line that starts with prefix.
func (p *proc) waitLine(prefix string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s exited (%v) before printing %q", p.name, p.err, prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-timer.C:
			return "", fmt.Errorf("%s printed no %q in %s", p.name, prefix, timeout)
		}
	}
}

func (p *proc) wait() error {
	<-p.done
	return p.err
}

func (p *proc) output() string { return p.name + ":\n" + p.out.String() }

// childEnv is the test's environment without PARLEY_ settings, which `parley serve` would
// take for flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}

func readReport(path string) (peer.Report, error) {
	var rep peer.Report
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, fmt.Errorf("no report: %w", err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("report %s: %w", path, err)
	}
	return rep, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
