package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Dial connects to addr from inside the namespace: to a service that listens only on the
// namespace's own loopback (a browser's remote-control port), which no other namespace
// can reach. A socket belongs to the namespace of the thread that creates it and keeps it
// after (setns(2), network_namespaces(7)), so the connection is made on a thread moved
// into the namespace for the dial and back after, and is used from anywhere.
func (ns NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if ns.Name == "" {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	// An IP address, not a name: the dial then runs on the calling goroutine, and no
	// resolver goroutine makes a socket on another thread, in another namespace.
	if host, _, err := net.SplitHostPort(addr); err != nil || net.ParseIP(host) == nil {
		return nil, fmt.Errorf("dial %s in namespace %s: want an IP address and port", addr, ns.Name)
	}
	target, err := os.Open(filepath.Join("/var/run/netns", ns.Name))
	if err != nil {
		return nil, fmt.Errorf("dial %s in namespace %s: %w", addr, ns.Name, err)
	}
	defer target.Close()

	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	// A goroutine of its own, whose locked thread exits with it if it cannot go back to
	// the host's namespace (runtime.LockOSThread): no other goroutine ever runs there.
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: fmt.Errorf("dial %s in namespace %s: %w", addr, ns.Name, err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("dial %s: enter namespace %s: %w", addr, ns.Name, err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			err = fmt.Errorf("dial %s in namespace %s: %w", addr, ns.Name, err)
		}
		if errBack := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); errBack != nil {
			// The thread stays locked, and ends with this goroutine.
			if conn != nil {
				conn.Close()
			}
			done <- result{err: fmt.Errorf("dial %s: leave namespace %s: %w", addr, ns.Name, errBack)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}
