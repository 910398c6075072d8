//go:build linux && (amd64 || arm64)

package agent

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompDenied are system calls a running agent never makes, answered
// with EPERM (the process is not killed, so a compromised agent learns
// nothing it could not guess, and a bug shows up as an error, not a crash):
// running programs (Porthole never runs commands: sshconn refuses
// ProxyCommand), reading or writing other processes, and kernel interfaces
// that widen the attack surface (namespaces, mounts, modules, keyrings,
// BPF, perf, userfaultfd, kexec).
var seccompDenied = []uintptr{
	unix.SYS_EXECVE, unix.SYS_EXECVEAT,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_UNSHARE, unix.SYS_SETNS, unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_USERFAULTFD, unix.SYS_ADD_KEY, unix.SYS_KEYCTL, unix.SYS_REQUEST_KEY,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT,
}

// seccompArch is the AUDIT_ARCH of this build: a system call made with
// another calling convention (i386's int 0x80 on x86-64) has other
// numbers, so the filter refuses it outright.
var seccompArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]

// x32SyscallBit marks x32 system calls on x86-64 (same AUDIT_ARCH, other
// numbers); Go never makes them.
const x32SyscallBit = 0x40000000

// Offsets in struct seccomp_data.
const (
	seccompDataNr   = 0
	seccompDataArch = 4
)

// seccompFilter builds the classic BPF program: a foreign architecture
// (and, on x86-64, an x32 call) or a denied call returns EPERM; anything
// else is allowed.
func seccompFilter(arch uint32, denied []uintptr, x32 bool) []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	deny := uint32(unix.SECCOMP_RET_ERRNO | (uint32(unix.EPERM) & unix.SECCOMP_RET_DATA))
	prog := []unix.SockFilter{
		stmt(ld, seccompDataArch),
		jump(jeq, arch, 1, 0),
		stmt(ret, deny),
		stmt(ld, seccompDataNr),
	}
	// The checks below jump to the last instruction (deny); the one before
	// it allows.
	n := len(prog) + len(denied) + 2
	if x32 {
		n++
	}
	toDeny := func() uint8 { return uint8(n - 1 - len(prog) - 1) }
	if x32 {
		prog = append(prog, jump(jge, x32SyscallBit, toDeny(), 0))
	}
	for _, nr := range denied {
		prog = append(prog, jump(jeq, uint32(nr), toDeny(), 0))
	}
	return append(prog, stmt(ret, unix.SECCOMP_RET_ALLOW), stmt(ret, deny))
}

// errSeccompUnavailable: the kernel (or this architecture) has no seccomp
// filters; the agent runs without one.
var errSeccompUnavailable = errors.New("seccomp filters are not available")

// installSeccomp sets no_new_privs and installs the filter on every thread
// of the process (SECCOMP_FILTER_FLAG_TSYNC, which also sets no_new_privs
// on the other threads); threads started later inherit both.
func installSeccomp() error {
	if seccompArch == 0 {
		return fmt.Errorf("%w on %s", errSeccompUnavailable, runtime.GOARCH)
	}
	prog := seccompFilter(seccompArch, seccompDenied, runtime.GOARCH == "amd64")
	if len(prog) > 255 {
		return fmt.Errorf("the seccomp filter has %d instructions; jumps reach 255", len(prog))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case errno == unix.ENOSYS || errno == unix.EINVAL:
		return fmt.Errorf("%w: seccomp(SECCOMP_SET_MODE_FILTER): %w", errSeccompUnavailable, errno)
	case errno != 0:
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	case r != 0:
		return fmt.Errorf("seccomp: thread %d could not take the filter", r)
	}
	return nil
}
