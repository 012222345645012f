package netns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a process running in a namespace, its output kept.
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	// lines has the stdout lines, closed at EOF.
	lines chan string
	done  chan struct{}
	err   error
}

// Start starts args in the namespace, as StartEnv does with no env.
func (ns NS) Start(ctx context.Context, t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return ns.StartEnv(ctx, t, name, nil, args...)
}

// StartEnv starts args in the namespace, with env added to the test's environment less its
// PARLEY_ settings (see Environ); name names the process in messages. The process gets
// SIGTERM when ctx ends, and is stopped when t ends if it has not ended by then.
func (ns NS) StartEnv(ctx context.Context, t testing.TB, name string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, args...)...)
	cmd.Env = append(Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	p := &Proc{name: name, cmd: cmd, out: &syncBuffer{}, lines: make(chan string, 64), done: make(chan struct{})}
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
	t.Cleanup(p.Stop)
	return p
}

// Stop ends the process, with SIGTERM first and SIGKILL 5 s later, and waits for it.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// WaitLine waits up to timeout for a stdout line that starts with prefix, and returns it.
func (p *Proc) WaitLine(prefix string, timeout time.Duration) (string, error) {
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

// Wait waits for the process to exit and returns its error, as exec.Cmd.Wait does.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Output is the process's name and what it has printed so far, stdout and stderr.
func (p *Proc) Output() string { return p.name + ":\n" + p.out.String() }

// Environ is the test's environment without PARLEY_ settings, which parley would take for
// flags.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
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
