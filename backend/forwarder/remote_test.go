package forwarder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// syncBuffer is a log sink tests read while the forward writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testLogger(t testing.TB) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("forwarder log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// echoBackend echoes every byte back.
func echoBackend(t testing.TB) (*rawBackend, int) {
	b := newRawBackend(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	_, port := hostPort(t, b.Addr())
	return b, port
}

// freeTCPPort is a port free on every address, IPv4 and IPv6 (a dual-stack
// wildcard bind): sshd binds the wildcard under GatewayPorts yes, and a port
// free on 127.0.0.1 only may be taken on another loopback address (apps'
// per-app 127.N.A.1 endpoints of other tests), which made sshd bind [::]
// alone and 127.0.0.1 refuse.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// echoOnce connects to addr over TCP, sends a line and expects it back.
func echoOnce(addr string, timeout time.Duration) error { return echoOn("tcp", addr, timeout) }

func startRemote(t testing.TB, s *Session, spec RemoteSpec, opts RemoteOptions) *RemoteForward {
	t.Helper()
	f, err := ListenRemote(s, spec, opts)
	if err != nil {
		t.Fatalf("ListenRemote(%v): %v", spec, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func waitListening(t testing.TB, f *RemoteForward, timeout time.Duration) RemoteStatus {
	t.Helper()
	waitFor(t, timeout, "remote forward listening", func() bool { return f.Status().State == RemoteListening })
	return f.Status()
}

// localHolders runs the forward's own findScript on this machine (the
// server side of the tests) and returns the pids holding a socket that
// listens on port.
func localHolders(t testing.TB, port int) []int {
	t.Helper()
	out, err := exec.Command("sh", "-c", shellCommand(findScript, procPort(port), "-")).Output()
	if err != nil {
		t.Fatalf("findScript: %v", err)
	}
	h := parseHolders(out)
	var pids []int
	for pid, inodes := range h.fds {
		for _, ino := range inodes {
			if h.listen[ino] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has ended.
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// remoteSshd starts a real sshd with extra config lines. Commands skip the
// login user's ~/.bashrc (bash sources it for ssh commands only at SHLVL
// < 2): on the test machine root's ~/.bashrc can hang for 60 s on a stale
// pyenv lock, and the forward's server-side scripts are commands.
func remoteSshd(t testing.TB, extra ...string) *testrig.Sshd {
	t.Helper()
	return testrig.NewSshd(t, testrig.SshdOptions{ExtraConfig: append([]string{"SetEnv SHLVL=9"}, extra...)})
}

func sshdSession(t testing.TB, sshd *testrig.Sshd, addr string, opts SessionOptions) *Session {
	t.Helper()
	cfg := sshd.ClientConfig()
	cfg.HostKeyCallback = sshd.PinnedHostKeyCallback()
	s := newSession(t, addr, cfg, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return s
}

// TestRemoteForwardGatewayPorts: the forward is reachable on the server
// side under each GatewayPorts setting, on the addresses sshd chose, and
// a public bind that sshd narrowed to loopback is reported in plain words.
func TestRemoteForwardGatewayPorts(t *testing.T) {
	cases := []struct {
		gateway      string
		bind         string
		reach        []string // server-side addresses that must answer
		unreachable  []string // and must not
		loopbackOnly bool
	}{
		{"no", "", []string{"127.0.0.1"}, []string{"127.0.0.2"}, false},
		{"no", "*", []string{"127.0.0.1"}, []string{"127.0.0.2"}, true},
		{"yes", "*", []string{"127.0.0.1", "127.0.0.2"}, nil, false},
		// GatewayPorts yes binds the wildcard address whatever was asked.
		{"yes", "localhost", []string{"127.0.0.1", "127.0.0.2"}, nil, false},
		{"clientspecified", "127.0.0.2", []string{"127.0.0.2"}, []string{"127.0.0.1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.gateway+"/bind="+tc.bind, func(t *testing.T) {
			sshd := remoteSshd(t, "GatewayPorts "+tc.gateway)
			s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
			_, target := echoBackend(t)
			port := freeTCPPort(t)
			log, _ := testLogger(t)
			f := startRemote(t, s, RemoteSpec{BindAddress: tc.bind, BindPort: port, TargetHost: "127.0.0.1", TargetPort: target}, RemoteOptions{Logger: log})
			st := waitListening(t, f, 20*time.Second)
			if st.Port != port {
				t.Fatalf("Port = %d, want %d", st.Port, port)
			}
			for _, h := range tc.reach {
				if err := echoOnce(net.JoinHostPort(h, strconv.Itoa(port)), 10*time.Second); err != nil {
					t.Fatalf("server side %s:%d: %v", h, port, err)
				}
			}
			for _, h := range tc.unreachable {
				if err := echoOnce(net.JoinHostPort(h, strconv.Itoa(port)), 2*time.Second); err == nil {
					t.Fatalf("server side %s:%d answered; want it unreachable under GatewayPorts %s", h, port, tc.gateway)
				}
			}
			if tc.loopbackOnly {
				waitFor(t, 20*time.Second, "loopback-only report", func() bool { return f.Status().LoopbackOnly })
				if r := f.Status().Reason; !strings.Contains(r, "GatewayPorts no") || !strings.Contains(r, "loopback only") {
					t.Fatalf("reason %q does not explain the loopback-only bind", r)
				}
			} else {
				waitFor(t, 20*time.Second, "the inspection", func() bool { return f.inspected.Load() > 0 })
				if f.Status().LoopbackOnly {
					t.Fatalf("LoopbackOnly reported for %+v", f.Status())
				}
			}
			if got := f.Stats().TotalConns; got < uint64(len(tc.reach)) {
				t.Fatalf("TotalConns = %d, want ≥ %d", got, len(tc.reach))
			}
		})
	}
}

// TestRemoteForwardAllocatedPort: port 0 reports the port the server
// allocated, in the status and the log, and it answers.
func TestRemoteForwardAllocatedPort(t *testing.T) {
	sshd := remoteSshd(t)
	s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
	_, target := echoBackend(t)
	log, buf := testLogger(t)
	f := startRemote(t, s, RemoteSpec{TargetHost: "127.0.0.1", TargetPort: target}, RemoteOptions{Logger: log})
	st := waitListening(t, f, 20*time.Second)
	if st.Port <= 0 {
		t.Fatalf("no allocated port in %+v", st)
	}
	if a := f.Addr().String(); a != "localhost:"+strconv.Itoa(st.Port) {
		t.Fatalf("Addr = %s", a)
	}
	if err := echoOnce(net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Port)), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Allocated port %d for remote forward to 127.0.0.1:%d", st.Port, target)
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("log lacks %q", want)
	}
}

// TestRemoteForwardTargetRefused: a connection whose local target refuses
// is closed cleanly on the server side and counted, and the forward keeps
// working.
func TestRemoteForwardTargetRefused(t *testing.T) {
	sshd := remoteSshd(t)
	s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
	dead := freeTCPPort(t) // nothing listens here
	log, buf := testLogger(t)
	f := startRemote(t, s, RemoteSpec{TargetHost: "127.0.0.1", TargetPort: dead}, RemoteOptions{Logger: log})
	st := waitListening(t, f, 20*time.Second)
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server side connection was left hanging: %v", err)
	}
	waitFor(t, 5*time.Second, "the failure counted", func() bool { return f.Stats().FailedConns == 1 })
	if !strings.Contains(buf.String(), "could not reach the target") {
		t.Fatal("the refusal was not logged")
	}
	if f.Status().State != RemoteListening {
		t.Fatalf("state %v after a refused target", f.Status().State)
	}
}

// TestRemoteForwardRefusedBySshd: AllowTcpForwarding no is reported with
// the setting's name, and the forward keeps trying instead of giving up.
func TestRemoteForwardRefusedBySshd(t *testing.T) {
	for _, line := range []string{"AllowTcpForwarding no", "AllowTcpForwarding local", "PermitListen 1"} {
		t.Run(line, func(t *testing.T) {
			sshd := remoteSshd(t, line)
			s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
			log, _ := testLogger(t)
			f := startRemote(t, s, RemoteSpec{BindPort: freeTCPPort(t), TargetHost: "127.0.0.1", TargetPort: 1},
				RemoteOptions{Logger: log, Retry: Backoff{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond}})
			waitFor(t, 20*time.Second, "refused", func() bool { return f.Status().State == RemoteRefused })
			if r := f.Status().Reason; !strings.Contains(r, "AllowTcpForwarding no/local or a PermitListen rule") {
				t.Fatalf("reason %q names no sshd setting", r)
			}
			// It retries: a later attempt goes through Requesting again.
			since := f.Status().Since
			waitFor(t, 20*time.Second, "another attempt", func() bool { return f.Status().Since.After(since) })
		})
	}
}

// staleRig is a forward through a relay whose flows can be silenced.
type staleRig struct {
	sshd   *testrig.Sshd
	relay  *testrig.Relay
	s      *Session
	events *eventLog
	target int
}

func newStaleRig(t *testing.T) *staleRig {
	sshd := remoteSshd(t)
	relay := testrig.NewRelay(t, sshd.Addr)
	ev := &eventLog{}
	s := sshdSession(t, sshd, relay.Addr(), SessionOptions{KeepaliveInterval: time.Second, Publisher: ev})
	_, target := echoBackend(t)
	return &staleRig{sshd: sshd, relay: relay, s: s, events: ev, target: target}
}

// reconnectedAt is when the Session reconnected after the silence.
func (r *staleRig) reconnectedAt(t *testing.T, after time.Time) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, 60*time.Second, "the session to reconnect", func() bool {
		e, ok := r.events.find(func(e Event) bool { return e.State == StateReady && e.Downtime > 0 && e.Time.After(after) })
		at = e.Time
		return ok
	})
	return at
}

// TestRemoteForwardAfterNetworkChange: after a network change that leaves
// the old flows silent, the server side answers again with no action: the
// keepalive notices, the Session reconnects, and the stale sshd session of
// the old connection, which still holds the port, is found by its client
// address and ended; the port answers within 5 s of the new connection.
// With NoReclaim the forward instead says it waits for the server and the
// stale session is left running.
func TestRemoteForwardAfterNetworkChange(t *testing.T) {
	for _, noReclaim := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoReclaim=%v", noReclaim), func(t *testing.T) {
			r := newStaleRig(t)
			port := freeTCPPort(t)
			log, buf := testLogger(t)
			f := startRemote(t, r.s, RemoteSpec{BindPort: port, TargetHost: "127.0.0.1", TargetPort: r.target, NoReclaim: noReclaim},
				RemoteOptions{Logger: log, Retry: Backoff{Initial: 200 * time.Millisecond, Max: time.Second}})
			waitListening(t, f, 20*time.Second)
			waitFor(t, 20*time.Second, "the inspection", func() bool { return f.inspected.Load() > 0 })
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			if err := echoOnce(addr, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			holders := localHolders(t, port)
			if len(holders) != 1 {
				t.Fatalf("pids listening on %d: %v, want the one sshd session", port, holders)
			}
			stale := holders[0]

			silenced := time.Now()
			r.relay.SilenceFlows()
			back := r.reconnectedAt(t, silenced)

			if noReclaim {
				want := fmt.Sprintf("waiting for the server to release port %d (held by the previous connection)", port)
				waitFor(t, 30*time.Second, "the waiting message", func() bool {
					st := f.Status()
					return st.State == RemoteWaitingPort && st.Reason == want
				})
				if !alive(stale) {
					t.Fatalf("the stale sshd session %d was ended although NoReclaim is set", stale)
				}
				if f.Status().Reclaimed != 0 {
					t.Fatalf("Reclaimed = %d", f.Status().Reclaimed)
				}
				return
			}
			waitFor(t, 60*time.Second, "listening again", func() bool {
				st := f.Status()
				return st.State == RemoteListening && st.Reclaimed > 0
			})
			up := f.Status().Since
			if err := echoOnce(addr, 10*time.Second); err != nil {
				t.Fatalf("server side after the network change: %v", err)
			}
			if d := up.Sub(back); d > 5*time.Second {
				t.Fatalf("the port answered %s after the new connection, want ≤ 5 s", d)
			}
			waitFor(t, 10*time.Second, "the stale session to exit", func() bool { return !alive(stale) })
			if !strings.Contains(buf.String(), fmt.Sprintf("ended the stale sshd session (pid %d)", stale)) {
				t.Fatal("the log does not say which session was ended")
			}
			if f.Status().LastOutage <= 0 {
				t.Fatal("the outage length was not recorded")
			}
			t.Logf("silenced → reconnected %s → listening %s", back.Sub(silenced).Round(time.Millisecond), up.Sub(back).Round(time.Millisecond))
		})
	}
}

// TestRemoteForwardLeavesOtherProcessesAlone: a process of the same user
// that holds a port on the server is never signalled, even after a network
// change when the forward reclaims its other port from its own stale
// session; the forward reports the port in use by that program.
func TestRemoteForwardLeavesOtherProcessesAlone(t *testing.T) {
	r := newStaleRig(t)
	// Another program of the same user holds port B on the server side.
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldPort$")
	holder.Env = append(os.Environ(), "PORTHOLE_HOLD_PORT=1")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		<-exited
	})
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil {
		t.Fatalf("helper: %v", err)
	}
	go func() { exited <- holder.Wait() }()
	portB, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}

	portA := freeTCPPort(t)
	log, _ := testLogger(t)
	opts := RemoteOptions{Logger: log, Retry: Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond}}
	fa := startRemote(t, r.s, RemoteSpec{BindPort: portA, TargetHost: "127.0.0.1", TargetPort: r.target}, opts)
	fb := startRemote(t, r.s, RemoteSpec{BindPort: portB, TargetHost: "127.0.0.1", TargetPort: r.target}, opts)
	waitListening(t, fa, 20*time.Second)
	waitFor(t, 20*time.Second, "the inspection", func() bool { return fa.inspected.Load() > 0 })
	inUse := fmt.Sprintf("port %d is in use on the server by another program (pid %d", portB, holder.Process.Pid)
	waitFor(t, 20*time.Second, "port B reported in use", func() bool { return strings.Contains(fb.Status().Reason, inUse) })

	silenced := time.Now()
	r.relay.SilenceFlows()
	back := r.reconnectedAt(t, silenced)
	waitFor(t, 60*time.Second, "port A reclaimed", func() bool {
		st := fa.Status()
		return st.State == RemoteListening && st.Reclaimed > 0
	})
	// Port B keeps being tried, and diagnosed, on the new connection.
	waitFor(t, 20*time.Second, "port B tried again", func() bool {
		st := fb.Status()
		return st.Since.After(back) && strings.Contains(st.Reason, inUse)
	})
	time.Sleep(time.Second) // a few more attempts
	select {
	case err := <-exited:
		t.Fatalf("the other program exited: %v", err)
	default:
	}
	if !alive(holder.Process.Pid) {
		t.Fatal("the other program is not alive")
	}
	if fb.Status().Reclaimed != 0 {
		t.Fatalf("forward B reclaimed %d", fb.Status().Reclaimed)
	}
	// The sshd daemon (same user here, root) was left alone too.
	cfg := r.sshd.ClientConfig()
	c, err := DialSSH(context.Background(), r.sshd.Addr, cfg)
	if err != nil {
		t.Fatalf("the sshd daemon no longer answers: %v", err)
	}
	_ = c.Close()
}

