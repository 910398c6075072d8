//go:build linux

package agent

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// selfExe is how the Supervisor runs its own binary by default:
// /proc/self/exe is the running program even after an update replaced the
// file on disk, so the agent always speaks the app's protocol.
func selfExe() (string, error) { return "/proc/self/exe", nil }

// sysProcAttr: the agent gets its own process group (a Ctrl-C in the
// terminal of `porthole serve` reaches the app, which then closes the
// agents' stdin) and SIGKILL when the app dies (set between fork and exec,
// where Go also checks that the parent is still there).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// harden runs first in the agent: no new privileges (setuid binaries do not
// gain any), SIGKILL when the parent dies (again, in case the exec did not
// ask for it), and an exit if the parent is already gone (it may have died
// before the death signal was armed).
func harden() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	return checkParent()
}

// checkParent fails when the app that started the agent is gone already.
func checkParent() error {
	want := os.Getenv(EnvParentPID)
	if want == "" {
		return nil // started by hand (e.g. by the benchmark)
	}
	pid, err := strconv.Atoi(want)
	if err != nil {
		return fmt.Errorf("%s=%q is not a PID", EnvParentPID, want)
	}
	if got := os.Getppid(); got != pid {
		return fmt.Errorf("the app (PID %d) is gone (the parent is now PID %d)", pid, got)
	}
	return nil
}

// afterStart is called with each started agent (nothing to do on Linux).
func (g *procGroup) afterStart(*exec.Cmd) error { return nil }

// procGroup holds what the Supervisor needs to kill its agents with it.
type procGroup struct{}

func newProcGroup() (*procGroup, error) { return &procGroup{}, nil }

func (g *procGroup) close() error { return nil }

// killTree kills the agent's process group.
func killTree(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		return p.Kill()
	}
	return nil
}
