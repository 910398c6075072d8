package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	gnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"
)

// ErrPortInUse means a local port could not be bound because something holds it.
var ErrPortInUse = errors.New("port in use")

// Holder is the process that listens on a local port.
type Holder struct {
	PID  int32
	Name string // process name, "" when it cannot be read (e.g. another user's process)
}

func (h Holder) String() string {
	if h.Name == "" {
		return fmt.Sprintf("pid %d", h.PID)
	}
	return fmt.Sprintf("%s (pid %d)", h.Name, h.PID)
}

// WhoHolds finds the process listening on TCP port (any local address).
// ok is false when no listener is found or the OS does not tell.
func WhoHolds(ctx context.Context, port int) (h Holder, ok bool) {
	return whoHoldsAddr(ctx, "", port)
}

// whoHoldsAddr is WhoHolds preferring a listener on host (an IP address) or
// on the wildcard address, which are the ones that block a bind to
// host:port; "" means any address.
func whoHoldsAddr(ctx context.Context, host string, port int) (h Holder, ok bool) {
	conns, err := gnet.ConnectionsWithContext(ctx, "tcp")
	if err != nil {
		return Holder{}, false
	}
	want, _ := netip.ParseAddr(host)
	best, bestRank := int32(0), 0
	for _, c := range conns {
		if c.Status != "LISTEN" || int(c.Laddr.Port) != port || c.Pid == 0 {
			continue
		}
		rank := 1 // same port, some other address
		if la, err := netip.ParseAddr(c.Laddr.IP); err == nil && want.IsValid() {
			switch la = la.Unmap(); {
			case la == want.Unmap():
				rank = 3
			case la.IsUnspecified():
				rank = 2
			}
		}
		if rank > bestRank {
			best, bestRank = c.Pid, rank
		}
	}
	if bestRank == 0 {
		return Holder{}, false
	}
	h = Holder{PID: best}
	if p, err := process.NewProcessWithContext(ctx, best); err == nil {
		if name, err := p.NameWithContext(ctx); err == nil {
			h.Name = name
		}
	}
	return h, true
}

// PortInUseError says which port on this computer is taken and by whom.
type PortInUseError struct {
	Addr   string // the address Porthole tried to bind
	Port   int
	Holder Holder
	Known  bool // Holder is filled in
	Err    error
}

func (e *PortInUseError) Error() string {
	if e.Known {
		return fmt.Sprintf("port %d on this computer is held by %s", e.Port, e.Holder)
	}
	return fmt.Sprintf("port %d on this computer is already in use by another program", e.Port)
}

func (e *PortInUseError) Unwrap() []error { return []error{ErrPortInUse, e.Err} }

// Listen binds a TCP listener on addr. When the port is taken, the error is a
// *PortInUseError naming the process that holds it.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err == nil {
		return ln, nil
	}
	if !isAddrInUse(err) {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	pe := &PortInUseError{Addr: addr, Port: port, Err: err}
	pe.Holder, pe.Known = whoHoldsAddr(ctx, host, port)
	return nil, pe
}
