package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// The child process of TestLockExcludesOtherProcess: it tries the lock named
// in this variable and exits with childLocked if another process holds it.
const childLockEnv = "ATOMICFILE_TEST_TRYLOCK"

const childLocked = 3

func TestMain(m *testing.M) {
	if path := os.Getenv(childLockEnv); path != "" {
		l, err := TryLock(path)
		switch {
		case errors.Is(err, ErrLocked):
			os.Exit(childLocked)
		case err != nil:
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := l.Unlock(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func mustTryLock(t *testing.T, path string) *FileLock {
	t.Helper()
	l, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	t.Cleanup(func() { _ = l.Unlock() })
	return l
}

// TestLock: a held lock excludes a second locker in the same process (a
// second open file), whichever way it waits.
func TestLock(t *testing.T) {
	if !lockingSupported {
		t.Skip("no file locks on " + runtime.GOOS)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		lock    func(path string) (*FileLock, error)
		release time.Duration // the holder unlocks after this; 0: never
		is      error         // nil: the lock is taken
	}{
		{name: "TryLock", lock: TryLock, is: ErrLocked},
		{
			name: "Lock times out",
			lock: func(p string) (*FileLock, error) { return Lock(context.Background(), p, 100*time.Millisecond) },
			is:   ErrLocked,
		},
		{
			name: "Lock ends with ctx",
			lock: func(p string) (*FileLock, error) { return Lock(cancelled, p, 0) },
			is:   context.Canceled,
		},
		{
			name: "Lock ends at ctx's deadline",
			lock: func(p string) (*FileLock, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				return Lock(ctx, p, time.Minute)
			},
			is: context.DeadlineExceeded,
		},
		{
			name:    "Lock waits for Unlock",
			lock:    func(p string) (*FileLock, error) { return Lock(context.Background(), p, time.Minute) },
			release: 100 * time.Millisecond,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json.lock")
			holder := mustTryLock(t, path)
			if tc.release > 0 {
				timer := time.AfterFunc(tc.release, func() { _ = holder.Unlock() })
				t.Cleanup(func() { timer.Stop() })
			}
			start := time.Now()
			l, err := tc.lock(path)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
			if tc.is != nil {
				if !errors.Is(err, tc.is) || l != nil {
					t.Fatalf("got %v, %v; want %v", l, err, tc.is)
				}
				if err := holder.Unlock(); err != nil {
					t.Fatal(err)
				}
				mustTryLock(t, path) // free once the holder lets go
				return
			}
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
				t.Fatalf("TryLock while the waiter holds it: %v", err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLockFile: the lock file and its directories are created private, the
// file stays after Unlock, and a second Unlock is harmless.
func TestLockFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "porthole")
	path := filepath.Join(dir, "profiles.json.lock")
	l := mustTryLock(t, path)
	if l.Path() != path {
		t.Errorf("Path %q", l.Path())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("lock file gone: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v", fi.Mode().Perm())
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v (%v)", di.Mode().Perm(), err)
	}
}

// TestLockExcludesOtherProcess: another process cannot take a held lock,
// and can once it is released.
func TestLockExcludesOtherProcess(t *testing.T) {
	if !lockingSupported {
		t.Skip("no file locks on " + runtime.GOOS)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "state.json.lock")
	child := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childLockEnv+"="+path)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("child: %v %s", err, out)
		}
		return cmd.ProcessState.ExitCode()
	}
	l := mustTryLock(t, path)
	if code := child(); code != childLocked {
		t.Fatalf("child exited %d while the lock was held, want %d", code, childLocked)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if code := child(); code != 0 {
		t.Fatalf("child exited %d after Unlock, want 0", code)
	}
}
