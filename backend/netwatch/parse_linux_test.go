//go:build linux

package netwatch

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// The encoders build what the kernel sends, for the parser and state tests.

func attr(typ uint16, val []byte) []byte {
	b := make([]byte, align4(unix.SizeofRtAttr+len(val)))
	native.PutUint16(b[0:2], uint16(unix.SizeofRtAttr+len(val)))
	native.PutUint16(b[2:4], typ)
	copy(b[4:], val)
	return b
}

func u32(v uint32) []byte { b := make([]byte, 4); native.PutUint32(b, v); return b }

func cstr(s string) []byte { return append([]byte(s), 0) }

func nlmsg(typ uint16, body []byte) []byte {
	b := make([]byte, align4(unix.NLMSG_HDRLEN+len(body)))
	native.PutUint32(b[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	native.PutUint16(b[4:6], typ)
	copy(b[unix.NLMSG_HDRLEN:], body)
	return b
}

func encLink(typ uint16, index int32, flags uint32, name string) []byte {
	body := make([]byte, unix.SizeofIfInfomsg)
	native.PutUint32(body[4:8], uint32(index))
	native.PutUint32(body[8:12], flags)
	if name != "" {
		body = append(body, attr(unix.IFLA_IFNAME, cstr(name))...)
	}
	return nlmsg(typ, body)
}

func encAddr(typ uint16, index int32, p string) []byte {
	pf := netip.MustParsePrefix(p)
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET
	if pf.Addr().Is6() {
		body[0] = unix.AF_INET6
	}
	body[1] = byte(pf.Bits())
	native.PutUint32(body[4:8], uint32(index))
	body = append(body, attr(unix.IFA_ADDRESS, pf.Addr().AsSlice())...)
	if pf.Addr().Is4() {
		body = append(body, attr(unix.IFA_LOCAL, pf.Addr().AsSlice())...)
	}
	return nlmsg(typ, body)
}

type routeSpec struct {
	dst   string // prefix; "" for default (v4)
	gw    string
	oif   int32
	table uint8
	typ   uint8
	flags uint32
}

func encRoute(typ uint16, r routeSpec) []byte {
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = unix.AF_INET
	if r.dst != "" {
		pf := netip.MustParsePrefix(r.dst)
		if pf.Addr().Is6() {
			body[0] = unix.AF_INET6
		}
		body[1] = byte(pf.Bits())
	}
	body[4] = r.table
	if body[4] == 0 {
		body[4] = unix.RT_TABLE_MAIN
	}
	body[7] = r.typ
	if body[7] == 0 {
		body[7] = unix.RTN_UNICAST
	}
	native.PutUint32(body[8:12], r.flags)
	if r.dst != "" {
		pf := netip.MustParsePrefix(r.dst)
		if pf.Bits() > 0 {
			body = append(body, attr(unix.RTA_DST, pf.Addr().AsSlice())...)
		}
	}
	if r.gw != "" {
		body = append(body, attr(unix.RTA_GATEWAY, netip.MustParseAddr(r.gw).AsSlice())...)
	}
	if r.oif != 0 {
		body = append(body, attr(unix.RTA_OIF, u32(uint32(r.oif)))...)
	}
	body = append(body, attr(unix.RTA_TABLE, u32(uint32(body[4])))...)
	return nlmsg(typ, body)
}

const upFlags = unix.IFF_UP | unix.IFF_RUNNING

func TestParseMessages(t *testing.T) {
	b := slices.Concat(
		encLink(unix.RTM_NEWLINK, 3, upFlags, "wlan0"),
		encAddr(unix.RTM_NEWADDR, 3, "192.168.1.5/24"),
		encAddr(unix.RTM_DELADDR, 3, "2001:db8::5/64"),
		encRoute(unix.RTM_NEWROUTE, routeSpec{gw: "192.168.1.1", oif: 3}),
		nlmsg(unix.NLMSG_DONE, u32(0)),
	)
	msgs, err := parseMessages(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5", len(msgs))
	}
	if l := msgs[0].link; msgs[0].typ != unix.RTM_NEWLINK || l.index != 3 || l.name != "wlan0" || l.flags != upFlags {
		t.Errorf("link = %+v", msgs[0])
	}
	if a := msgs[1].addr; a.index != 3 || a.prefix != netip.MustParsePrefix("192.168.1.5/24") {
		t.Errorf("v4 address = %+v (want the address itself with its length, not the network)", a)
	}
	if a := msgs[2].addr; msgs[2].typ != unix.RTM_DELADDR || a.prefix != netip.MustParsePrefix("2001:db8::5/64") {
		t.Errorf("v6 address = %+v", a)
	}
	if r := msgs[3].route; r.dst != netip.MustParsePrefix("0.0.0.0/0") || r.gw != netip.MustParseAddr("192.168.1.1") || r.oif != 3 || r.table != unix.RT_TABLE_MAIN {
		t.Errorf("default route = %+v", r)
	}
	if msgs[4].typ != unix.NLMSG_DONE {
		t.Errorf("last = %+v, want DONE", msgs[4])
	}
}

func TestParseMessagesMalformed(t *testing.T) {
	good := encLink(unix.RTM_NEWLINK, 1, 0, "eth0")
	cases := map[string][]byte{
		"short header":           good[:10],
		"length beyond datagram": append(append([]byte{}, good[:4]...), good[4:20]...),
		"length under header":    {4, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"short link body":        nlmsg(unix.RTM_NEWLINK, make([]byte, 8)),
		"attribute too long":     nlmsg(unix.RTM_NEWLINK, append(make([]byte, unix.SizeofIfInfomsg), 200, 0, 3, 0)),
		"short error":            nlmsg(unix.NLMSG_ERROR, []byte{1}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseMessages(b); !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v, want errMalformed", err)
			}
		})
	}
}

// FuzzParseMessages: any bytes parse or fail without a panic, and what
// parses can be applied to a state without one.
func FuzzParseMessages(f *testing.F) {
	f.Add(slices.Concat(encLink(unix.RTM_NEWLINK, 2, upFlags, "eth0"), encAddr(unix.RTM_NEWADDR, 2, "10.0.0.2/8")))
	f.Add(encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "2001:db8::/32", gw: "fe80::1", oif: 2}))
	f.Add(encRoute(unix.RTM_DELROUTE, routeSpec{dst: "10.1.0.0/16", oif: 9, table: unix.RT_TABLE_LOCAL}))
	f.Add(nlmsg(unix.NLMSG_ERROR, u32(uint32(0xffffffff))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseMessages(b)
		if err == nil && len(b) >= unix.NLMSG_HDRLEN && len(msgs) == 0 {
			t.Fatal("no error and no message from a non-empty datagram")
		}
		st := newState()
		for _, m := range msgs {
			if p := m.addr.prefix; p.IsValid() && p.Bits() > p.Addr().BitLen() {
				t.Fatalf("prefix %v longer than its address", p)
			}
			for _, e := range st.apply(m) {
				if e.Kind < KindAddrAdded || e.Kind > KindLinkDown || e.String() == "" {
					t.Fatalf("bad event %+v", e)
				}
			}
		}
		old := newState()
		_ = st.diff(old)
	})
}
