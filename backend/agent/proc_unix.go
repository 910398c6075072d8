//go:build unix && !linux

package agent

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

func selfExe() (string, error) { return os.Executable() }

// sysProcAttr: the agent gets its own process group. There is no death
// signal outside Linux: the agent exits at EOF on stdin, and watchParent
// catches a parent that died without closing it.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func harden() error {
	want := os.Getenv(EnvParentPID)
	if want == "" {
		return nil
	}
	pid, err := strconv.Atoi(want)
	if err != nil {
		return fmt.Errorf("%s=%q is not a PID", EnvParentPID, want)
	}
	if got := os.Getppid(); got != pid {
		return fmt.Errorf("the app (PID %d) is gone (the parent is now PID %d)", pid, got)
	}
	go watchParent(pid) // lives as long as the agent process
	return nil
}

// watchParent exits the process when it is orphaned.
func watchParent(pid int) {
	for {
		time.Sleep(500 * time.Millisecond)
		if os.Getppid() != pid {
			os.Exit(ExitOK)
		}
	}
}

type procGroup struct{}

func newProcGroup() (*procGroup, error) { return &procGroup{}, nil }

func (g *procGroup) afterStart(*exec.Cmd) error { return nil }

func (g *procGroup) close() error { return nil }

func killTree(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		return p.Kill()
	}
	return nil
}
