package discovery

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestBuildCandidatesProc(t *testing.T) {
	l, err := parseListing([]byte(procListing), nil)
	if err != nil {
		t.Fatal(err)
	}
	cands := buildCandidates(l)
	var got []string
	for _, c := range cands {
		pid := 0
		if c.svc.Process != nil {
			pid = c.svc.Process.PID
		}
		got = append(got, fmt.Sprintf("%d %v %s %s pid=%d uid=%d mine=%v hosts=%s",
			c.svc.Port, c.svc.Addrs, c.svc.Scope, c.svc.DialHost, pid, c.svc.UID, c.svc.Mine, strings.Join(c.hosts, ",")))
	}
	want := []string{
		// The forking server's parent (started first), not its worker.
		"5000 [127.0.0.1] loopback 127.0.0.1 pid=4444 uid=1000 mine=true hosts=127.0.0.1",
		// Another user's server: kept, no process.
		"5432 [127.0.0.1 ::1] loopback 127.0.0.1 pid=0 uid=115 mine=false hosts=127.0.0.1,::1",
		// The v4/v6 pair is one service.
		"6006 [0.0.0.0 ::] all 127.0.0.1 pid=4343 uid=1000 mine=true hosts=127.0.0.1,::1",
		// A specific address is dialed at that address.
		"8080 [10.0.0.5] specific 10.0.0.5 pid=4546 uid=1000 mine=true hosts=10.0.0.5",
		"8888 [127.0.0.1] loopback 127.0.0.1 pid=4242 uid=1000 mine=true hosts=127.0.0.1",
		// Port 22 (sshd, root's) is dropped.
	}
	if !slices.Equal(got, want) {
		t.Errorf("candidates:\n got %q\nwant %q", got, want)
	}
	for _, c := range cands {
		if c.svc.Process == nil && c.key.inode != 22222 {
			t.Errorf("port %d: key %+v, want the inode standing in for the unknown process", c.svc.Port, c.key)
		}
		if c.svc.Process != nil && (c.key.pid != c.svc.Process.PID || c.key.inode != 0) {
			t.Errorf("port %d: key %+v", c.svc.Port, c.key)
		}
	}
}

func TestBuildCandidatesLsof(t *testing.T) {
	l, err := parseListing([]byte(lsofListing), nil)
	if err != nil {
		t.Fatal(err)
	}
	cands := buildCandidates(l)
	if len(cands) != 3 {
		t.Fatalf("%d candidates, want 3 (7000, 5432, 8888)", len(cands))
	}
	for _, c := range cands {
		switch c.svc.Port {
		case 5432:
			if c.svc.Mine || c.svc.Process == nil || c.svc.Process.Name != "postgres" {
				t.Errorf("5432: %+v", c.svc)
			}
		case 8888:
			if !c.svc.Mine || c.svc.Process.Cwd != "/Users/alice/project" || !slices.Equal(c.hosts, []string{"127.0.0.1", "::1"}) {
				t.Errorf("8888: %+v hosts %v", c.svc, c.hosts)
			}
		}
	}
}

func TestBuildCandidatesSSHD(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name string
		port int
		proc *Process
		kept bool
	}{
		{"sshd listener", 2222, &Process{PID: 10, Name: "sshd", Cmdline: "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"}, false},
		{"sshd forwarded port", 6010, &Process{PID: 11, Name: "sshd-session", Cmdline: "sshd-session: alice@pts/0"}, false},
		{"sshd by cmdline", 6011, &Process{PID: 12, Name: "sshd: alice", Cmdline: "sshd: alice@notty"}, false},
		{"port 22 unknown process", 22, nil, false},
		{"port 22 known non-sshd", 22, &Process{PID: 13, Name: "gitea"}, true},
		{"dropbear elsewhere is listed", 2022, &Process{PID: 14, Name: "dropbear"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &listing{uid: 1000, procs: map[int]*Process{}}
			s := sockEntry{addr: v4, port: tc.port, uid: 1000}
			if tc.proc != nil {
				l.procs[tc.proc.PID] = tc.proc
				s.pids = []int{tc.proc.PID}
			}
			l.sockets = []sockEntry{s}
			if got := len(buildCandidates(l)) == 1; got != tc.kept {
				t.Errorf("kept = %v, want %v", got, tc.kept)
			}
		})
	}
}

func TestDialHosts(t *testing.T) {
	for _, tc := range []struct {
		addrs string
		scope Scope
		hosts string
	}{
		{"127.0.0.1", ScopeLoopback, "127.0.0.1"},
		{"::1", ScopeLoopback, "::1"},
		{"127.0.0.1 ::1", ScopeLoopback, "127.0.0.1,::1"},
		{"0.0.0.0", ScopeAll, "127.0.0.1"},
		{"::", ScopeAll, "::1,127.0.0.1"},
		{"0.0.0.0 ::", ScopeAll, "127.0.0.1,::1"},
		{"127.0.0.53", ScopeLoopback, "127.0.0.53"},
		{"192.168.1.5", ScopeSpecific, "192.168.1.5"},
		{"192.168.1.5 127.0.0.1", ScopeLoopback, "127.0.0.1,192.168.1.5"},
		{"2001:db8::1", ScopeSpecific, "2001:db8::1"},
		{"fe80::1", ScopeSpecific, ""},
		{"fe80::1%eth0", ScopeSpecific, "fe80::1%eth0"},
	} {
		t.Run(tc.addrs, func(t *testing.T) {
			var as []netip.Addr
			for _, s := range strings.Fields(tc.addrs) {
				as = append(as, netip.MustParseAddr(s))
			}
			scope, hosts := dialHosts(uniqueAddrs(as))
			if scope != tc.scope || strings.Join(hosts, ",") != tc.hosts {
				t.Errorf("= %v %q, want %v %q", scope, hosts, tc.scope, tc.hosts)
			}
		})
	}
}
