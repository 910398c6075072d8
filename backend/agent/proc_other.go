//go:build !unix && !windows

package agent

import (
	"os"
	"os/exec"
	"syscall"
)

func selfExe() (string, error) { return os.Executable() }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func harden() error { return nil }

type procGroup struct{}

func newProcGroup() (*procGroup, error) { return &procGroup{}, nil }

func (g *procGroup) afterStart(*exec.Cmd) error { return nil }

func (g *procGroup) close() error { return nil }

func killTree(p *os.Process) error { return p.Kill() }
