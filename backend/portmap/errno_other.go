//go:build !windows

package portmap

import (
	"errors"
	"syscall"
)

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE)
}

// isAddrNotAvail: the address is not configured here (127.0.0.2 on macOS
// without an lo0 alias).
func isAddrNotAvail(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL)
}

// isPermission: a port below 1024 without the right to bind it.
func isPermission(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