// TestHelperHoldPort is not a test: run as a child by
// TestRemoteForwardLeavesOtherProcessesAlone, it listens on a free port,
// prints it and waits to be killed.
func TestHelperHoldPort(t *testing.T) {
	if os.Getenv("PORTHOLE_HOLD_PORT") != "1" {
		t.Skip("helper process")
	}
	// Both loopbacks: sshd binds "localhost" on each and succeeds if any works.
	var port int
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(3)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		if _, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port))); err == nil || strings.Contains(err.Error(), "cannot assign") {
			break
		}
		_ = ln.Close()
	}
	fmt.Printf("%6d", port)
	time.Sleep(10 * time.Minute)
	os.Exit(0)
}

func TestProcAddrs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"127.0.0.1:8080", []string{"0100007F:1F90", "0000000000000000FFFF00000100007F:1F90"}},
		{"10.1.2.3:22", []string{"0302010A:0016", "0000000000000000FFFF00000302010A:0016"}},
		{"[::1]:443", []string{"00000000000000000000000001000000:01BB"}},
		{"[2001:db8::5]:1", []string{"B80D0120000000000000000005000000:0001"}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tc.in)
			got := procAddrs(ap)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("procAddrs = %v, want %v", got, tc.want)
			}
			for _, s := range got {
				back, err := parseProcAddr(s)
				if err != nil || back != ap {
					t.Fatalf("parseProcAddr(%q) = %v, %v; want %v", s, back, err, ap)
				}
			}
		})
	}
}

