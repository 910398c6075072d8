//go:build unix

package atomicfile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockingSupported: tryLock really excludes other holders.
const lockingSupported = true

// tryLock takes an exclusive flock(2) on f without waiting. It reports false
// (and no error) while another holder has it. flock locks belong to the open
// file description, so two opens in one process exclude each other too.
func tryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return false, nil
	}
	return false, err
}

func unlock(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

func rename(from, to string) error { return os.Rename(from, to) }

// renameRetryable: a rename on Unix does not fail because of readers.
func renameRetryable(error) bool { return false }

// syncDir makes a rename in dir durable. Best effort: the rename has
// happened already, and some file systems cannot fsync a directory.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
