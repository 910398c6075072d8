package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrLocked: the lock is held by another process (or another FileLock of
// this one) and was not released in time.
var ErrLocked = errors.New("the file is locked by another process")

// FileLock is an exclusive advisory lock on a lock file, held until Unlock.
type FileLock struct {
	path string
	f    *os.File
	once sync.Once
	err  error
}

// TryLock takes the lock on the file at path without waiting; it fails with
// an error matching ErrLocked while someone else holds it. The file is
// created (mode 0600, missing directories 0700) if needed and is never
// removed.
func TryLock(path string) (*FileLock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	ok, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if !ok {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s; close the other program or try again", ErrLocked, path)
	}
	return &FileLock{path: path, f: f}, nil
}

// Lock takes the lock on the file at path, waiting while someone else holds
// it: until timeout has passed (then the error matches ErrLocked) or ctx
// ends (then it matches ctx.Err()). timeout <= 0 waits until ctx ends. The
// file is created as by TryLock.
func Lock(ctx context.Context, path string, timeout time.Duration) (*FileLock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	wait := time.Millisecond
	for {
		ok, err := tryLock(f)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if ok {
			return &FileLock{path: path, f: f}, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("waiting for the lock on %s: %w", path, ctx.Err())
		case <-deadline:
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("%w: %s is still locked after %s; close the other program or try again", ErrLocked, path, timeout)
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Path is the lock file.
func (l *FileLock) Path() string { return l.path }

// Unlock releases the lock and closes the lock file. Calls after the first
// do nothing and return the first one's result.
func (l *FileLock) Unlock() error {
	l.once.Do(func() {
		uerr := unlock(l.f)
		cerr := l.f.Close()
		if err := errors.Join(uerr, cerr); err != nil {
			l.err = fmt.Errorf("unlocking %s: %w", l.path, err)
		}
	})
	return l.err
}

func openLockFile(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory %s (check its permissions): %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file %s (check its permissions): %w", path, err)
	}
	return f, nil
}
