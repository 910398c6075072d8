package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
)

// maxAlternatives bounds the ports Bind tries after the assigned one before
// letting the OS choose.
const maxAlternatives = 64

// Bind listens on ep, normally an endpoint from Endpoint.
//
// When ep cannot be bound — its port is held by another process, its
// address is not configured here (127.0.0.2 on macOS without an lo0 alias),
// or its port needs administrator rights — Bind listens on a temporary
// alternative instead and returns it with a notice for the user, such as
//
//	port 8888 on 127.0.0.2 is held by jupyter (pid 4121); Porthole will use 8889
//
// The alternative is the next port up on the same address (127.0.0.1 with
// the same port first, if the address is unavailable; remote ports below
// 1024 move up by 8000, so 80 becomes 8080) that is free and not assigned to
// another app, or else a port the OS picks. It is not saved: the map keeps
// ep, so the app returns to its usual address as soon as the port is free
// again, and a later run does not drift further away each time something
// squats on a port. The cost: while moved, the app is a different origin,
// so its localStorage/IndexedDB (per origin) start empty and a tab restored
// from the old URL must be pointed at the new one; cookies are scoped by
// host, not port, so they follow the move within the login's own address.
//
// err is non-nil only when neither ep nor any alternative can be bound.
func (m *Map) Bind(ctx context.Context, ep Endpoint) (ln net.Listener, bound Endpoint, notice string, err error) {
	if err := ep.validate(); err != nil {
		return nil, Endpoint{}, "", err
	}
	ln, err = m.opt.listen(ctx, ep.String())
	if err == nil {
		return ln, ep, "", nil
	}
	bindErr := err

	ip, first := ep.IP, ep.Port+1
	var reason string
	switch {
	case isAddrInUse(err):
		if h, ok := whoHoldsAddr(ctx, ep.IP.String(), ep.Port); ok {
			reason = fmt.Sprintf("port %d on %s is held by %s", ep.Port, ep.IP, h)
		} else {
			reason = fmt.Sprintf("port %d on %s is in use by another program", ep.Port, ep.IP)
		}
	case isAddrNotAvail(err):
		reason = fmt.Sprintf("address %s is not available on this computer", ep.IP)
		if runtime.GOOS == "darwin" {
			reason += fmt.Sprintf(" (to add it: sudo ifconfig lo0 alias %s up)", ep.IP)
		}
		ip, first = loopback1, ep.Port
	case isPermission(err):
		reason = fmt.Sprintf("port %d on %s needs administrator rights", ep.Port, ep.IP)
	default:
		return nil, Endpoint{}, "", fmt.Errorf("listening on %s: %w", ep, err)
	}
	if first < minPreferredPort {
		first = ep.Port + 8000
	}

	m.mu.Lock()
	m.refresh()
	used := usedPorts(m.st, ip)
	m.mu.Unlock()

	try := func(port int) (net.Listener, Endpoint, error) {
		alt := Endpoint{IP: ip, Port: port}
		ln, err := m.opt.listen(ctx, alt.String())
		if err != nil {
			return nil, Endpoint{}, err
		}
		if port == 0 {
			ap, perr := netip.ParseAddrPort(ln.Addr().String())
			if perr != nil {
				_ = ln.Close()
				return nil, Endpoint{}, fmt.Errorf("reading the address the OS chose: %w", perr)
			}
			alt.Port = int(ap.Port())
		}
		return ln, alt, nil
	}
	for port := first; port < first+maxAlternatives && port <= 65535; port++ {
		if used[port] {
			continue
		}
		ln, alt, err := try(port)
		if err == nil {
			return ln, alt, m.moved(ep, alt, reason), nil
		}
		if !isAddrInUse(err) && !isPermission(err) {
			return nil, Endpoint{}, "", fmt.Errorf("%s, and listening on %s failed too: %w", reason, Endpoint{IP: ip, Port: port}, err)
		}
		if ctx.Err() != nil {
			return nil, Endpoint{}, "", fmt.Errorf("%s: %w", reason, ctx.Err())
		}
	}
	ln, alt, err := try(0)
	if err != nil {
		return nil, Endpoint{}, "", fmt.Errorf("%s, and no other port is free: %w", reason, errors.Join(ErrNoFreePort, bindErr, err))
	}
	if used[alt.Port] { // the OS picked a port assigned to another app that is not running
		_ = ln.Close()
		return nil, Endpoint{}, "", fmt.Errorf("%s, and no other port is free: %w", reason, errors.Join(ErrNoFreePort, bindErr))
	}
	return ln, alt, m.moved(ep, alt, reason), nil
}

// moved builds the notice and logs it.
func (m *Map) moved(from, to Endpoint, reason string) string {
	where := strconv.Itoa(to.Port)
	if to.IP != from.IP {
		where = to.String()
	}
	notice := reason + "; Porthole will use " + where
	m.log.Warn("local endpoint moved for this run", "from", from.String(), "to", to.String(), "why", reason)
	return notice
}
