package faults

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/internal/testrig"
)

// The fault matrix. Each row injects one fault into the whole path and
// checks that Porthole works again without any action (or shows a clear
// state), and that no request hangs: every request has a deadline. Rows
// covered elsewhere: a corrupted profiles file (profiles.TestStoreCorruptFile,
// ui.TestBrokenProfilesFileStillStarts), an agent killed with the in-process
// server (agent.TestKill9Agent, TestKill9AgentWebForward), the forwarder
// alone behind the relay (forwarder.TestFaultsThroughRelay).

// during runs a GET through every forward while a fault lasts; wait
// returns their errors once they all ended (each within its deadline).
func during(r *rig, timeout time.Duration) (wait func() []error) {
	var wg sync.WaitGroup
	errs := make([]error, len(r.forwards()))
	for i, a := range r.forwards() {
		wg.Go(func() { errs[i] = get(a, timeout) })
	}
	return func() []error { wg.Wait(); return errs }
}

// TestFaultBlackout1s: a one-second blackout (nothing flows, nothing
// closes) is invisible: requests made during it complete after it.
func TestFaultBlackout1s(t *testing.T) {
	r := newRig(t, rigOptions{})
	flows := r.relay.Stats().TotalFlows
	r.relay.Blackhole()
	wait := during(r, 20*time.Second)
	time.Sleep(time.Second)
	r.relay.Resume()
	for i, err := range wait() {
		if err != nil {
			t.Errorf("GET through %s started during the blackout: %v", r.forwards()[i], err)
		}
	}
	r.mustWork(t, "after the blackout")
	t.Logf("SSH connections through the relay: %d before, %d after", flows, r.relay.Stats().TotalFlows)
}

// TestFaultBlackout20s: a blackout longer than the dead-connection
// threshold (a 20 s one with the default thresholds; here 4 s with a 500 ms
// ping timeout, so the test stays fast): the requests during it end within
// their deadline, the login notices, and once the network is back it
// reconnects on its own.
func TestFaultBlackout20s(t *testing.T) {
	r := newRig(t, rigOptions{session: agent.SessionSettings{
		PingTimeout: 500 * time.Millisecond, PingIdleThreshold: 200 * time.Millisecond, ConnectTimeout: 2 * time.Second,
	}})
	flows := r.relay.Stats().TotalFlows
	r.relay.Blackhole()
	start := time.Now()
	for time.Since(start) < 4*time.Second {
		wait := during(r, 3*time.Second)
		for i, err := range wait() {
			t.Logf("GET through %s during the blackout: %v", r.forwards()[i], err)
		}
	}
	if st := r.login.State(); st.State == forwarder.StateReady {
		t.Errorf("after %v of blackout the login still says %+v", time.Since(start).Round(time.Millisecond), st)
	} else {
		t.Logf("state during the blackout: %s (%s)", st.State, st.Reason)
	}
	r.relay.Resume()
	r.worksAgain(t, 30*time.Second, "after the blackout")
	if n := r.relay.Stats().TotalFlows; n <= flows {
		t.Errorf("no new SSH connection after a blackout longer than the ping timeout (%d flows)", n)
	}
}

// fakeClock is a WakeClock whose wall clock can jump (the machine slept).
type fakeClock struct {
	mu   sync.Mutex
	skew time.Duration
	base *forwarder.SystemClock
}

func (c *fakeClock) Wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Wall().Add(c.skew)
}
func (c *fakeClock) Mono() time.Duration { return c.base.Mono() }
func (c *fakeClock) jump(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	c.mu.Unlock()
}

