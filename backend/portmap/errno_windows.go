//go:build windows

package portmap

import (
	"errors"

	"golang.org/x/sys/windows"
)

// Winsock reports its own error numbers, which syscall.EADDRINUSE and
// friends do not match on Windows.

func isAddrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE)
}

func isAddrNotAvail(err error) bool {
	return errors.Is(err, windows.WSAEADDRNOTAVAIL)
}

func isPermission(err error) bool {
	return errors.Is(err, windows.WSAEACCES)
}
