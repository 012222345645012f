package bench

import "syscall"

// childAttr makes the kernel kill a spawned server if this process dies without closing it
// (SIGKILL, a crash), so a benchmark never leaves a server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
