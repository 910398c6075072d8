package portmap

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"iter"
	"net"
	"net/netip"
	"strconv"
)

const (
	// minPreferredPort: remote ports below it (privileged locally) are not
	// preferred; they go to the hashed range.
	minPreferredPort = 1024
	// The hashed range lies below every OS's ephemeral range (Linux
	// 32768–60999, macOS and Windows 49152–65535) and above the usual
	// development ports.
	fallbackLo   = 20000
	fallbackSize = 10000
)

// firstLoginAddr is the address Open probes.
var firstLoginAddr = netip.AddrFrom4([4]byte{127, 0, 0, 2})

// probeLoopback reports whether a can be bound here.
func probeLoopback(a netip.Addr) bool {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// portFree reports whether a:port can be bound right now.
func portFree(a netip.Addr, port int) bool {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func listenTCP(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// assignLoginAddr returns login's address, giving it the next unused one in
// PerLoginAddrs mode (st is changed).
func (m *Map) assignLoginAddr(st *state, login string) netip.Addr {
	if m.mode != PerLoginAddrs || m.shared.Load() {
		return loopback1
	}
	if a, ok := st.logins[login]; ok {
		return a
	}
	// After the highest address ever handed out or used by any endpoint.
	next := loopback1
	if st.lastAddr.IsValid() && st.lastAddr.Compare(next) > 0 {
		next = st.lastAddr
	}
	for _, a := range st.logins {
		if a.Compare(next) > 0 {
			next = a
		}
	}
	for _, e := range st.entries {
		if e.IP.Compare(next) > 0 {
			next = e.IP
		}
	}
	for {
		next = next.Next()
		if !next.IsValid() || !next.Is4() || !next.IsLoopback() {
			m.log.Warn("no loopback address left for a new login; it uses 127.0.0.1", "login", login)
			return loopback1
		}
		if b := next.As4(); b[3] != 0 && b[3] != 255 && isLoginAddr(next) { // never serve's own
			break
		}
	}
	if !m.opt.probe(next) {
		m.log.Warn("cannot listen on a new loopback address; this login uses 127.0.0.1 for now, so its apps may share cookies with other servers",
			"login", login, "addr", next)
		return loopback1
	}
	st.logins[login] = next
	st.lastAddr = next
	return next
}

// pickPort chooses the port of a new endpoint for k on addr: k.port when
// possible, else the first free port of fallbackPorts(k).
func (m *Map) pickPort(ctx context.Context, st *state, addr netip.Addr, k key) (int, error) {
	used := usedPorts(st, addr)
	if k.port >= minPreferredPort && !used[k.port] && m.opt.free(addr, k.port) {
		return k.port, nil
	}
	i := 0
	for p := range fallbackPorts(k) {
		if i++; i%256 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !used[p] && m.opt.free(addr, p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w on %s in %d–%d: close some programs or forget unused endpoints",
		ErrNoFreePort, addr, fallbackLo, fallbackLo+fallbackSize-1)
}

// usedPorts are the ports assigned on addr.
func usedPorts(st *state, addr netip.Addr) map[int]bool {
	used := map[int]bool{}
	for _, e := range st.entries {
		if e.IP == addr {
			used[e.Port] = true
		}
	}
	return used
}

// fallbackPorts is the deterministic sequence of candidate ports for k:
// every port of the range once, from a start chosen by a SHA-256 hash of
// (login, canonical host, port), walking up and wrapping around.
func fallbackPorts(k key) iter.Seq[int] {
	return func(yield func(int) bool) {
		h := sha256.New()
		for _, s := range []string{"porthole portmap v1", k.login, k.host, strconv.Itoa(k.port)} {
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s)))) // length-prefixed: unambiguous
			h.Write([]byte(s))
		}
		start := int(binary.BigEndian.Uint64(h.Sum(nil)[:8]) % fallbackSize)
		for i := range fallbackSize {
			if !yield(fallbackLo + (start+i)%fallbackSize) {
				return
			}
		}
	}
}
