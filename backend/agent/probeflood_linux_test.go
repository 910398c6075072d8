package agent

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/internal/testrig"
)

// floodQuiet is how long the login stays connected after the listing while
// the sshd port's connections are counted. The issue asks for a minute; 15 s
// is enough to see a pool refill loop (it refilled within 4 s, about twice a
// second) and keeps the test short.
const floodQuiet = 15 * time.Second

// One listing of a server whose own sshd port is among its listeners (as on
// every real server), then a connected period: the sshd port gets exactly
// one connection, the probe's. Discovery's probes used to be the pool's
// demand: one listing opened 15–22 unauthenticated connections to sshd
// within a second and then about 2 a second while connected, and sshd's
// MaxStartups throttling dropped other people's logins. Real OpenSSH sshd;
// the listener discovery finds and probes is a relay in front of sshd's
// port, which counts the connections that come from this test's sshd (other
// tests on this machine probe every listener of this user too).
func TestListingDoesNotFloodSshd(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a connected period")
	}
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	relay := newOwnRelay(t, sshd.Addr)
	// testrig's start-up check read sshd's banner and hung up: one line.
	kex := func() int { return strings.Count(sshd.Log(), "kex_exchange_identification") }
	waitUntil(5*time.Second, func() bool { return kex() >= 1 })
	kexBefore := kex()
	_, ps, _ := net.SplitHostPort(relay.ln.Addr().String())
	port, _ := strconv.Atoi(ps)

	logs := &logBuffer{}
	l, err := NewLocalLogin(LoginSpec{
		ID: "flood", Name: "flood", Host: sshd.Host, Port: sshd.Port, User: sshd.User,
		AuthMethods: []AuthMethod{AuthKey}, IdentityFiles: []string{sshd.ClientKeyPath},
		SSHConfigPath: "none", HomeDir: t.TempDir(), KnownHostsFiles: []string{sshd.KnownHostsPath}, AgentSocket: "none",
		Session: SessionSettings{StatsInterval: -1, ConnectTimeout: 20 * time.Second},
	}, Secrets{}, nil, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.Close()
		if t.Failed() {
			t.Logf("login log:\n%s\nsshd log:\n%s", logs.String(), sshd.Log())
		}
	})
	// The listing probes only the relay's port (the rest of this machine's
	// listeners belong to other tests).
	sc := discovery.NewScanner(l, ProbeDialer{Login: l}, discovery.Options{
		Logger: logs.logger(),
		Skip:   func(s discovery.Service) bool { return s.Port != port },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svcs, err := sc.Scan(ctx)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	var found *discovery.Service
	for i := range svcs {
		if svcs[i].Port == port {
			found = &svcs[i]
		}
	}
	if found == nil || found.Probe.Protocol != discovery.ProtoSSH {
		t.Fatalf("the listing did not find sshd behind port %d: %+v", port, svcs)
	}
	time.Sleep(floodQuiet) // connected, nothing else to do: what does the pool open?
	if st := l.State().State; st != forwarder.StateReady {
		t.Fatalf("the login is %v after the quiet period, want it still connected", st)
	}
	own, other := relay.own.Load(), relay.other.Load()
	t.Logf("connections to the relayed sshd port: %d from this test's sshd (or gone before they could be looked up), %d from other processes (other tests' listings)", own, other)
	if own != 1 {
		t.Fatalf("sshd's port got %d connections from one listing and %s connected; want 1 (the probe)", own, floodQuiet)
	}
	// sshd's own word for it: each connection that never said a word. The
	// relay's other connections reach it too.
	if n := kex() - kexBefore; n > 1+int(other) {
		t.Fatalf("sshd logged %d kex_exchange_identification lines; want at most 1 (the probe's) + %d (other tests')", n, other)
	}
}

// ownRelay forwards each connection to target, counting those that come
// from a process this test started (own) apart from the rest (other). The
// peer is looked up before a byte is relayed, so it is still connected.
type ownRelay struct {
	ln         net.Listener
	target     string
	own, other atomic.Int64
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[net.Conn]struct{}
}

func newOwnRelay(t *testing.T, target string) *ownRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &ownRelay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.track(c, true)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *ownRelay) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.conns[c] = struct{}{}
	} else {
		delete(r.conns, c)
	}
}

func (r *ownRelay) serve(c net.Conn) {
	defer r.track(c, false)
	defer c.Close()
	// A peer that is gone already cannot be looked up: it counts as ours
	// (the pool's refills used to close at once; another test's probe waits
	// for its answer, which the relay has not passed on yet).
	if pid := peerPID(c); pid <= 0 || testrig.DescendsFromThisProcess(pid) {
		r.own.Add(1)
	} else {
		r.other.Add(1)
	}
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	r.track(up, true)
	defer r.track(up, false)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close()
	<-done
}

// peerPID finds the process holding the other end of a loopback TCP
// connection: its socket's inode in /proc/net/tcp, then the process with
// that inode among its fds. 0 if not found.
func peerPID(c net.Conn) int {
	peer, local := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
	hex := func(a *net.TCPAddr) string {
		ip4 := a.IP.To4()
		if ip4 == nil {
			return ""
		}
		return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(ip4), a.Port)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	inode := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == hex(peer) && f[2] == hex(local) {
			inode = f[9]
		}
	}
	if inode == "" || inode == "0" {
		return 0
	}
	want := "socket:[" + inode + "]"
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == want {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}
