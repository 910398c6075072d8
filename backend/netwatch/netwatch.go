// Package netwatch reports when this machine's network changed: an address,
// a route or a link that could carry an SSH connection appeared, went away,
// came up or went down. Linux asks the kernel (a NETLINK_ROUTE socket
// subscribed to link, address and route changes); other systems have a stub
// that reports nothing (Open returns ErrUnsupported).
//
// Only changes that can move a connection's path are reported: loopback
// interfaces and addresses, link-local addresses and routes, the kernel's
// local and broadcast routes, cached routes, a link without an address
// coming up, and repeated notifications of what is already there (IPv6
// router advertisements refresh their addresses and routes) are not; nor
// are routes beyond the first 20,000 (a router's full table). Bursts are
// coalesced into one Change.
package netwatch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// ErrUnsupported: this system has no network-change notifications that
// netwatch can read (every system but Linux, for now).
var ErrUnsupported = errors.New("netwatch: network change notifications are not supported on this system")

// Kind is what changed.
type Kind uint8

// The kinds of change.
const (
	KindAddrAdded    Kind = iota + 1 // an address was added to an interface
	KindAddrRemoved                  // an address was removed from an interface
	KindRouteAdded                   // a route was added
	KindRouteRemoved                 // a route was removed
	KindLinkUp                       // an interface with an address came up (carrier)
	KindLinkDown                     // an interface with an address went down
)

func (k Kind) String() string {
	switch k {
	case KindAddrAdded:
		return "address added"
	case KindAddrRemoved:
		return "address removed"
	case KindRouteAdded:
		return "route added"
	case KindRouteRemoved:
		return "route removed"
	case KindLinkUp:
		return "link up"
	case KindLinkDown:
		return "link down"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// Event is one change.
type Event struct {
	Kind  Kind
	Iface string // the interface's name ("interface N" when it is unknown)
	// Prefix: the address with its prefix length (address events) or the
	// route's destination (route events; 0.0.0.0/0 or ::/0 for a default
	// route). Invalid for link events.
	Prefix  netip.Prefix
	Gateway netip.Addr // route events: the next hop, if any
}

// String says what happened in plain words, e.g. "address 10.0.0.5/24
// added on wlan0", "default route via 192.168.1.1 on wlan0 removed",
// "wlan0 went down".
func (e Event) String() string {
	switch e.Kind {
	case KindAddrAdded:
		return fmt.Sprintf("address %s added on %s", e.Prefix, e.Iface)
	case KindAddrRemoved:
		return fmt.Sprintf("address %s removed from %s", e.Prefix, e.Iface)
	case KindRouteAdded, KindRouteRemoved:
		var b strings.Builder
		if e.Prefix.IsValid() && e.Prefix.Bits() == 0 {
			b.WriteString("default route")
		} else {
			fmt.Fprintf(&b, "route to %s", e.Prefix)
		}
		if e.Gateway.IsValid() {
			fmt.Fprintf(&b, " via %s", e.Gateway)
		}
		if e.Iface != "" {
			fmt.Fprintf(&b, " on %s", e.Iface)
		}
		if e.Kind == KindRouteAdded {
			b.WriteString(" added")
		} else {
			b.WriteString(" removed")
		}
		return b.String()
	case KindLinkUp:
		return e.Iface + " came up"
	case KindLinkDown:
		return e.Iface + " went down"
	}
	return e.Kind.String() + " on " + e.Iface
}

// Change is a burst of events, coalesced.
type Change struct {
	Time   time.Time // when the first event of the burst arrived
	Events []Event   // in the order the kernel reported them; never empty
}

// String is the first event in plain words, and how many more there were:
// "address 10.0.0.5/24 added on wlan0 (and 2 more changes)".
func (c Change) String() string {
	switch len(c.Events) {
	case 0:
		return "no change"
	case 1:
		return c.Events[0].String()
	case 2:
		return c.Events[0].String() + " (and 1 more change)"
	}
	return fmt.Sprintf("%s (and %d more changes)", c.Events[0], len(c.Events)-1)
}

// Options configures a Watcher. The zero value is usable.
type Options struct {
	// Debounce: events within this long after the first of a burst are
	// reported as one Change; default 150 ms.
	Debounce time.Duration
	// Logger receives the watcher's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultDebounce is Options.Debounce's default: long enough to take in
// the address, route and link messages of one network switch, short
// enough not to matter next to a reconnect.
const DefaultDebounce = 150 * time.Millisecond

func (o Options) withDefaults() Options {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "netwatch")
	return o
}