// TestFaultSleepMinutes: the laptop slept for minutes (simulated: the wall
// clock jumps 10 min past the monotonic one) and woke on a network where
// the old connection is silently gone. The wake detector marks the session
// suspect, so the next request pings, gives up on the dead connection and
// rides a new one, well within its deadline. The Session runs in this
// process (the agent's own clock cannot be moved), through the relay and
// the real sshd.
func TestFaultSleepMinutes(t *testing.T) {
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	relay := testrig.NewRelay(t, sshd.Addr)
	web := testrig.NewWebApp(t)
	cfg := sshd.ClientConfig()
	cfg.HostKeyCallback = sshd.PinnedHostKeyCallback()
	s := forwarder.NewSession(forwarder.SSHConnector{Addr: relay.Addr(), Config: cfg}, forwarder.SessionOptions{
		Name: "sleepy", ConnectTimeout: 5 * time.Second, PingIdleThreshold: -1, // only the wake makes it ping
	})
	t.Cleanup(func() { _ = s.Close() })
	fwd, err := forwarder.ListenLocal(forwarder.LocalSpec{BindAddress: "127.0.0.1", TargetHost: "127.0.0.1", TargetPort: web.Port()}, s, forwarder.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	clock := &fakeClock{base: forwarder.NewSystemClock()}
	wake := forwarder.NewWakeDetector(forwarder.WakeOptions{Clock: clock, NoDBus: true})
	t.Cleanup(func() { _ = wake.Close() })
	unregister := wake.Register(s)
	t.Cleanup(unregister)
	wake.Check() // the first reading
	addr := fwd.Addr().String()
	if err := get(addr, 15*time.Second); err != nil {
		t.Fatalf("GET before the sleep: %v", err)
	}
	flows := relay.Stats().TotalFlows

	relay.Blackhole()    // asleep
	relay.SilenceFlows() // … and the old network's flows are gone without a reset
	relay.Resume()       // awake on the new network
	clock.jump(10 * time.Minute)
	if !wake.Check() {
		t.Fatal("the wake detector did not notice a 10 min clock jump")
	}
	start := time.Now()
	if err := get(addr, 20*time.Second); err != nil {
		t.Fatalf("GET after the wake: %v", err)
	}
	took := time.Since(start)
	t.Logf("first GET after the wake took %v", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the first GET after the wake took %v, want well under its deadline", took)
	}
	if n := relay.Stats().TotalFlows; n <= flows {
		t.Errorf("the dead connection was not replaced (%d flows)", n)
	}
}

// TestFaultNetworkChange: the network changed; old flows are reset, or go
// silent (the usual case); new flows work. The next requests work.
func TestFaultNetworkChange(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*testrig.Relay)
	}{
		{"reset", (*testrig.Relay).CutFlows},
		{"silent", (*testrig.Relay).SilenceFlows},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOptions{})
			flows := r.relay.Stats().TotalFlows
			tc.fault(r.relay)
			r.worksAgain(t, 30*time.Second, "after the network change")
			if n := r.relay.Stats().TotalFlows; n <= flows {
				t.Errorf("no new SSH connection (%d flows)", n)
			}
		})
	}
}

// TestFaultSshdRestarted: sshd restarts (its connections die with it);
// the login reconnects on its own.
func TestFaultSshdRestarted(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.sshd.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	r.worksAgain(t, 30*time.Second, "after sshd restarted")
}

