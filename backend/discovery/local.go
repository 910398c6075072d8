package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	gnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"
)

// LocalSource lists and identifies the listeners of this computer, with the
// same Service records as a Scanner (Local set: open them directly at
// http://DialHost:Port). It lists through gopsutil, probes over loopback
// with a plain net.Dialer and, like a Scanner, probes only new listeners.
type LocalSource struct {
	s *Scanner
}

// NewLocalSource returns a LocalSource. Set opts.Skip to hide Porthole's
// own listeners.
func NewLocalSource(opts Options) *LocalSource {
	opts = opts.withDefaults()
	s := newScanner(netDialer{}, opts)
	s.local = true
	s.list = localListing
	return &LocalSource{s: s}
}

// Scan lists this computer's listening TCP ports and identifies them, sorted
// by port; see Scanner.Scan.
func (l *LocalSource) Scan(ctx context.Context) ([]Service, error) { return l.s.Scan(ctx) }

// netDialer dials on this computer.
type netDialer struct{}

func (netDialer) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
}

// localListing lists this computer's listening sockets with gopsutil.
func localListing(ctx context.Context) (*listing, error) {
	conns, err := gnet.ConnectionsWithContext(ctx, "tcp")
	if err != nil {
		return nil, fmt.Errorf("list this computer's TCP sockets: %w", err)
	}
	l := &listing{source: SourceLocal, now: time.Now(), uid: os.Getuid(), procs: map[int]*Process{}}
	l.home, _ = os.UserHomeDir()
	uids := map[int]int{}
	for _, c := range conns {
		if c.Status != "LISTEN" {
			continue
		}
		addr, ok := localAddr(c.Laddr.IP, c.Family)
		if !ok || c.Laddr.Port == 0 || c.Laddr.Port > 65535 {
			continue
		}
		s := sockEntry{addr: addr, port: int(c.Laddr.Port), uid: -1}
		if len(c.Uids) > 0 {
			s.uid = int(c.Uids[0])
		}
		if pid := int(c.Pid); pid > 0 {
			s.pids = []int{pid}
			if _, seen := l.procs[pid]; !seen {
				p, uid := localProcess(ctx, int32(pid))
				l.procs[pid] = p
				uids[pid] = uid
			}
			if s.uid < 0 {
				s.uid = uids[pid]
			}
		}
		l.sockets = append(l.sockets, s)
	}
	return l, nil
}

// localAddr parses gopsutil's address text ("127.0.0.1", "::", "*", "").
func localAddr(ip string, family uint32) (netip.Addr, bool) {
	if ip == "" || ip == "*" {
		if family == syscall.AF_INET6 {
			return netip.IPv6Unspecified(), true
		}
		return netip.IPv4Unspecified(), true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// localProcess reads what gopsutil can tell about pid; fields it cannot
// read (another user's process) stay empty. uid is -1 when unknown.
func localProcess(ctx context.Context, pid int32) (*Process, int) {
	p := &Process{PID: int(pid)}
	uid := -1
	proc, err := process.NewProcessWithContext(ctx, pid)
	if err != nil {
		return p, uid
	}
	p.Name, _ = proc.NameWithContext(ctx)
	p.Cmdline, _ = proc.CmdlineWithContext(ctx)
	p.Cwd, _ = proc.CwdWithContext(ctx)
	p.Exe, _ = proc.ExeWithContext(ctx)
	if ms, err := proc.CreateTimeWithContext(ctx); err == nil && ms > 0 {
		p.Started = time.UnixMilli(ms)
	}
	if us, err := proc.UidsWithContext(ctx); err == nil && len(us) > 0 {
		uid = int(us[0])
	}
	return p, uid
}
