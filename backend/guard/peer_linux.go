package guard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerUID asks the kernel (netlink sock_diag, one exact lookup) which user owns
// the socket at the other end of an accepted loopback TCP connection. The peer's
// socket has source = remote and destination = local.
func peerUID(local, remote *net.TCPAddr) (uint32, error) {
	family := uint8(unix.AF_INET)
	if remote.IP.To4() == nil {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("open sock_diag: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		return 0, err
	}

	// nlmsghdr (16) + inet_diag_req_v2 (56).
	const reqLen = 16 + 56
	req := make([]byte, reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], reqLen)
	ne.PutUint16(req[4:], 20 /* SOCK_DIAG_BY_FAMILY */)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1)
	r := req[16:]
	r[0] = family
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // all states
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], uint16(remote.Port)) // sport
	binary.BigEndian.PutUint16(id[2:], uint16(local.Port))  // dport
	putAddr(id[4:20], remote.IP, family)
	putAddr(id[20:36], local.IP, family)
	ne.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], ^uint32(0))

	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag request: %w", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("sock_diag reply: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("sock_diag reply: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if e := int32(ne.Uint32(m.Data[:4])); e != 0 {
					return 0, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
				}
			}
		case 20:
			// inet_diag_msg: family, state, timer, retrans (4) + sockid (48) + expires, rqueue, wqueue (12) + uid.
			if len(m.Data) < 4+48+12+4 {
				return 0, errors.New("sock_diag: short reply")
			}
			return ne.Uint32(m.Data[64:68]), nil
		}
	}
	return 0, errors.New("sock_diag: no socket matched")
}

func putAddr(dst []byte, ip net.IP, family uint8) {
	if family == unix.AF_INET {
		copy(dst, ip.To4())
		return
	}
	copy(dst, ip.To16())
}

// unixPeerUID is the uid of the process that connected to a Unix socket
// (SO_PEERCRED).
func unixPeerUID(c *net.UnixConn) (uint32, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return cred.Uid, nil
}
