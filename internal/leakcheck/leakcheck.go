// Package leakcheck counts the test process's goroutines and open file descriptors, so that
// a test can check that whatever it started has ended: it takes a baseline, does its work,
// then waits for both counts to come back down. Linux only: it reads /proc/self/fd.
package leakcheck

import (
	"os"
	"runtime"
	"time"
)

// Settle waits up to timeout, looking every poll, for the goroutine and file descriptor
// counts to come down to wantG and wantFD, and returns them as they last were. With wantG
// < 0 it waits instead until neither count changes over one poll: that takes a baseline.
// It runs the garbage collector before each look, so that what is unreachable but not yet
// finalized (an *os.File) does not count.
func Settle(wantG, wantFD int, timeout, poll time.Duration) (goroutines, fds int) {
	var g, fd int
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), len(FDs())
		if wantG >= 0 && g <= wantG && fd <= wantFD {
			return g, fd
		}
		time.Sleep(poll)
		if wantG < 0 && g == runtime.NumGoroutine() && fd == len(FDs()) {
			return g, fd
		}
	}
	return g, fd
}

// FDs returns what each open file descriptor of this process refers to, as
// /proc/self/fd's links read ("socket:[12345]", "/dev/null", "anon_inode:[eventpoll]"), or
// nil without /proc.
func FDs() []string {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, target)
	}
	return out
}
