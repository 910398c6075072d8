//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/internal/testrig"
)

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func readProc(t *testing.T, pid int, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), name))
	if err != nil {
		t.Fatalf("read /proc/%d/%s: %v", pid, name, err)
	}
	return b
}

// TestKill9App: when the app is killed with SIGKILL, its agents and their
// listeners are gone within a second.
func TestKill9App(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envTestSupervisor+"=1", raceEnv)
	stdin, err := cmd.StdinPipe() // held open: the app lives until killed
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("the app did not start its agent; stderr:\n%s", stderr.String())
	}
	var pid int
	var addr string
	if _, err := fmt.Sscanf(line, "READY %d %s", &pid, &addr); err != nil {
		t.Fatalf("bad line %q: %v", line, err)
	}
	t.Cleanup(func() {
		if processAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if !processAlive(pid) {
		t.Fatalf("agent %d is not running", pid)
	}
	if ppid := parentOf(t, pid); ppid != cmd.Process.Pid {
		t.Fatalf("agent %d's parent is %d, want the app %d", pid, ppid, cmd.Process.Pid)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the agent's forward does not listen on %s: %v", addr, err)
	}
	c.Close()

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	listening := func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	gone := waitUntil(time.Second, func() bool { return !processAlive(pid) && !listening() })
	t.Logf("agent gone %v after the app was killed", time.Since(start).Round(time.Millisecond))
	if !gone {
		t.Fatalf("1 s after SIGKILL of the app: agent alive %v, %s listening %v", processAlive(pid), addr, listening())
	}
}

func parentOf(t *testing.T, pid int) int {
	s := string(readProc(t, pid, "stat"))
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestKill9Agent: a killed agent is back within a second, its forward
// answers on the same port, and the login's subscribers hear about it.
func TestKill9Agent(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	sup, logs := testSupervisor(t, SupervisorOptions{})
	l := startRemote(t, sup, r.spec("crashy", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
	rec := record(l)
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	addr := st.Forwards[0].Addr
	mustGet(t, addr, "/small")

	// The restart must take under a second; one slow run on a loaded
	// machine gets a second chance before the test fails.
	var took time.Duration
	for attempt := 1; attempt <= 2; attempt++ {
		old := l.Process().PID
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ok := waitUntil(10*time.Second, func() bool {
			p := l.Process()
			if p.PID == 0 || p.PID == old {
				return false
			}
			_, err := get(addr, "/small", time.Second)
			return err == nil
		})
		took = time.Since(start)
		if !ok {
			t.Fatalf("the forward on %s did not answer within 10 s of killing agent %d", addr, old)
		}
		t.Logf("attempt %d: agent %d killed; %s answers again after %v (new agent %d)", attempt, old, addr, took.Round(time.Millisecond), l.Process().PID)
		if processAlive(old) {
			t.Errorf("the killed agent %d was not reaped", old)
		}
		if took <= time.Second {
			break
		}
	}
	if took > time.Second {
		t.Errorf("the agent took %v to come back, want ≤ 1 s", took)
	}
	if body := mustGet(t, addr, "/small"); body != "small\n" {
		t.Errorf("GET after restart = %q", body)
	}
	// A call made right after a crash waits for the new agent.
	if err := syscall.Kill(l.Process().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st, err := l.Stats(ctxT(t, 10*time.Second)); err != nil || st.Forwards[0].Addr != addr {
		t.Errorf("Stats right after a crash = %+v, %v; want the forward on %s", st.Forwards, err, addr)
	}
	rec.waitFor(t, "crashed", 5*time.Second, isAgent(AgentCrashed))
	e := rec.waitFor(t, "restarted", 5*time.Second, isAgent(AgentRestarted))
	if e.Agent.Message != "restarted after a crash" || e.Login != "crashy" {
		t.Errorf("restart event = %+v", e)
	}
	rec.waitFor(t, "log line", 5*time.Second, isLog("restarted after a crash"))
	if !strings.Contains(logs.String(), "restarted after a crash") {
		t.Errorf("the supervisor log does not say \"restarted after a crash\"")
	}
	// It was connected, so the new agent connects again on its own.
	if !waitUntil(10*time.Second, func() bool { return l.State().State == forwarder.StateReady }) {
		t.Errorf("state after restart = %+v, want ready", l.State())
	}
	// Subscriptions carry over: stats of the new agent arrive.
	isStats := func(e Event) bool { return e.Kind == EventStats }
	n := rec.count(isStats)
	mustGet(t, addr, "/small")
	if !waitUntil(5*time.Second, func() bool { return rec.count(isStats) > n }) {
		t.Errorf("no stats event from the new agent")
	}
	if pi := l.Process(); pi.Status != StatusRunning || pi.Restarts < 1 {
		t.Errorf("Process() = %+v, want running with a restart counted", pi)
	}
}

// TestKill9AgentWebForward: a web forward asked for with port 0 comes back
// on the same endpoint after its agent is killed, so the app's origin (and
// with it its cookies) stays the same.
func TestKill9AgentWebForward(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	sup, _ := testSupervisor(t, SupervisorOptions{})
	l := startRemote(t, sup, r.spec("crashy-web"), Secrets{Password: testPassword}, nil)
	infos, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{r.appForward("app", 0)})
	if err != nil || len(infos) != 1 || infos[0].Addr == "" {
		t.Fatalf("SetForwards = %+v, %v", infos, err)
	}
	addr := infos[0].Addr
	mustGet(t, addr, "/small")
	old := l.Process().PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(15*time.Second, func() bool {
		p := l.Process()
		if p.PID == 0 || p.PID == old {
			return false
		}
		_, err := get(addr, "/small", time.Second)
		return err == nil
	}) {
		t.Fatalf("the web forward on %s did not answer within 15 s of killing agent %d", addr, old)
	}
	st, err := l.Stats(ctxT(t, 10*time.Second))
	if err != nil || len(st.Forwards) != 1 || st.Forwards[0].Addr != addr || st.Forwards[0].Kind != ForwardWeb {
		t.Fatalf("Stats after the restart = %+v, %v; want the web forward on %s", st.Forwards, err, addr)
	}
	if f := l.Spec().Forwards; len(f) != 1 || f[0].Web == nil || f[0].Web.BindPort != portOf(addr) {
		t.Errorf("Spec().Forwards = %+v; want the port pinned", f)
	}
}

// TestSecretsStayOffTheCommandLine: the secrets reach the agent (it logs in
// with them) but appear in neither its command line nor its environment.
func TestSecretsStayOffTheCommandLine(t *testing.T) {
	password, passphrase := randomSecret(t, "pw-"), randomSecret(t, "pp-")
	r := newRig(t, testrig.SSHServerOptions{Password: password})
	sup, logs := testSupervisor(t, SupervisorOptions{})
	t.Setenv("PORTHOLE_TEST_SHOULD_NOT_LEAK", password)
	l := startRemote(t, sup, r.spec("secret"), Secrets{Password: password, Passphrase: passphrase}, nil)
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("Connect with the secrets: %v", err)
	}
	pid := l.Process().PID
	cmdline, environ := readProc(t, pid, "cmdline"), readProc(t, pid, "environ")
	if !bytes.Contains(cmdline, []byte("agent")) || !bytes.Contains(environ, []byte(EnvMarker+"=1")) {
		t.Fatalf("not the agent's /proc files? cmdline %q", cmdline)
	}
	for _, secret := range []string{password, passphrase} {
		for name, b := range map[string][]byte{"cmdline": cmdline, "environ": environ} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("/proc/%d/%s contains a secret", pid, name)
			}
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log contains a secret")
		}
	}
	// Only the kept variables (and the test's switches) reach the agent.
	for _, kv := range strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00") {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case EnvMarker, EnvParentPID, envTestChild, "GORACE":
		default:
			if !contains(keptEnv, name) {
				t.Errorf("the agent's environment has %s", name)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestAgentIsHardened: own process group, no new privileges.
func TestAgentIsHardened(t *testing.T) {
	sup, _ := testSupervisor(t, SupervisorOptions{})
	l := startRemote(t, sup, LoginSpec{ID: "h", Host: "127.0.0.1", Port: 1, SSHConfigPath: "none"}, Secrets{}, nil)
	pid := l.Process().PID
	pgid, err := syscall.Getpgid(pid)
	if err != nil || pgid != pid {
		t.Errorf("agent %d is in process group %d (%v), want its own", pid, pgid, err)
	}
	if !bytes.Contains(readProc(t, pid, "status"), []byte("NoNewPrivs:\t1")) {
		t.Errorf("agent %d runs without NoNewPrivs", pid)
	}
}

// TestHungAgent: with one agent stopped, the other login still forwards,
// calls to the stopped one return within their deadline, and it answers
// again once continued.
func TestHungAgent(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	const deadline = 500 * time.Millisecond
	// The health check is off: this test is about a stop shorter than it
	// tolerates (TestHungAgentRestarted covers a longer one).
	sup, _ := testSupervisor(t, SupervisorOptions{CallTimeout: deadline, HealthInterval: -1})
	a := startRemote(t, sup, r.spec("a", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
	b := startRemote(t, sup, r.spec("b", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
	addrOf := func(l Login) string {
		st, err := l.Stats(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return st.Forwards[0].Addr
	}
	addrB := addrOf(b)
	_ = addrOf(a)
	pid := a.Process().PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(cont)
	// SIGSTOP is delivered asynchronously: on a busy machine the agent may
	// still answer a call made right now. Wait until the kernel says stopped.
	waitStopped(t, pid)

	results := make(chan error, 3)
	starts := time.Now()
	go func() { _, err := a.Stats(context.Background()); results <- err }()
	go func() { _, err := a.Exec(context.Background(), "true"); results <- err }()
	go func() {
		_, err := a.Probe(context.Background(), "127.0.0.1", r.web.Port(), []byte("GET / HTTP/1.0\r\n\r\n"), 100)
		results <- err
	}()

	// Meanwhile the other login works.
	for i := 0; i < 3; i++ {
		if body := mustGet(t, addrB, "/small"); body != "small\n" {
			t.Fatalf("GET through b = %q", body)
		}
	}
	if _, err := b.Stats(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("b.Stats while a is stopped: %v", err)
	}
	c := startRemote(t, sup, r.spec("c"), Secrets{Password: testPassword}, nil)
	if err := c.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("a new login while a is stopped: %v", err)
	}
	stateStart := time.Now()
	_ = a.State()
	if d := time.Since(stateStart); d > 100*time.Millisecond {
		t.Errorf("State() of the stopped login took %v", d)
	}
	for i := 0; i < 3; i++ {
		select {
		case err := <-results:
			if !errors.Is(err, ErrCallTimeout) {
				t.Errorf("call to the stopped agent = %v, want ErrCallTimeout", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("a call to the stopped agent did not return")
		}
	}
	if took := time.Since(starts); took > deadline+5*time.Second {
		t.Errorf("calls to the stopped agent took %v, deadline %v", took, deadline)
	}

	cont()
	if !waitUntil(10*time.Second, func() bool { _, err := a.Stats(context.Background()); return err == nil }) {
		t.Errorf("the continued agent does not answer")
	}
	if a.Process().PID != pid {
		t.Errorf("the stopped agent was replaced; it should only have been waited for")
	}
}

// TestHungAgentRestarted: an agent that stops answering (SIGSTOP) is
// noticed by the health ping, killed and restarted on the same endpoint;
// the events say why, and the forward answers again.
func TestHungAgentRestarted(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	sup, logs := testSupervisor(t, SupervisorOptions{
		HealthInterval: 200 * time.Millisecond, HealthTimeout: 500 * time.Millisecond, HealthMisses: 3,
	})
	l := startRemote(t, sup, r.spec("hung", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
	rec := record(l)
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	addr := st.Forwards[0].Addr
	mustGet(t, addr, "/small")
	// A healthy agent is left alone.
	time.Sleep(time.Second)
	if n := rec.count(isAgent(AgentCrashed)); n != 0 {
		t.Fatalf("%d crash events for a healthy agent", n)
	}

	old := l.Process().PID
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(old, syscall.SIGCONT) })
	waitStopped(t, old)
	start := time.Now()
	if !waitUntil(30*time.Second, func() bool {
		p := l.Process()
		if p.PID == 0 || p.PID == old {
			return false
		}
		_, err := get(addr, "/small", 2*time.Second)
		return err == nil
	}) {
		t.Fatalf("the stopped agent %d was not replaced within 30 s (process %+v)", old, l.Process())
	}
	t.Logf("agent %d stopped; replaced by %d and %s answers again after %v", old, l.Process().PID, addr, time.Since(start).Round(time.Millisecond))
	if !waitUntil(5*time.Second, func() bool { return !processAlive(old) }) {
		t.Errorf("the hung agent %d was not killed", old)
	}
	c := rec.waitFor(t, "crashed", 5*time.Second, isAgent(AgentCrashed))
	if c.Agent.PID != old || !strings.Contains(c.Agent.Message, "stopped answering for") || !strings.Contains(c.Agent.Message, "killed") {
		t.Errorf("crash event = %+v, want the hung agent's PID and \"stopped answering for\"", c.Agent)
	}
	e := rec.waitFor(t, "restarted", 5*time.Second, isAgent(AgentRestarted))
	if !strings.HasPrefix(e.Agent.Message, "the agent stopped answering for ") || !strings.HasSuffix(e.Agent.Message, "; restarted") {
		t.Errorf("restart message = %q, want \"the agent stopped answering for N s; restarted\"", e.Agent.Message)
	}
	if !strings.Contains(logs.String(), "the agent stopped answering; killing it") {
		t.Errorf("the supervisor log does not say it killed the hung agent")
	}
	// It was connected, so the new agent connects again on its own.
	if !waitUntil(10*time.Second, func() bool { return l.State().State == forwarder.StateReady }) {
		t.Errorf("state after the restart = %+v, want ready", l.State())
	}
	if pi := l.Process(); pi.Status != StatusRunning || pi.Restarts != 1 {
		t.Errorf("Process() = %+v, want running with one restart", pi)
	}
}

// TestCrashLoopStops: an agent that crashes 5 times within a minute is
// stopped, and the login says why.
func TestCrashLoopStops(t *testing.T) {
	sup, logs := testSupervisor(t, SupervisorOptions{
		Env:            []string{envTestMode + "=crash"},
		RestartBackoff: forwarder.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	l := startRemote(t, sup, LoginSpec{ID: "loop", Host: "127.0.0.1", Port: 1, SSHConfigPath: "none"}, Secrets{}, nil)
	rec := record(l)
	e := rec.waitFor(t, "failed", 60*time.Second, isAgent(AgentFailed))
	if !strings.Contains(e.Agent.Message, "crashed 5 times within 1m0s") {
		t.Errorf("failure message = %q", e.Agent.Message)
	}
	if n := rec.count(isAgent(AgentCrashed)); n != 5 {
		t.Errorf("%d crash events, want 5", n)
	}
	if n := rec.count(isAgent(AgentRestarted)); n != 4 {
		t.Errorf("%d restart events, want 4", n)
	}
	rec.waitFor(t, "failed state", 5*time.Second, isState(forwarder.StateFailed))
	if st := l.State(); st.State != forwarder.StateFailed || !strings.Contains(st.Error, "crashed 5 times") {
		t.Errorf("State() = %+v, want failed with the reason", st)
	}
	if pi := l.Process(); pi.Status != StatusFailed || pi.PID != 0 || pi.Error == "" {
		t.Errorf("Process() = %+v, want failed, no process, an error", pi)
	}
	if _, err := l.Stats(ctxT(t, 5*time.Second)); !errors.Is(err, ErrAgentFailed) {
		t.Errorf("Stats of a failed login = %v, want ErrAgentFailed", err)
	}
	out := logs.String()
	if n := strings.Count(out, "restarted after a crash"); n != 4 {
		t.Errorf("the log says \"restarted after a crash\" %d times, want 4", n)
	}
	if !strings.Contains(out, "panic: agent test: deliberate crash") {
		t.Errorf("the agent's panic (stderr) is not in the log")
	}
	rec.mu.Lock()
	var pids []int
	for _, e := range rec.events {
		if e.Agent != nil && e.Agent.PID != 0 {
			pids = append(pids, e.Agent.PID)
		}
	}
	rec.mu.Unlock()
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("agent %d is still running", pid)
		}
	}
}

// TestProtocolMismatch: an agent of another version refuses hello and exits
// cleanly; Start says why.
func TestProtocolMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts SupervisorOptions
	}{
		{"the app is newer", SupervisorOptions{protocol: ProtocolVersion + 1}},
		{"the agent is newer", SupervisorOptions{Env: []string{envTestMode + "=mismatch"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sup, logs := testSupervisor(t, tc.opts)
			_, err := sup.Start(ctxT(t, 20*time.Second), LoginSpec{ID: "v", Host: "127.0.0.1", Port: 1}, Secrets{}, nil)
			if !errors.Is(err, ErrProtocolMismatch) {
				t.Fatalf("Start = %v, want ErrProtocolMismatch", err)
			}
			out := logs.String()
			if !strings.Contains(out, "another protocol version") || !strings.Contains(out, "exit status 3") {
				t.Errorf("the log does not report the mismatch and the agent's clean exit:\n%s", out)
			}
			if strings.Contains(out, "panic") {
				t.Errorf("something panicked:\n%s", out)
			}
		})
	}
}

// TestGarbageFromAgent: an agent that writes garbage is stopped and logged;
// the app carries on.
func TestGarbageFromAgent(t *testing.T) {
	sup, logs := testSupervisor(t, SupervisorOptions{Env: []string{envTestMode + "=garbage"}})
	_, err := sup.Start(ctxT(t, 20*time.Second), LoginSpec{ID: "g", Host: "127.0.0.1", Port: 1}, Secrets{}, nil)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Start = %v, want ErrProtocol", err)
	}
	out := logs.String()
	if !strings.Contains(out, "malformed message") {
		t.Errorf("the log does not report the malformed message:\n%s", out)
	}
	if strings.Contains(out, "panic") {
		t.Errorf("something panicked:\n%s", out)
	}
	// The supervisor still works for other logins.
	sup2, _ := testSupervisor(t, SupervisorOptions{})
	startRemote(t, sup2, LoginSpec{ID: "ok", Host: "127.0.0.1", Port: 1}, Secrets{}, nil)
}

// TestGarbageFromRunningAgent: garbage from an agent that was serving is a
// crash: the agent is stopped, the log says why, and a new one starts.
func TestGarbageFromRunningAgent(t *testing.T) {
	sup, logs := testSupervisor(t, SupervisorOptions{
		Env:            []string{envTestMode + "=garbage-later"},
		RestartBackoff: forwarder.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	l := startRemote(t, sup, LoginSpec{ID: "g2", Host: "127.0.0.1", Port: 1}, Secrets{}, nil)
	rec := record(l)
	e := rec.waitFor(t, "crash", 20*time.Second, isAgent(AgentCrashed))
	if !strings.Contains(e.Agent.Message, "malformed message") {
		t.Errorf("crash message = %q, want the malformed message", e.Agent.Message)
	}
	rec.waitFor(t, "restart", 20*time.Second, isAgent(AgentRestarted))
	// It keeps doing it, so it ends up stopped; the app is fine.
	rec.waitFor(t, "failed", 60*time.Second, isAgent(AgentFailed))
	if out := logs.String(); !strings.Contains(out, "malformed message") || strings.Contains(out, "panic") {
		t.Errorf("log:\n%s", out)
	}
}

// TestGarbageToAgentProcess: `porthole agent` fed garbage exits with
// ExitProtocol, logs why, and does not panic; at EOF it exits with ExitOK.
func TestGarbageToAgentProcess(t *testing.T) {
	hello := string(frameOf(t, 1, methodHello, helloParams{Protocol: ProtocolVersion}))
	for _, tc := range []struct {
		name  string
		input string
		code  int
	}{
		{"eof at once", "", ExitOK},
		{"http request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ExitProtocol},
		{"json without a header", `{"jsonrpc":"2.0","id":1,"method":"hello","params":{"protocol":1}}` + "\n", ExitProtocol},
		{"bad json", "Content-Length: 5\r\n\r\n{bad}", ExitProtocol},
		{"not json-rpc", "Content-Length: 2\r\n\r\n{}", ExitProtocol},
		{"huge length", "Content-Length: 4294967295\r\n\r\n{", ExitProtocol},
		{"truncated", "Content-Length: 100\r\n\r\n{}", ExitProtocol},
		{"binary", "\x00\xff\xfe\r\n\r\n", ExitProtocol},
		{"call before hello", string(frameOf(t, 1, methodStats, nil)), ExitProtocol},
		{"garbage after hello", hello + "xyz\r\n\r\n", ExitProtocol},
		{"hello then eof", hello, ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exe, _ := os.Executable()
			cmd := exec.Command(exe, "agent")
			cmd.Env = []string{envTestChild + "=1", raceEnv}
			cmd.Stdin = strings.NewReader(tc.input)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("the agent did not exit; stderr:\n%s", stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if strings.Contains(stderr.String(), "panic") {
				t.Errorf("the agent panicked:\n%s", stderr.String())
			}
			if tc.code == ExitProtocol && !strings.Contains(stderr.String(), "protocol") {
				t.Errorf("stderr does not explain the exit:\n%s", stderr.String())
			}
			// What the agent wrote is well-formed.
			br := bufio.NewReader(&stdout)
			for {
				if _, err := readFrame(br); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Errorf("the agent wrote a malformed message: %v", err)
					}
					break
				}
			}
		})
	}
}

// waitStopped waits until /proc says pid is stopped (state T).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("read the agent's state: %v", err)
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
	}
	t.Fatalf("agent %d did not stop within 10 s of SIGSTOP", pid)
}

// TestLongStderrLine: an agent that writes a stderr line far beyond 64 KiB
// keeps running; the line is logged truncated and the next line follows.
func TestLongStderrLine(t *testing.T) {
	sup, logs := testSupervisor(t, SupervisorOptions{Env: []string{envTestMode + "=long-stderr"}})
	l := startRemote(t, sup, LoginSpec{ID: "long", Host: "127.0.0.1", Port: 1, SSHConfigPath: "none"}, Secrets{}, nil)
	rec := record(l)
	pid := l.Process().PID
	if !waitUntil(10*time.Second, func() bool { return strings.Contains(logs.String(), afterLongLine) }) {
		t.Fatalf("the line after the long one was not logged; log:\n%.2000s", logs.String())
	}
	if _, err := l.Stats(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("Stats after the long line: %v", err)
	}
	if got := l.Process().PID; got != pid || !processAlive(pid) {
		t.Errorf("agent %d was replaced by %d or died", pid, got)
	}
	if n := rec.count(isAgent(AgentCrashed)); n != 0 {
		t.Errorf("%d crash events", n)
	}
	var long string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, longStderrPrefix) {
			long = line
		}
	}
	if n := strings.Count(long, "x"); n == 0 || n > maxStderrLine {
		t.Errorf("the long line was logged with %d of its %d bytes, want 1..%d", n, longStderrLen, maxStderrLine)
	}
	if want := fmt.Sprintf("truncated_bytes=%d", len(longStderrPrefix)+longStderrLen-maxStderrLine); !strings.Contains(long, want) {
		t.Errorf("the long line's log record lacks %s: %.300s…", want, long)
	}
}
