//go:build windows

package agent

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

func selfExe() (string, error) { return os.Executable() }

// sysProcAttr: a process group of its own (Ctrl-C goes to the app only) and
// no console window.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_NO_WINDOW}
}

// harden has nothing to do on Windows: the app's job object kills the agent
// when the app dies, and EOF on stdin ends it otherwise.
func harden() error { return nil }

// procGroup is a job object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: when
// the app exits (however it dies), Windows closes the handle and kills every
// agent in the job.
type procGroup struct {
	job windows.Handle
}

func newProcGroup() (*procGroup, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("CreateJobObject: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		_ = windows.CloseHandle(job)
		return nil, fmt.Errorf("SetInformationJobObject(KILL_ON_JOB_CLOSE): %w", err)
	}
	return &procGroup{job: job}, nil
}

// afterStart puts a started agent into the job.
func (g *procGroup) afterStart(cmd *exec.Cmd) error {
	if g == nil || g.job == 0 {
		return nil
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(cmd.Process.Pid))
	if err != nil {
		return fmt.Errorf("OpenProcess: %w", err)
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(g.job, h); err != nil {
		return fmt.Errorf("AssignProcessToJobObject: %w", err)
	}
	return nil
}

func (g *procGroup) close() error {
	if g == nil || g.job == 0 {
		return nil
	}
	return windows.CloseHandle(g.job)
}

func killTree(p *os.Process) error { return p.Kill() }
