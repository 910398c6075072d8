//go:build linux

package sshconn

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAckConn re-arms TCP_QUICKACK after every read of the SSH transport.
//
// Why: OpenSSH's sshd turns Nagle off only for interactive sessions. For a
// forwarding-only login (like `ssh -N`) Nagle stays on at the server, so a
// small packet it sends (a channel-open confirmation, the start of a response)
// waits until its previous packet is acknowledged. Linux delays ACKs by up to
// 40 ms when it has nothing to send back — typically right after the server's
// EOF/CLOSE for the previous channel — and the next request then stalls for
// those 40 ms. Acknowledging at once removes the stall; it costs one
// setsockopt per read (reads are batched by the transport's buffer).
type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, rc: rc}
	q.arm()
	return q
}

func (c *quickAckConn) arm() {
	_ = c.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	if n > 0 {
		c.arm()
	}
	return n, err
}
