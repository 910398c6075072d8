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

// assignAddr returns the loopback address of a new endpoint for k (st may
// be changed): 127.0.0.1 in SharedLoopback mode or while shared is on; else
// an address of its own for the app (127.N.A.1, see assignAppAddr) while
// per-app addresses are on; else the login's own address.
func (m *Map) assignAddr(st *state, k key) netip.Addr {
	if m.mode != PerLoginAddrs || m.shared.Load() {
		return loopback1
	}
	if m.perApp.Load() {
		if a, ok := m.assignAppAddr(st, k.login); ok {
			return a
		}
	}
	return m.assignLoginAddr(st, k.login)
}

// assignAppAddr gives a new app of login the next unused address of the
// login's block 127.N.0.0/16 (the block is assigned on first use: the
// next number after the highest ever handed out or used by any address in
// the file; never 0, which holds the per-login addresses, nor 80, which
// holds serve's own address). Within a block, addresses go 127.N.0.1,
// 127.N.1.1, … 127.N.255.1, then 127.N.0.2, and so on; an address once
// handed out is never handed out again, nor one used by any endpoint or
// login. ok is false when no block or address is left, or the address
// cannot be bound here: the caller falls back to the login's address.
func (m *Map) assignAppAddr(st *state, login string) (netip.Addr, bool) {
	n, ok := st.nets[login]
	if !ok {
		if n, ok = nextNet(st); !ok {
			m.log.Warn("no loopback block left for a new server; its apps share the server's address", "login", login)
			return netip.Addr{}, false
		}
	}
	used := map[netip.Addr]bool{serveAddr: true}
	for _, a := range st.logins {
		used[a] = true
	}
	for _, e := range st.entries {
		used[e.IP] = true
	}
	i := 0
	if last, ok := st.lastApp[login]; ok && netOf(last) == n {
		i = appIndex(last) + 1
	}
	for ; i < appsPerNet; i++ {
		a := appAddr(n, i)
		if used[a] {
			continue
		}
		if !m.opt.probe(a) {
			m.log.Warn("cannot listen on a new loopback address; this app uses its server's address for now, so it may share cookies with the server's other apps",
				"login", login, "addr", a)
			return netip.Addr{}, false
		}
		st.nets[login] = n
		st.lastApp[login] = a
		if n > st.lastNet {
			st.lastNet = n
		}
		return a, true
	}
	m.log.Warn("no loopback address left in the server's block; its new apps share the server's address", "login", login, "block", n)
	return netip.Addr{}, false
}

// appsPerNet: 256 values of the third octet times 254 of the fourth.
const appsPerNet = 256 * 254

// serveNet is the block of serve's own address (127.80.72.1): never an app block.
const serveNet = 80

// appAddr is the i-th address of block n: 127.n.(i mod 256).(1 + i/256).
func appAddr(n uint8, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, n, byte(i % 256), byte(1 + i/256)})
}

// appIndex is the inverse of appAddr for an address of a block.
func appIndex(a netip.Addr) int {
	b := a.As4()
	return (int(b[3])-1)*256 + int(b[2])
}

// netOf is the block number of a loopback address (its second octet).
func netOf(a netip.Addr) uint8 { return a.As4()[1] }

// nextNet is the block for a new login: after the highest ever handed out,
// owned, or used by any login address or endpoint (so a new server never
// inherits another's, even a forgotten one's, cookies).
func nextNet(st *state) (uint8, bool) {
	hi := int(st.lastNet)
	for _, n := range st.nets {
		hi = max(hi, int(n))
	}
	for _, a := range st.logins {
		hi = max(hi, int(netOf(a)))
	}
	if st.lastAddr.IsValid() {
		hi = max(hi, int(netOf(st.lastAddr)))
	}
	for _, e := range st.entries {
		if e.IP.Is4() {
			hi = max(hi, int(netOf(e.IP)))
		}
	}
	for n := hi + 1; n <= 255; n++ {
		if n != serveNet {
			return uint8(n), true
		}
	}
	return 0, false
}

// assignLoginAddr returns login's address, giving it the next unused one in
// PerLoginAddrs mode (st is changed). Login addresses never enter a block
// of per-app addresses (any block up to the highest ever handed out): they
// jump over them.
func (m *Map) assignLoginAddr(st *state, login string) netip.Addr {
	if m.mode != PerLoginAddrs || m.shared.Load() {
		return loopback1
	}
	if a, ok := st.logins[login]; ok {
		return a
	}
	hiNet := st.lastNet
	for _, n := range st.nets {
		hiNet = max(hiNet, n)
	}
	inBlock := func(a netip.Addr) bool { n := netOf(a); return n != 0 && n <= hiNet }
	// After the highest login address ever handed out, or address used by
	// an endpoint outside the blocks.
	next := loopback1
	higher := func(a netip.Addr) {
		if a.IsValid() && a.Is4() && a.Compare(next) > 0 {
			next = a
		}
	}
	higher(st.lastAddr)
	for _, a := range st.logins {
		higher(a)
	}
	for _, e := range st.entries {
		if !inBlock(e.IP) {
			higher(e.IP)
		}
	}
	for {
		next = next.Next()
		if next.IsValid() && next.Is4() && inBlock(next) {
			next = netip.AddrFrom4([4]byte{127, hiNet + 1, 0, 0}) // hiNet < 255: the block after it
			if hiNet == 255 {
				next = netip.Addr{}
			}
			continue
		}
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
	if !st.lastAddr.IsValid() || next.Compare(st.lastAddr) > 0 {
		st.lastAddr = next
	}
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
