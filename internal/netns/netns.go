// Package netns creates and removes the network namespaces, veth pairs and iptables rules
// that Parley's network tests run in. It is used only by tests (losstest, nattest, simulcasttest): it runs
// ip (iproute2) and iptables, needs root, and fails the calling test when a command fails.
package netns

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Require fails t, or skips it with PARLEY_SKIP_NETNS=1, unless it can make network
// namespaces: root, ip and iptables. test names the test and purpose says what it needs
// them for ("to build network namespaces"), for the failure message.
func Require(t testing.TB, test, purpose string) {
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
		t.Fatalf("%s needs root, ip (Debian: iproute2) and iptables %s; missing: %s. Set PARLEY_SKIP_NETNS=1 to skip it",
			test, purpose, strings.Join(missing, ", "))
	}
}

// BuildParley builds the parley binary of this module into a temporary directory of t and
// returns its path: the tests run it in their namespaces.
func BuildParley(t testing.TB) string {
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

// RemoveStale removes the namespaces of test processes that no longer run: a test killed
// by go test's -timeout or a signal does not run its cleanup. It removes those whose name
// matches name, whose first submatch is the PID of the test process that made them.
func RemoveStale(t testing.TB, name *regexp.Regexp) {
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
		m := name.FindStringSubmatch(f[0])
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

// NS is a network namespace; the zero Name is the host's, the test process's own.
type NS struct {
	Name string
	t    testing.TB
}

// Host is the host's namespace, to link namespaces to.
func Host(t testing.TB) NS { return NS{t: t} }

// Add makes the namespace name, with its loopback interface up. It is removed when t ends,
// however it ends, and with it the veth pairs it has an end of.
func Add(t testing.TB, name string) NS {
	t.Helper()
	ns := NS{Name: name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil &&
			!bytes.Contains(out, []byte("No such file")) {
			t.Errorf("remove namespace %s: %v: %s", ns.Name, err, out)
		}
	})
	Run(t, "ip", "netns", "add", ns.Name)
	ns.IP("link", "set", "lo", "up")
	return ns
}

// Link makes a veth pair between a's interface ifA and b's ifB, gives them the addresses
// (with prefix length: "10.99.1.1/24") and brings them up.
func Link(a NS, ifA, addrA string, b NS, ifB, addrB string) {
	a.t.Helper()
	a.IP("link", "add", "name", ifA, "type", "veth", "peer", "name", ifB, "netns", b.Name)
	a.IP("addr", "add", addrA, "dev", ifA)
	b.IP("addr", "add", addrB, "dev", ifB)
	a.IP("link", "set", ifA, "up")
	b.IP("link", "set", ifB, "up")
}

// IP runs `ip args` in the namespace.
func (ns NS) IP(args ...string) {
	ns.t.Helper()
	if ns.Name == "" {
		Run(ns.t, "ip", args...)
		return
	}
	Run(ns.t, "ip", append([]string{"-n", ns.Name}, args...)...)
}

// Exec runs the command args in the namespace: iptables rules, for one.
func (ns NS) Exec(args ...string) {
	ns.t.Helper()
	if ns.Name == "" {
		Run(ns.t, args[0], args[1:]...)
		return
	}
	Run(ns.t, "ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// Sysctl sets the namespace's /proc/sys/key ("net/ipv4/ip_forward") to value.
func (ns NS) Sysctl(key, value string) {
	ns.t.Helper()
	ns.Exec("sh", "-c", fmt.Sprintf("echo %s > /proc/sys/%s", value, key))
}

// Run runs a command and fails t, with its output, if it fails.
func Run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
