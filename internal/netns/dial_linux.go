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
// can reach.
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
	var conn net.Conn
	err := ns.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if conn != nil { // made, but the thread could not leave the namespace
			conn.Close()
		}
		return nil, fmt.Errorf("dial %s in namespace %s: %w", addr, ns.Name, err)
	}
	return conn, nil
}

// Do runs f on a thread in the namespace, and returns its error. A socket belongs to the
// namespace of the thread that creates it and keeps it after (setns(2),
// network_namespaces(7)): the sockets f makes on its own goroutine, for an IP address
// rather than a name, are the namespace's, and are used from anywhere after. If the thread
// cannot go back to the host's namespace, Do returns that error, even if f succeeded: the
// caller closes what f made.
func (ns NS) Do(f func() error) error {
	if ns.Name == "" {
		return f()
	}
	target, err := os.Open(filepath.Join("/var/run/netns", ns.Name))
	if err != nil {
		return err
	}
	defer target.Close()

	done := make(chan error, 1)
	// A goroutine of its own, whose locked thread exits with it if it cannot go back to
	// the host's namespace (runtime.LockOSThread): no other goroutine ever runs there.
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", ns.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, and ends with this goroutine.
			done <- fmt.Errorf("leave namespace %s: %w (and f: %v)", ns.Name, err, ferr)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
