//go:build linux

package netwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// errMalformed: the kernel's bytes do not parse as netlink messages.
var errMalformed = errors.New("malformed netlink message")

// message is one parsed rtnetlink message. Only the part its type names is
// filled in.
type message struct {
	typ   uint16 // RTM_NEWLINK, …, NLMSG_DONE, NLMSG_ERROR
	flags uint16
	seq   uint32
	pid   uint32 // the sender's port: 0 is the kernel

	link  linkMsg  // RTM_NEWLINK, RTM_DELLINK
	addr  addrMsg  // RTM_NEWADDR, RTM_DELADDR
	route routeMsg // RTM_NEWROUTE, RTM_DELROUTE
	errno int32    // NLMSG_ERROR: 0 is an acknowledgement, else -errno
}

type linkMsg struct {
	index int32
	flags uint32 // IFF_*
	name  string
}

type addrMsg struct {
	index  int32
	prefix netip.Prefix // the interface's own address (IFA_LOCAL, else IFA_ADDRESS) with its prefix length
	label  string
}

type routeMsg struct {
	family uint8
	dst    netip.Prefix // 0.0.0.0/0 or ::/0 when the route has no RTA_DST
	gw     netip.Addr
	oif    int32
	prio   uint32
	table  uint32
	typ    uint8 // RTN_*
	flags  uint32
}

var native = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// parseMessages parses one datagram from a NETLINK_ROUTE socket. Message
// types it does not know are returned with only their header. It never
// reads past b, and a message that claims more than b holds is an error.
func parseMessages(b []byte) ([]message, error) {
	var out []message
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return out, fmt.Errorf("%w: %d bytes left, a header needs %d", errMalformed, len(b), unix.NLMSG_HDRLEN)
		}
		n := int(native.Uint32(b[0:4]))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return out, fmt.Errorf("%w: length %d with %d bytes left", errMalformed, n, len(b))
		}
		m := message{typ: native.Uint16(b[4:6]), flags: native.Uint16(b[6:8]), seq: native.Uint32(b[8:12]), pid: native.Uint32(b[12:16])}
		body := b[unix.NLMSG_HDRLEN:n]
		var err error
		switch m.typ {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			m.link, err = parseLink(body)
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			m.addr, err = parseAddr(body)
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			m.route, err = parseRoute(body)
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				err = fmt.Errorf("%w: an error message of %d bytes", errMalformed, len(body))
			} else {
				m.errno = int32(native.Uint32(body[0:4]))
			}
		}
		if err != nil {
			return out, fmt.Errorf("message type %d: %w", m.typ, err)
		}
		out = append(out, m)
		if a := align4(n); a < len(b) {
			b = b[a:]
		} else {
			b = nil
		}
	}
	return out, nil
}

// attrs calls fn for each route attribute in b (struct rtattr, 4-aligned).
func attrs(b []byte, fn func(typ uint16, val []byte)) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofRtAttr {
			return fmt.Errorf("%w: %d bytes left, an attribute needs %d", errMalformed, len(b), unix.SizeofRtAttr)
		}
		n := int(native.Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return fmt.Errorf("%w: attribute length %d with %d bytes left", errMalformed, n, len(b))
		}
		fn(native.Uint16(b[2:4])&^unix.NLA_F_NESTED&^unix.NLA_F_NET_BYTEORDER, b[unix.SizeofRtAttr:n])
		if a := align4(n); a < len(b) {
			b = b[a:]
		} else {
			b = nil
		}
	}
	return nil
}

// cString is a NUL-terminated attribute value (without the NUL).
func cString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

func parseLink(b []byte) (linkMsg, error) {
	if len(b) < unix.SizeofIfInfomsg {
		return linkMsg{}, fmt.Errorf("%w: link message of %d bytes", errMalformed, len(b))
	}
	l := linkMsg{index: int32(native.Uint32(b[4:8])), flags: native.Uint32(b[8:12])}
	err := attrs(b[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		if typ == unix.IFLA_IFNAME {
			l.name = cString(v)
		}
	})
	return l, err
}

// ipOf is an address attribute's value (4 or 16 bytes), or invalid.
func ipOf(v []byte) netip.Addr {
	switch len(v) {
	case 4:
		return netip.AddrFrom4([4]byte(v))
	case 16:
		return netip.AddrFrom16([16]byte(v))
	}
	return netip.Addr{}
}

func parseAddr(b []byte) (addrMsg, error) {
	if len(b) < unix.SizeofIfAddrmsg {
		return addrMsg{}, fmt.Errorf("%w: address message of %d bytes", errMalformed, len(b))
	}
	bits := int(b[1])
	a := addrMsg{index: int32(native.Uint32(b[4:8]))}
	var local, address netip.Addr
	err := attrs(b[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFA_LOCAL:
			local = ipOf(v)
		case unix.IFA_ADDRESS:
			address = ipOf(v)
		case unix.IFA_LABEL:
			a.label = cString(v)
		}
	})
	ip := local // IPv4: the interface's own address (IFA_ADDRESS is the peer's on a point-to-point link)
	if !ip.IsValid() {
		ip = address
	}
	if ip.IsValid() {
		a.prefix, _ = ip.Prefix(bits) // a length beyond the family's gives an invalid prefix
		if a.prefix.IsValid() {
			a.prefix = netip.PrefixFrom(ip, bits) // keep the address, not its network
		}
	}
	return a, err
}

func parseRoute(b []byte) (routeMsg, error) {
	if len(b) < unix.SizeofRtMsg {
		return routeMsg{}, fmt.Errorf("%w: route message of %d bytes", errMalformed, len(b))
	}
	r := routeMsg{family: b[0], table: uint32(b[4]), typ: b[7], flags: native.Uint32(b[8:12])}
	bits := int(b[1])
	var dst netip.Addr
	err := attrs(b[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.RTA_DST:
			dst = ipOf(v)
		case unix.RTA_GATEWAY:
			r.gw = ipOf(v)
		case unix.RTA_OIF:
			if len(v) == 4 {
				r.oif = int32(native.Uint32(v))
			}
		case unix.RTA_PRIORITY:
			if len(v) == 4 {
				r.prio = native.Uint32(v)
			}
		case unix.RTA_TABLE:
			if len(v) == 4 {
				r.table = native.Uint32(v)
			}
		}
	})
	if !dst.IsValid() {
		switch r.family {
		case unix.AF_INET:
			dst = netip.IPv4Unspecified()
		case unix.AF_INET6:
			dst = netip.IPv6Unspecified()
		}
	}
	if dst.IsValid() {
		r.dst, _ = dst.Prefix(bits)
	}
	return r, err
}
