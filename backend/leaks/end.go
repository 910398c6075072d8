package leaks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/porthole-app/porthole/backend/apperr"
)

// Ended is what End did.
type Ended struct {
	PID int32 `json:"pid"`
	// Signal is the last signal it took: "SIGTERM" or "SIGKILL".
	Signal string `json:"signal"`
	// Children are autossh's ssh children that were ended with it.
	Children []int32 `json:"children,omitempty"`
}

// killWait is how long End waits for the process to go after SIGKILL.
const killWait = 5 * time.Second

// End ends one of this user's ssh or autossh processes: SIGTERM, then
// SIGKILL if it is still there after a short wait. Another user's process
// is refused (ErrNotYours), whatever this process may do; so is anything
// that is not ssh or autossh (ErrNotTunnel). An autossh's ssh children are
// ended with it (autossh would start another one otherwise).
func (f *Finder) End(ctx context.Context, pid int) (Ended, error) {
	p, name, err := f.ownTunnelProcess(ctx, pid)
	if err != nil {
		return Ended{}, err
	}
	var children []*process.Process
	if name == "autossh" {
		if kids, err := p.ChildrenWithContext(ctx); err == nil {
			for _, k := range kids {
				if n, _ := k.NameWithContext(ctx); n == "ssh" {
					if uid, ok := realUID(ctx, k); ok && uid == f.uid {
						children = append(children, k)
					}
				}
			}
		}
	}
	res, err := f.signalAndWait(ctx, int32(pid))
	if err != nil {
		return res, err
	}
	for _, k := range children {
		if _, err := f.signalAndWait(ctx, k.Pid); err != nil && !errors.Is(err, ErrNoProcess) {
			return res, fmt.Errorf("autossh (PID %d) ended, but its ssh: %w", pid, err)
		}
		res.Children = append(res.Children, k.Pid)
	}
	f.log.Info("ended a tunnel process", "pid", pid, "program", name, "signal", res.Signal)
	return res, nil
}

// ownTunnelProcess checks that pid is this user's ssh or autossh.
func (f *Finder) ownTunnelProcess(ctx context.Context, pid int) (*process.Process, string, error) {
	if pid <= 1 || pid > 1<<22 {
		return nil, "", mark(fmt.Errorf("%d is not the PID of a tunnel process", pid), apperr.ErrBadInput)
	}
	p, err := process.NewProcessWithContext(ctx, int32(pid))
	if err != nil {
		return nil, "", mark(fmt.Errorf("PID %d: %w (it may have ended already)", pid, ErrNoProcess), apperr.ErrNotFound)
	}
	uid, ok := realUID(ctx, p)
	if !ok {
		return nil, "", mark(fmt.Errorf("PID %d: %w (it may have ended already)", pid, ErrNoProcess), apperr.ErrNotFound)
	}
	name, _ := p.NameWithContext(ctx)
	if uid != f.uid {
		owner := strconv.Itoa(uid)
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		return nil, "", mark(fmt.Errorf("%s (PID %d) is %s's, not yours: %w; Porthole ends only your own tunnels (ask %s or an administrator)", nameOr(name), pid, owner, ErrNotYours, owner), apperr.ErrConflict)
	}
	if name != "ssh" && name != "autossh" {
		return nil, "", mark(fmt.Errorf("PID %d is %s: %w; Porthole ends only tunnels", pid, nameOr(name), ErrNotTunnel), apperr.ErrBadInput)
	}
	return p, name, nil
}

// signalAndWait sends SIGTERM, waits termWait, then SIGKILL and waits again.
// The process is held by a pidfd (os.FindProcess on Linux), so a PID reused
// meanwhile is never signalled.
func (f *Finder) signalAndWait(ctx context.Context, pid int32) (Ended, error) {
	res := Ended{PID: pid, Signal: "SIGTERM"}
	op, err := os.FindProcess(int(pid))
	if err != nil {
		return res, mark(fmt.Errorf("PID %d: %w", pid, ErrNoProcess), apperr.ErrNotFound)
	}
	defer func() { _ = op.Release() }()
	if err := op.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return res, nil
		}
		return res, fmt.Errorf("send SIGTERM to PID %d: %w", pid, err)
	}
	if gone(ctx, op, pid, f.termWait) {
		return res, nil
	}
	res.Signal = "SIGKILL"
	if err := op.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return res, fmt.Errorf("send SIGKILL to PID %d: %w", pid, err)
	}
	if gone(ctx, op, pid, killWait) {
		return res, nil
	}
	return res, mark(fmt.Errorf("PID %d: %w within %s of SIGKILL", pid, ErrStillRunning, killWait), apperr.ErrUnavailable)
}

// gone waits up to d for the process to exit. A zombie (an orphan that
// init has not reaped yet) has exited and holds no socket any more, once
// every one of its threads has (a thread group's leader turns zombie
// before its other threads, which still hold the sockets, are gone).
func gone(ctx context.Context, op *os.Process, pid int32, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if err := op.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) {
			return true
		}
		if p, err := process.NewProcessWithContext(ctx, pid); err != nil || isZombie(ctx, p) && threadsExited(pid) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// threadsExited: every thread of pid is a zombie or gone (Linux's
// /proc/PID/task; true where there is no such directory).
func threadsExited(pid int32) bool {
	dir := "/proc/" + strconv.Itoa(int(pid)) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// The state follows the command's closing parenthesis.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
			if st := b[i+2]; st != 'Z' && st != 'X' {
				return false
			}
		}
	}
	return true
}
