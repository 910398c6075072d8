//go:build !unix && !windows

package portmap

import "os"

// On platforms without flock or LockFileEx (none Porthole ships on), the
// lock is a no-op: writes stay atomic, but two processes assigning at the
// same moment may lose one assignment.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) error { return nil }