// cpuWindow measures the CPU time this process and pid use during d.
func cpuWindow(t *testing.T, pid int, d time.Duration, meanwhile func()) (self, child time.Duration) {
	t.Helper()
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	c0 := procCPU(t, pid)
	done := make(chan struct{})
	go func() {
		defer close(done)
		meanwhile()
	}()
	time.Sleep(d)
	<-done
	c1 := procCPU(t, pid)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	tv := func(ru unix.Rusage) time.Duration {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return tv(ru1) - tv(ru0), c1 - c0
}

// TestFaultSshdGone: sshd goes away for good. Requests end with a clear
// answer within the forward's dial timeout (the web forward: 503
// "unreachable"; the raw forward closes), the login says it cannot reach
// the server, retries are spaced by backoff, and neither the app nor the
// agent spins (each uses less than 20 % of a core over 10 s). When sshd
// comes back, it works again without any action.
func TestFaultSshdGone(t *testing.T) {
	// No relay: a relay that accepts and then resets would make it look
	// like a broken handshake rather than a server that is down.
	r := newRig(t, rigOptions{noRelay: true})
	var attempts atomic.Int64 // failed connection attempts
	unsub := r.login.Subscribe(func(e agent.Event) {
		if e.Kind == agent.EventState && e.State != nil && e.State.State == forwarder.StateFailed {
			attempts.Add(1)
		}
	})
	defer unsub()
	if err := r.sshd.Stop(); err != nil {
		t.Fatal(err)
	}
	pid := r.login.Process().PID
	const window = 10 * time.Second
	type answer struct {
		fwd    string
		took   time.Duration
		status int
		header string
		err    error
	}
	answers := make(chan answer, 100)
	var wg sync.WaitGroup
	self, child := cpuWindow(t, pid, window, func() {
		// Some demand: a request through each forward every 2 s, for 6 s
		// (each waits up to the forward's 20 s dial timeout).
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Second) {
			for _, a := range r.forwards() {
				wg.Go(func() {
					start := time.Now()
					status, header, err := fetch(a, 30*time.Second)
					answers <- answer{a, time.Since(start), status, header, err}
				})
			}
		}
	})
	tries := attempts.Load()
	st := r.login.State()
	wg.Wait()
	close(answers)
	t.Logf("over %v with sshd gone: app CPU %v, agent CPU %v, %d connection attempts", window, self.Round(time.Millisecond), child.Round(time.Millisecond), tries)
	limit := window / 5
	if self > limit {
		t.Errorf("the app used %v of CPU in %v with sshd gone, want < %v (20 %% of a core)", self, window, limit)
	}
	if child > limit {
		t.Errorf("the agent used %v of CPU in %v with sshd gone, want < %v (20 %% of a core)", child, window, limit)
	}
	if tries > 20 {
		t.Errorf("%d failed connection attempts in %v: no backoff?", tries, window)
	}
	for a := range answers {
		t.Logf("%s: %v: %d %q %v", a.fwd, a.took.Round(time.Millisecond), a.status, a.header, a.err)
		switch {
		case a.err == nil:
			t.Errorf("GET through %s succeeded with sshd gone", a.fwd)
		case a.took > 25*time.Second:
			t.Errorf("GET through %s took %v to fail", a.fwd, a.took)
		case a.fwd == r.webFwd && (a.status != 503 || a.header != "unreachable"):
			t.Errorf("the web forward answered %d %q, want 503 unreachable", a.status, a.header)
		}
	}
	t.Logf("state with sshd gone: %s (%s): %s", st.State, st.Reason, st.Error)
	if st.State != forwarder.StateFailed && st.State != forwarder.StateReconnecting || !strings.Contains(st.Error, "unreachable") {
		t.Errorf("state with sshd gone = %+v, want failed or reconnecting, saying the host is unreachable", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.sshd.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	r.worksAgain(t, 30*time.Second, "after sshd came back")
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// TestFaultAgentKilled: the agent is killed (SIGKILL); a new one serves
// both forwards on the same ports and reconnects to sshd.
func TestFaultAgentKilled(t *testing.T) {
	r := newRig(t, rigOptions{})
	old := r.login.Process().PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.worksAgain(t, 30*time.Second, "after the agent was killed")
	if pi := r.login.Process(); pi.PID == old || pi.Restarts != 1 {
		t.Errorf("Process() = %+v, want a new agent", pi)
	}
}

// TestFaultAgentHung: the agent stops (SIGSTOP); the Supervisor's health
// ping notices, kills it and starts a new one on the same ports.
func TestFaultAgentHung(t *testing.T) {
	r := newRig(t, rigOptions{supervisor: agent.SupervisorOptions{
		HealthInterval: 200 * time.Millisecond, HealthTimeout: 500 * time.Millisecond, HealthMisses: 3,
	}})
	old := r.login.Process().PID
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(old, syscall.SIGCONT) })
	r.worksAgain(t, 30*time.Second, "after the agent hung")
	pi := r.login.Process()
	if pi.PID == old || pi.Restarts != 1 {
		t.Errorf("Process() = %+v, want a new agent", pi)
	}
	if !strings.Contains(r.logs.String(), "the agent stopped answering for") {
		t.Errorf("the log does not say the agent stopped answering")
	}
}

// asUnprivileged runs fn on an OS thread that dropped root's power over
// file permissions (capabilities are per thread on Linux), so a read-only
// directory is read-only even for root.
func asUnprivileged(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		fn()
		return
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		for _, c := range []uint{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER} {
			data[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Skipf("cannot drop root's file capabilities: %v", err)
	}
}

// TestFaultReadOnlyConfigDir: saving a profile into a read-only config
// directory fails with an error that says what to do; the saved profiles
// stay as they were (on disk and in the store), and once the directory is
// writable again saving works.
func TestFaultReadOnlyConfigDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "porthole")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "profiles.json")
	s, err := profiles.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Add(profiles.Profile{Name: "first", Host: "example.org", Port: 22})
	if err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

	var addErr, updErr error
	asUnprivileged(t, func() {
		_, addErr = s.Add(profiles.Profile{Name: "second", Host: "example.net", Port: 22})
		changed := first
		changed.Host = "changed.example.org"
		updErr = s.Update(changed)
	})
	for name, err := range map[string]error{"Add": addErr, "Update": updErr} {
		if err == nil {
			t.Fatalf("%s into a read-only directory succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "writable") {
			t.Errorf("%s error = %v; want a permission error naming %s and saying to make it writable", name, err, dir)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != string(saved) {
		t.Errorf("the profiles file changed:\n%s\nwant:\n%s", got, saved)
	}
	if list := s.List(); len(list) != 1 || list[0].Host != "example.org" {
		t.Errorf("the store holds %+v after failed saves, want only the first profile, unchanged", list)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("a temporary file was left behind: %s", e.Name())
		}
	}

	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(profiles.Profile{Name: "second", Host: "example.net", Port: 22}); err != nil {
		t.Fatalf("Add once the directory is writable: %v", err)
	}
	again, err := profiles.Open(path, nil)
	if err != nil || len(again.List()) != 2 {
		t.Fatalf("reopened store: %v, %+v", err, again.List())
	}
}
