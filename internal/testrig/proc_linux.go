//go:build linux

package testrig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killProcessTree kills pid and all its descendants (sshd forks a child per
// connection, which calls setsid, so a process group kill would miss it).
// It freezes the tree top-down with SIGSTOP so nothing can fork behind its
// back, then sends SIGKILL to every frozen process.
func killProcessTree(pid int) {
	frozen := map[int]bool{pid: true}
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for {
		added := false
		for child, parent := range parentsByPid() {
			if frozen[parent] && !frozen[child] {
				_ = syscall.Kill(child, syscall.SIGSTOP)
				frozen[child] = true
				added = true
			}
		}
		if !added {
			break
		}
	}
	for p := range frozen {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	// Wait (bounded) until every killed process is gone or a zombie.
	deadline := time.Now().Add(3 * time.Second)
	for p := range frozen {
		for processAlive(p) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// parentsByPid maps every visible pid to its parent pid, from /proc.
func parentsByPid() map[int]int {
	m := map[int]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return m
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ..."; comm may contain spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			m[pid] = ppid
		}
	}
	return m
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// dieWithParent makes the kernel kill cmd's process when the test process
// dies, even by a panic or SIGKILL that skips every cleanup, so no sshd
// outlives the test that started it.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
