package discovery

import (
	"cmp"
	"net/netip"
	"slices"
)

// candidate is a listening port before probing.
type candidate struct {
	svc   Service  // Port, Addrs, Scope, DialHost, Process, UID, Mine filled in
	hosts []string // hosts to try dialing, best first
	key   svcKey
}

// svcKey says whether a listener is the same one as at the last scan: the
// same port held by the same process. When the process is unknown (another
// user's), the socket inode stands in for it, so a restarted server is
// probed again.
type svcKey struct {
	port  int
	pid   int
	inode uint64
}

// buildCandidates turns a listing into one candidate per port: the v4/v6
// pair (and any other addresses) of a port are merged, sshd's own
// listeners are dropped.
func buildCandidates(l *listing) []candidate {
	byPort := map[int][]sockEntry{}
	for _, s := range l.sockets {
		if s.port <= 0 || s.port > 65535 || !s.addr.IsValid() {
			continue
		}
		byPort[s.port] = append(byPort[s.port], s)
	}
	out := make([]candidate, 0, len(byPort))
	for port, socks := range byPort {
		c := candidate{svc: Service{Port: port, UID: -1}}
		// The process: of all holders, the one started first (a forking
		// server's parent rather than its workers), then the lowest pid.
		var best *Process
		bestPID := 0
		var inode uint64
		for _, s := range socks {
			c.svc.Addrs = append(c.svc.Addrs, s.addr)
			if s.inode != 0 && (inode == 0 || s.inode < inode) {
				inode = s.inode
			}
			if c.svc.UID < 0 && s.uid >= 0 {
				c.svc.UID = s.uid
			}
			if s.user != "" && l.user != "" && s.user == l.user {
				c.svc.Mine = true
			}
			for _, pid := range s.pids {
				p := l.procs[pid]
				if p == nil {
					if best == nil && (bestPID == 0 || pid < bestPID) {
						bestPID = pid
					}
					continue
				}
				if best == nil || earlier(p, best) {
					best, bestPID = p, pid
				}
			}
		}
		if best == nil && bestPID != 0 {
			best = &Process{PID: bestPID}
			for _, s := range socks {
				if s.name != "" {
					best.Name = s.name
				}
			}
		}
		if best != nil {
			cp := *best
			c.svc.Process = &cp
		}
		if isSSHD(c.svc.Process) || (port == 22 && c.svc.Process == nil) {
			continue
		}
		if c.svc.UID >= 0 && l.uid >= 0 && c.svc.UID == l.uid {
			c.svc.Mine = true
		}
		c.svc.Addrs = uniqueAddrs(c.svc.Addrs)
		c.svc.Scope, c.hosts = dialHosts(c.svc.Addrs)
		if len(c.hosts) > 0 {
			c.svc.DialHost = c.hosts[0]
		}
		c.key = svcKey{port: port}
		if c.svc.Process != nil {
			c.key.pid = c.svc.Process.PID
		} else {
			c.key.inode = inode
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b candidate) int { return cmp.Compare(a.svc.Port, b.svc.Port) })
	return out
}

// earlier orders processes by start time (unknown last), then pid.
func earlier(a, b *Process) bool {
	switch {
	case !a.Started.IsZero() && !b.Started.IsZero() && !a.Started.Equal(b.Started):
		return a.Started.Before(b.Started)
	case a.Started.IsZero() != b.Started.IsZero():
		return !a.Started.IsZero()
	}
	return a.PID < b.PID
}

func uniqueAddrs(as []netip.Addr) []netip.Addr {
	slices.SortFunc(as, func(a, b netip.Addr) int {
		// IPv4 first, then by value.
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
	return slices.Compact(as)
}

// dialHosts says how the addresses a port is bound to can be reached from
// the server itself, best first, and the port's scope. All-interfaces and
// loopback listeners are dialed over loopback (IPv4 first: a "::" socket
// usually takes IPv4 too, and IPv6 may be off); a port bound only to a
// specific address is dialed at that address.
func dialHosts(addrs []netip.Addr) (Scope, []string) {
	var hosts []string
	add := func(h string) {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	any4, any6, loop := false, false, false
	for _, a := range addrs {
		switch {
		case a.Is4() && a.IsUnspecified():
			any4 = true
		case a.IsUnspecified():
			any6 = true
		case a.IsLoopback():
			loop = true
		}
	}
	if any4 {
		add("127.0.0.1")
	}
	for _, a := range addrs { // IPv4 loopback addresses (127.0.0.1, 127.0.0.53…)
		if a.Is4() && a.IsLoopback() {
			add(a.String())
		}
	}
	if any6 {
		add("::1")
		add("127.0.0.1")
	}
	for _, a := range addrs {
		if a.Is6() && a.IsLoopback() {
			add(a.String())
		}
	}
	for _, a := range addrs { // specific addresses
		if !a.IsUnspecified() && !a.IsLoopback() {
			if a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "" {
				continue // undialable without its interface
			}
			add(a.String())
		}
	}
	switch {
	case any4 || any6:
		return ScopeAll, hosts
	case loop:
		return ScopeLoopback, hosts
	}
	return ScopeSpecific, hosts
}
