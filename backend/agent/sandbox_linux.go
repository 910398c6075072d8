//go:build linux

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/porthole-app/porthole/backend/forwarder"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// landlockABI reports the kernel's Landlock ABI version (a test agent
// replaces it to play an old kernel).
var landlockABI = llsys.LandlockGetABIVersion

// lockdown runs first in `porthole agent`, before it reads a message:
// no_new_privs on every thread (psx runs the prctl on each OS thread, with
// or without cgo; syscall.AllThreadsSyscall alone fails with ENOTSUP in
// cgo builds), then the seccomp filter on every thread.
func lockdown(log *slog.Logger) error {
	if _, _, errno := psx.Syscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS) on every thread: %w", errno)
	}
	if err := installSeccomp(); err != nil {
		if !errors.Is(err, errSeccompUnavailable) {
			return err
		}
		log.Warn("seccomp unavailable: the agent can run programs and trace processes", "err", err)
	}
	return nil
}

// applySandbox confines the agent to the files spec's login needs
// (Landlock; see sandboxPolicyFor), and keeps it from signalling processes
// outside its sandbox. It runs once, on init, before the login exists. On
// a kernel without Landlock it logs why and returns nil.
func applySandbox(spec LoginSpec, log *slog.Logger) error {
	home, _ := os.UserHomeDir()
	p := sandboxPolicyFor(spec, home, cgoBuild)
	for _, f := range p.write {
		if err := createIfMissing(f); err != nil {
			log.Warn("agent: cannot create the known_hosts file; new host keys will not be saved", "file", f, "err", err)
		}
	}
	for _, d := range p.socketDirs {
		if forwarder.IsSocketDir(d) {
			_ = os.Mkdir(d, 0o700) // Landlock can only grant a directory that exists
		}
	}
	abi, err := landlockABI()
	if err != nil || abi < 1 {
		if err == nil {
			err = fmt.Errorf("ABI version %d", abi)
		}
		log.Warn("landlock unavailable: the agent can read and write every file the user can", "err", err)
		return nil
	}
	cfg := landlock.Config{HandledAccessFS: landlock.V11.HandledAccessFS, Scoped: landlock.V11.Scoped}.BestEffort()
	if err := cfg.Restrict(landlockRules(p)...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	log.Debug("agent: sandboxed", "landlock_abi", abi, "read", len(p.read), "write", len(p.write))
	return nil
}

// landlockRules grants read on p.read (directories: their contents too),
// read and append on p.write, and connecting to p.sockets (Landlock ABI 9;
// earlier kernels do not restrict Unix sockets). Missing paths are skipped.
func landlockRules(p sandboxPolicy) []landlock.Rule {
	var rules []landlock.Rule
	for _, f := range p.read {
		st, err := os.Stat(f)
		switch {
		case err != nil:
			continue
		case st.IsDir():
			rules = append(rules, landlock.PathAccess(llsys.AccessFSReadFile|llsys.AccessFSReadDir, f))
		default:
			rules = append(rules, landlock.PathAccess(llsys.AccessFSReadFile, f))
		}
	}
	for _, f := range p.write {
		if st, err := os.Stat(f); err == nil && !st.IsDir() {
			rules = append(rules, landlock.PathAccess(llsys.AccessFSReadFile|llsys.AccessFSWriteFile, f))
		}
	}
	for _, s := range p.sockets {
		if st, err := os.Stat(filepath.Dir(s)); err == nil && st.IsDir() {
			rules = append(rules, landlock.PathAccess(llsys.AccessFSResolveUnix, filepath.Dir(s)))
		}
	}
	// Local socket forwards: create, check (connect) and remove sockets.
	for _, d := range p.socketDirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			rules = append(rules, landlock.PathAccess(llsys.AccessFSMakeSock|llsys.AccessFSRemoveFile|llsys.AccessFSResolveUnix, d))
		}
	}
	return rules
}

// createIfMissing creates an empty file (0600, its directory 0700), as
// sshconn would when saving the first host key: Landlock can only grant
// writing to a file that exists.
func createIfMissing(file string) error {
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
