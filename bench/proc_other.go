//go:build !linux

package bench

import "syscall"

// childAttr is nil where there is no parent-death signal; Child.Close still stops the server.
func childAttr() *syscall.SysProcAttr { return nil }