func FuzzParseProcAddr(f *testing.F) {
	for _, s := range []string{"0100007F:1F90", "0000000000000000FFFF00000100007F:1F90", "00000000000000000000000001000000:01BB", "", ":", "zz:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parseProcAddr(s)
		if err != nil {
			return
		}
		found := false
		for _, again := range procAddrs(ap) {
			if back, err := parseProcAddr(again); err != nil || back != ap {
				t.Fatalf("%q → %v → %q → %v, %v", s, ap, again, back, err)
			}
			found = true
		}
		if !found {
			t.Fatalf("no form for %v", ap)
		}
	})
}

var holdersCases = []struct {
	name   string
	out    string
	stale  []int
	others int
}{
	{"own stale session", "uid 1000\nlisten 111 1000 0100007F:1F90\npeer 222 1000 0100007F:9C40\nfd 50 111\nfd 50 222\nfd 49 222\nproc 50 1000 sshd\nproc 49 0 sshd\n", []int{50}, 0},
	{"other program", "uid 1000\nlisten 111 1000 0100007F:1F90\nfd 60 111\nproc 60 1000 python3\n", nil, 1},
	{"peer but no port", "uid 1000\nlisten 111 1000 0100007F:1F90\npeer 222 1000 0100007F:9C40\nfd 70 222\nproc 70 1000 sshd\n", nil, 0},
	{"other user", "uid 1000\nlisten 111 0 0100007F:1F90\npeer 222 0 0100007F:9C40\nfd 80 111\nfd 80 222\nproc 80 0 sshd\n", nil, 1},
	{"unknown uid", "listen 111 0 0100007F:1F90\npeer 222 0 0100007F:9C40\nfd 80 111\nfd 80 222\nproc 80 0 sshd\n", nil, 1},
	{"garbage", "fd x y\nproc\nlisten a b c\n\x00", nil, 0},
}

