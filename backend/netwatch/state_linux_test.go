//go:build linux

package netwatch

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// applyAll parses b and applies it to st; it returns the events in words.
func applyAll(t *testing.T, st *state, b []byte) []string {
	t.Helper()
	msgs, err := parseMessages(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		for _, e := range st.apply(m) {
			out = append(out, e.String())
		}
	}
	return out
}

// primed is a state with lo (1) and wlan0 (3, up, 192.168.1.5/24, a default
// route) as a dump would leave it.
func primed(t *testing.T) *state {
	st := newState()
	if evs := applyAll(t, st, slices.Concat(
		encLink(unix.RTM_NEWLINK, 1, upFlags|unix.IFF_LOOPBACK, "lo"),
		encLink(unix.RTM_NEWLINK, 3, upFlags, "wlan0"),
		encAddr(unix.RTM_NEWADDR, 1, "127.0.0.1/8"),
		encAddr(unix.RTM_NEWADDR, 3, "192.168.1.5/24"),
		encRoute(unix.RTM_NEWROUTE, routeSpec{gw: "192.168.1.1", oif: 3}),
	)); len(evs) != 2 { // the address and the route were new to an empty state
		t.Fatalf("priming gave %v", evs)
	}
	return st
}

func TestStateApply(t *testing.T) {
	cases := []struct {
		name string
		msgs [][]byte
		want []string
	}{
		{"the same address again (IPv6 RA refresh)", [][]byte{encAddr(unix.RTM_NEWADDR, 3, "192.168.1.5/24")}, nil},
		{"a new address", [][]byte{encAddr(unix.RTM_NEWADDR, 3, "2001:db8::5/64"), encAddr(unix.RTM_NEWADDR, 3, "2001:db8::5/64")},
			[]string{"address 2001:db8::5/64 added on wlan0"}},
		{"address removed", [][]byte{encAddr(unix.RTM_DELADDR, 3, "192.168.1.5/24")}, []string{"address 192.168.1.5/24 removed from wlan0"}},
		{"an address never seen removed", [][]byte{encAddr(unix.RTM_DELADDR, 3, "10.9.9.9/8")}, nil},
		{"loopback addresses", [][]byte{encAddr(unix.RTM_NEWADDR, 1, "127.0.0.2/8"), encAddr(unix.RTM_NEWADDR, 1, "::1/128"), encAddr(unix.RTM_NEWADDR, 3, "127.0.0.9/8")}, nil},
		{"link-local addresses", [][]byte{encAddr(unix.RTM_NEWADDR, 3, "fe80::1/64"), encAddr(unix.RTM_NEWADDR, 3, "169.254.3.3/16")}, nil},
		{"carrier lost and back", [][]byte{encLink(unix.RTM_NEWLINK, 3, unix.IFF_UP, ""), encLink(unix.RTM_NEWLINK, 3, upFlags, "")},
			[]string{"wlan0 went down", "wlan0 came up"}},
		{"link flags repeated", [][]byte{encLink(unix.RTM_NEWLINK, 3, upFlags|unix.IFF_PROMISC, "wlan0")}, nil},
		{"a new link, up, without address", [][]byte{encLink(unix.RTM_NEWLINK, 7, 0, "veth7"), encLink(unix.RTM_NEWLINK, 7, upFlags, "veth7")}, nil},
		{"loopback down", [][]byte{encLink(unix.RTM_NEWLINK, 1, unix.IFF_LOOPBACK, "lo")}, nil},
		{"link removed with its address", [][]byte{encLink(unix.RTM_DELLINK, 3, 0, "wlan0")}, []string{"address 192.168.1.5/24 removed from wlan0"}},
		{"default route repeated", [][]byte{encRoute(unix.RTM_NEWROUTE, routeSpec{gw: "192.168.1.1", oif: 3})}, nil},
		{"default route replaced", [][]byte{
			encRoute(unix.RTM_DELROUTE, routeSpec{gw: "192.168.1.1", oif: 3}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{gw: "192.168.1.254", oif: 3}),
		}, []string{"default route via 192.168.1.1 on wlan0 removed", "default route via 192.168.1.254 on wlan0 added"}},
		{"a VPN's routes", [][]byte{
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "10.8.0.0/16", oif: 3}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "::/0", gw: "fe80::1", oif: 3, table: 200}),
		}, []string{"route to 10.8.0.0/16 on wlan0 added", "default route via fe80::1 on wlan0 added"}},
		{"routes that carry no connection", [][]byte{
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "192.168.1.5/32", oif: 3, table: unix.RT_TABLE_LOCAL, typ: unix.RTN_LOCAL}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "10.1.1.1/32", oif: 3, flags: unix.RTM_F_CLONED}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "fe80::/64", oif: 3}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "ff00::/8", oif: 3, typ: unix.RTN_MULTICAST}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "10.5.0.0/16", oif: 1}),
			encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "192.168.1.255/32", oif: 3, typ: unix.RTN_BROADCAST}),
		}, nil},
		{"a route never seen removed", [][]byte{encRoute(unix.RTM_DELROUTE, routeSpec{dst: "10.8.0.0/16", oif: 3})}, nil},
		{"a route on a link that went down comes back", [][]byte{
			encLink(unix.RTM_NEWLINK, 3, unix.IFF_UP, ""),
			encLink(unix.RTM_NEWLINK, 3, upFlags, ""),
			encRoute(unix.RTM_NEWROUTE, routeSpec{gw: "192.168.1.1", oif: 3}),
		}, []string{"wlan0 went down", "wlan0 came up", "default route via 192.168.1.1 on wlan0 added"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := primed(t)
			got := applyAll(t, st, slices.Concat(tc.msgs...))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("events:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestStateRouteCap: beyond maxRoutes, new routes are neither kept nor
// reported (a router's full table); removals of kept ones still are.
func TestStateRouteCap(t *testing.T) {
	defer func(n int) { maxRoutes = n }(maxRoutes)
	maxRoutes = 2
	st := primed(t) // holds one route
	got := applyAll(t, st, slices.Concat(
		encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "10.1.0.0/16", oif: 3}),
		encRoute(unix.RTM_NEWROUTE, routeSpec{dst: "10.2.0.0/16", oif: 3}),
		encRoute(unix.RTM_DELROUTE, routeSpec{dst: "10.2.0.0/16", oif: 3}),
		encRoute(unix.RTM_DELROUTE, routeSpec{dst: "10.1.0.0/16", oif: 3}),
	))
	want := []string{"route to 10.1.0.0/16 on wlan0 added", "route to 10.1.0.0/16 on wlan0 removed"}
	if !slices.Equal(got, want) || len(st.routes) != 1 {
		t.Fatalf("events %q (want %q), %d routes kept", got, want, len(st.routes))
	}
}

func TestStateDiff(t *testing.T) {
	old := primed(t)
	now := primed(t)
	if evs := now.diff(old); len(evs) != 0 {
		t.Fatalf("diff of equal states = %v", evs)
	}
	applyAll(t, now, slices.Concat(
		encAddr(unix.RTM_DELADDR, 3, "192.168.1.5/24"),
		encAddr(unix.RTM_NEWADDR, 3, "10.0.0.7/8"),
		encLink(unix.RTM_NEWLINK, 3, unix.IFF_UP, ""),
	))
	var got []string
	for _, e := range now.diff(old) {
		got = append(got, e.String())
	}
	slices.Sort(got)
	want := []string{"address 10.0.0.7/8 added on wlan0", "address 192.168.1.5/24 removed from wlan0", "default route via 192.168.1.1 on wlan0 removed", "wlan0 went down"}
	if !slices.Equal(got, want) {
		t.Fatalf("diff:\n got %q\nwant %q", got, want)
	}
}

func TestChangeString(t *testing.T) {
	e := Event{Kind: KindLinkDown, Iface: "eth0"}
	cases := []struct {
		c    Change
		want string
	}{
		{Change{Events: []Event{e}}, "eth0 went down"},
		{Change{Events: []Event{e, e}}, "eth0 went down (and 1 more change)"},
		{Change{Events: []Event{e, e, e}}, "eth0 went down (and 2 more changes)"},
	}
	for _, tc := range cases {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
	if s := (Event{Kind: KindRouteRemoved, Prefix: netip.MustParsePrefix("::/0")}).String(); s != "default route removed" {
		t.Errorf("default route without a gateway or interface = %q", s)
	}
}
