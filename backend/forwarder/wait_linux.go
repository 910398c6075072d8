//go:build linux

package forwarder

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peekWaiter waits for readability through the runtime poller: the callback
// peeks one byte without consuming it (MSG_PEEK|MSG_DONTWAIT); EAGAIN means
// "not yet, wait". EOF and errors count as readable, so the following Read
// reports them.
type peekWaiter struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	peek [1]byte
}

func platformReadWaiter(c net.Conn) readWaiter {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &peekWaiter{rc: rc}
	w.fn = w.ready
	return w
}

func (w *peekWaiter) ready(fd uintptr) bool {
	for {
		_, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.peek[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			return true
		}
	}
}

func (w *peekWaiter) wait() error { return w.rc.Read(w.fn) }
