package netns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	out  *SyncBuffer
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
	p := &Proc{name: name, cmd: cmd, out: &SyncBuffer{}, lines: make(chan string, 64), done: make(chan struct{})}
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

// SyncBuffer is a bytes.Buffer safe for concurrent writers: a process's output, a
// server's log written from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// MediaFiles returns the absolute paths of the sample clips a peer in a namespace sends
// (VP8 in IVF, Opus in Ogg): from $PARLEY_MEDIA, or ../shared/media beside the project
// root (../../shared/media from a package directory).
func MediaFiles(t testing.TB) (video, audio string) {
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
