package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/internal/testrig"
)

// The test binary doubles as `porthole agent`: the Supervisor starts it
// with envAgent=1.
const envAgent = "PORTHOLE_FAULTS_AGENT"

// raceEnv stops a race-enabled agent from sleeping a second at exit.
const raceEnv = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	if os.Getenv(envAgent) == "1" {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		os.Exit(agent.Main(context.Background(), os.Stdin, os.Stdout, log))
	}
	os.Exit(m.Run())
}

// rig is a real sshd behind a fault relay, a web app on the "server", and
// one login served by an agent process with a web forward and a raw forward
// to the web app.
type rig struct {
	sshd   *testrig.Sshd
	relay  *testrig.Relay
	web    *testrig.WebApp
	sup    *agent.Supervisor
	login  *agent.RemoteLogin
	logs   *logBuffer
	webFwd string // the web forward's local address
	rawFwd string // the raw forward's local address
}

type rigOptions struct {
	session    agent.SessionSettings
	supervisor agent.SupervisorOptions
	noRelay    bool // the login dials sshd directly
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	r := &rig{
		sshd: testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}}),
		web:  testrig.NewWebApp(t),
		logs: &logBuffer{},
	}
	addr := r.sshd.Addr
	if !o.noRelay {
		r.relay = testrig.NewRelay(t, r.sshd.Addr)
		addr = r.relay.Addr()
	}
	spec, err := rigLoginSpec(r.sshd, addr, t.TempDir(), r.web.Port(), o.session)
	if err != nil {
		t.Fatal(err)
	}
	so := o.supervisor
	so.Env = append(so.Env, envAgent+"=1", raceEnv)
	so.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.sup = agent.NewSupervisor(so)
	t.Cleanup(func() {
		_ = r.sup.Close()
		if t.Failed() {
			t.Logf("supervisor log:\n%s", r.logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := r.sup.Start(ctx, spec, agent.Secrets{}, nil)
	if err != nil {
		t.Fatalf("start the agent: %v", err)
	}
	r.login = l
	if err := l.Connect(ctx); err != nil {
		t.Fatalf("connect through sshd: %v", err)
	}
	if r.webFwd, r.rawFwd, err = forwardAddrs(ctx, l); err != nil {
		t.Fatal(err)
	}
	r.mustWork(t, "before the fault")
	return r
}

// forwards are the two forwards' addresses, web first.
func (r *rig) forwards() []string { return []string{r.webFwd, r.rawFwd} }

// get fetches /small through addr on a new connection within timeout: no
// request can hang.
func get(addr string, timeout time.Duration) error {
	_, _, err := fetch(addr, timeout)
	return err
}

// fetch is get that also returns the status and the web forward's
// X-Porthole-Error header of an answer other than "small".
func fetch(addr string, timeout time.Duration) (status int, portholeError string, err error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + addr + "/small")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	if resp.StatusCode != http.StatusOK || string(b) != "small\n" {
		return resp.StatusCode, resp.Header.Get("X-Porthole-Error"), fmt.Errorf("GET /small: %s: %.200q", resp.Status, b)
	}
	return resp.StatusCode, "", nil
}

// mustWork fails the test unless both forwards answer now.
func (r *rig) mustWork(t *testing.T, when string) {
	t.Helper()
	for _, a := range r.forwards() {
		if err := get(a, 15*time.Second); err != nil {
			t.Fatalf("GET through %s %s: %v", a, when, err)
		}
	}
}

// worksAgain polls both forwards (each request with a deadline) until both
// answer, for at most within; it returns how long that took.
func (r *rig) worksAgain(t *testing.T, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for _, a := range r.forwards() {
		var last error
		for {
			if last = get(a, 10*time.Second); last == nil {
				break
			}
			if time.Since(start) > within {
				t.Fatalf("%s: %s does not answer %v later: %v (state %+v)", what, a, within, last, r.login.State())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	took := time.Since(start)
	t.Logf("%s: both forwards answer again after %v", what, took.Round(time.Millisecond))
	return took
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitUntil polls cond every 20 ms until it holds or d passed.
func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// procCPU is the CPU time (user + system) pid used so far.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	d, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