func TestParseHolders(t *testing.T) {
	for _, tc := range holdersCases {
		t.Run(tc.name, func(t *testing.T) {
			h := parseHolders([]byte(tc.out))
			st := h.stale()
			if len(st) != len(tc.stale) {
				t.Fatalf("stale = %v, want %v", st, tc.stale)
			}
			for _, pid := range tc.stale {
				if _, ok := st[pid]; !ok {
					t.Fatalf("stale = %v, want %v", st, tc.stale)
				}
			}
			if o := h.others(st); len(o) != tc.others {
				t.Fatalf("others = %v, want %d", o, tc.others)
			}
		})
	}
}

func FuzzParseHolders(f *testing.F) {
	for _, tc := range holdersCases {
		f.Add(tc.out)
	}
	f.Fuzz(func(t *testing.T, out string) {
		h := parseHolders([]byte(out))
		for pid, ino := range h.stale() {
			if !h.listen[ino] || h.procs[pid].uid != h.uid || h.uid == "" {
				t.Fatalf("stale pid %d (inode %s) does not hold the port as the login user", pid, ino)
			}
		}
		_ = parseInfo([]byte(out))
	})
}

func TestParseRemoteSpec(t *testing.T) {
	cases := []struct {
		in   string
		want RemoteSpec
		bad  string
	}{
		{"8080:localhost:80", RemoteSpec{BindPort: 8080, TargetHost: "localhost", TargetPort: 80}, ""},
		{"*:8080:h:80", RemoteSpec{BindAddress: "*", BindPort: 8080, TargetHost: "h", TargetPort: 80}, ""},
		{":8080:h:80", RemoteSpec{BindAddress: "*", BindPort: 8080, TargetHost: "h", TargetPort: 80}, ""},
		{"0:h:80", RemoteSpec{TargetHost: "h", TargetPort: 80}, ""},
		{"[::1]:9000:[::1]:80", RemoteSpec{BindAddress: "::1", BindPort: 9000, TargetHost: "::1", TargetPort: 80}, ""},
		{"8080", RemoteSpec{}, "want 3 or 4"},
		{"8080:h:0", RemoteSpec{}, "target port"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRemoteSpec(tc.in)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) || !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), remoteSpecForm) {
					t.Fatalf("ParseRemoteSpec(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.bad)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRemoteSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if again, err := ParseRemoteSpec(got.String()); err != nil || again != got {
				t.Fatalf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func FuzzParseRemoteSpec(f *testing.F) {
	for _, s := range []string{"8080:localhost:80", "*:8080:h:80", ":1:h:2", "[::1]:3:[::1]:4", "0:h:1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseRemoteSpec(spec)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed %q into an invalid spec: %v", spec, err)
		}
		again, err := ParseRemoteSpec(s.String())
		if err != nil || again != s {
			t.Fatalf("round trip %q → %q: %+v, %v", spec, s.String(), again, err)
		}
	})
}
