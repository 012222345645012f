package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Child is a `parley serve` running as a child process on 127.0.0.1, so that the server is
// measured apart from the load generator. Close it: it is killed, never left behind.
type Child struct {
	URL  string // base URL, from the server's first stdout line
	PID  int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	err  error         // how it exited; read after done
}

// listenPrefix starts the first line `parley serve` writes on stdout.
const listenPrefix = "parley: listening on "

// Spawn starts `parley serve --addr 127.0.0.1:0 --log-level warn`, without the abuse
// limits (benchServeFlags) and with any further flags in extra, from the binary at parley
// and waits, up to 15 s, for the line saying where it listens. The server's stderr goes to
// stderr (nil discards it).
func Spawn(ctx context.Context, parley string, stderr io.Writer, extra ...string) (*Child, error) {
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, benchServeFlags...)
	cmd := exec.Command(parley, append(args, extra...)...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("spawn server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn server %s: %w", parley, err)
	}
	c := &Child{PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}

	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		// Keep draining: a server blocked on a full stdout pipe would skew the benchmark.
		_, _ = io.Copy(io.Discard, r)
		c.err = cmd.Wait()
		close(c.done)
	}()

	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	var line string
	select {
	case line = <-lines:
	case <-timeout.C:
		c.Close()
		return nil, fmt.Errorf("spawned server (pid %d) did not say where it listens within 15 s", c.PID)
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), listenPrefix)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("spawned server (pid %d): first line %q, want %q…", c.PID, line, listenPrefix)
	}
	c.URL = addr
	if err := checkLoopback(c.URL); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close stops the server: SIGTERM, then SIGKILL if it has not exited within 5 s. It
// returns once the process has been reaped.
func (c *Child) Close() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// Exited reports whether the server has exited, and how.
func (c *Child) Exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// RSS returns the server's resident set size in bytes.
func (c *Child) RSS() (int64, error) { return rss(c.PID) }

// CPU returns the CPU time the server has used so far, user and system.
func (c *Child) CPU() (time.Duration, error) { return cpuTime(c.PID) }

// CPUSplit returns the CPU time the server has used so far in user mode and in the kernel.
func (c *Child) CPUSplit() (user, sys time.Duration, err error) { return cpuTimes(c.PID) }

// cpuTime reads a process's utime and stime from /proc/PID/stat (Linux; proc(5)).
func cpuTime(pid int) (time.Duration, error) {
	u, s, err := cpuTimes(pid)
	return u + s, err
}

// cpuTimes reads a process's utime and stime from /proc/PID/stat (Linux; proc(5)).
func cpuTimes(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces; state, field 3,
	// follows the last ')'. utime and stime are fields 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("CPU time of pid %d: short /proc stat line", pid)
	}
	var ticks [2]int64
	for i, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
		}
		ticks[i] = n
	}
	// Linux reports in USER_HZ, 100 on every architecture Go supports.
	return time.Duration(ticks[0]) * (time.Second / 100), time.Duration(ticks[1]) * (time.Second / 100), nil
}

// rss reads VmRSS from /proc/PID/status (Linux).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("resident memory of pid %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, errors.New("resident memory of pid " + strconv.Itoa(pid) + ": no VmRSS in /proc status")
}
