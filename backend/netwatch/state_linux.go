//go:build linux

package netwatch

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// state is what the kernel told us about the links, addresses and routes
// that matter, so that a notification can be judged a change (or a repeat
// of what is there, which IPv6 router advertisements send all the time).
type state struct {
	links  map[int32]linkInfo
	addrs  map[addrKey]struct{}
	routes map[routeKey]struct{}
}

type linkInfo struct {
	name     string
	up       bool // IFF_UP and IFF_RUNNING: administratively up, with a carrier
	loopback bool
}

type addrKey struct {
	index  int32
	prefix netip.Prefix
}

type routeKey struct {
	dst   netip.Prefix
	gw    netip.Addr
	oif   int32
	prio  uint32
	table uint32
	typ   uint8
}

// maxRoutes bounds the routes tracked: a machine with a full Internet
// table is a router, its routes change all the time, and a laptop's
// connection moves with its addresses and links anyway. Routes beyond it
// are neither tracked nor reported.
var maxRoutes = 20000

func newState() *state {
	return &state{links: map[int32]linkInfo{}, addrs: map[addrKey]struct{}{}, routes: map[routeKey]struct{}{}}
}

func (s *state) name(index int32) string {
	if l, ok := s.links[index]; ok && l.name != "" {
		return l.name
	}
	return fmt.Sprintf("interface %d", index)
}

func (s *state) isLoopback(index int32) bool { return s.links[index].loopback }

// hasAddr: the link has an address we track (one that could carry a
// connection to a server).
func (s *state) hasAddr(index int32) bool {
	for k := range s.addrs {
		if k.index == index {
			return true
		}
	}
	return false
}

// ignoredIP: loopback, link-local, multicast or unspecified addresses
// never carry a connection to a server.
func ignoredIP(ip netip.Addr) bool {
	return !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast()
}

// apply records m and returns the changes it makes, if any.
func (s *state) apply(m message) []Event {
	switch m.typ {
	case unix.RTM_NEWLINK:
		l := m.link
		old, known := s.links[l.index]
		info := linkInfo{name: l.name, up: l.flags&unix.IFF_UP != 0 && l.flags&unix.IFF_RUNNING != 0, loopback: l.flags&unix.IFF_LOOPBACK != 0}
		if info.name == "" {
			info.name = old.name
		}
		s.links[l.index] = info
		if !known || info.loopback || old.up == info.up {
			return nil
		}
		if !info.up {
			s.dropRoutes(l.index) // the kernel does not always say it flushed IPv4 routes
		}
		if !s.hasAddr(l.index) {
			return nil // a link without an address carries no connection
		}
		k := KindLinkDown
		if info.up {
			k = KindLinkUp
		}
		return []Event{{Kind: k, Iface: info.name}}
	case unix.RTM_DELLINK:
		l := m.link
		var evs []Event
		if old, ok := s.links[l.index]; ok && !old.loopback {
			for k := range s.addrs {
				if k.index == l.index {
					evs = append(evs, Event{Kind: KindAddrRemoved, Iface: s.name(l.index), Prefix: k.prefix})
					delete(s.addrs, k)
				}
			}
		}
		s.dropRoutes(l.index)
		delete(s.links, l.index)
		return evs
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		a := m.addr
		if !a.prefix.IsValid() || ignoredIP(a.prefix.Addr()) || s.isLoopback(a.index) {
			return nil
		}
		k := addrKey{a.index, a.prefix}
		_, known := s.addrs[k]
		if m.typ == unix.RTM_NEWADDR {
			if known {
				return nil
			}
			s.addrs[k] = struct{}{}
			return []Event{{Kind: KindAddrAdded, Iface: s.name(a.index), Prefix: a.prefix}}
		}
		if !known {
			return nil
		}
		delete(s.addrs, k)
		return []Event{{Kind: KindAddrRemoved, Iface: s.name(a.index), Prefix: a.prefix}}
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		r := m.route
		if !s.routeMatters(r) {
			return nil
		}
		k := routeKey{dst: r.dst, gw: r.gw, oif: r.oif, prio: r.prio, table: r.table, typ: r.typ}
		_, known := s.routes[k]
		ev := Event{Prefix: r.dst, Gateway: r.gw}
		if r.oif != 0 {
			ev.Iface = s.name(r.oif)
		}
		if m.typ == unix.RTM_NEWROUTE {
			if known || len(s.routes) >= maxRoutes {
				return nil
			}
			s.routes[k] = struct{}{}
			ev.Kind = KindRouteAdded
			return []Event{ev}
		}
		if !known {
			return nil
		}
		delete(s.routes, k)
		ev.Kind = KindRouteRemoved
		return []Event{ev}
	}
	return nil
}

// routeMatters: a unicast (or blackhole, unreachable, prohibit) route in a
// table other than the kernel's local one, not a cached clone, not through
// a loopback interface, to a destination that is not link-local or
// multicast.
func (s *state) routeMatters(r routeMsg) bool {
	switch r.typ {
	case unix.RTN_UNICAST, unix.RTN_BLACKHOLE, unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
	default:
		return false
	}
	if r.table == unix.RT_TABLE_LOCAL || r.flags&unix.RTM_F_CLONED != 0 || !r.dst.IsValid() {
		return false
	}
	if r.oif != 0 && s.isLoopback(r.oif) {
		return false
	}
	if d := r.dst.Addr(); r.dst.Bits() > 0 && (d.IsLoopback() || d.IsLinkLocalUnicast() || d.IsMulticast()) {
		return false
	}
	return true
}

func (s *state) dropRoutes(index int32) {
	for k := range s.routes {
		if k.oif == index {
			delete(s.routes, k)
		}
	}
}

// diff is what changed from old to s (after notifications were lost and
// the state was read again): addresses and routes gone, then new, then
// links whose carrier changed.
func (s *state) diff(old *state) []Event {
	var evs []Event
	for k := range old.addrs {
		if _, ok := s.addrs[k]; !ok {
			evs = append(evs, Event{Kind: KindAddrRemoved, Iface: old.name(k.index), Prefix: k.prefix})
		}
	}
	for k := range old.routes {
		if _, ok := s.routes[k]; !ok {
			evs = append(evs, routeEvent(old, KindRouteRemoved, k))
		}
	}
	for k := range s.addrs {
		if _, ok := old.addrs[k]; !ok {
			evs = append(evs, Event{Kind: KindAddrAdded, Iface: s.name(k.index), Prefix: k.prefix})
		}
	}
	for k := range s.routes {
		if _, ok := old.routes[k]; !ok {
			evs = append(evs, routeEvent(s, KindRouteAdded, k))
		}
	}
	for i, l := range s.links {
		if o, ok := old.links[i]; ok && o.up != l.up && !l.loopback && s.hasAddr(i) {
			k := KindLinkDown
			if l.up {
				k = KindLinkUp
			}
			evs = append(evs, Event{Kind: k, Iface: l.name})
		}
	}
	return evs
}

func routeEvent(s *state, k Kind, r routeKey) Event {
	ev := Event{Kind: k, Prefix: r.dst, Gateway: r.gw}
	if r.oif != 0 {
		ev.Iface = s.name(r.oif)
	}
	return ev
}
