//go:build unix

package testrig

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel runs cmd in its own process group and makes context
// cancellation kill the whole group, so `sh -c` children die too.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
