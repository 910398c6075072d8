//go:build !unix && !windows

package atomicfile

import "os"

// On platforms without flock or LockFileEx (none Porthole ships on), the
// lock is a no-op: writes stay atomic, but two processes writing at the same
// moment may lose one change.
const lockingSupported = false

func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) error { return nil }

func rename(from, to string) error { return os.Rename(from, to) }

func renameRetryable(error) bool { return false }

func syncDir(string) {}
