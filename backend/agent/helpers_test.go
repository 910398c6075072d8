package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

const testPassword = "correct horse"

// raceEnv stops a race-enabled agent from sleeping a second at exit.
const raceEnv = "GORACE=atexit_sleep_ms=0"

// rig is an in-process SSH server with a web app behind it.
type rig struct {
	srv        *testrig.SSHServer
	web        *testrig.WebApp
	home       string
	knownHosts string
}

func newRig(t *testing.T, opts testrig.SSHServerOptions) *rig {
	t.Helper()
	if opts.Password == "" && len(opts.KeyboardInteractive) == 0 {
		opts.Password = testPassword
	}
	opts.AllowExec = true
	r := &rig{srv: testrig.NewSSHServer(t, opts), web: testrig.NewWebApp(t), home: t.TempDir()}
	r.knownHosts = filepath.Join(r.home, "known_hosts")
	if err := sshconn.AppendKnownHost(r.knownHosts, r.srv.Addr(), r.srv.HostKey(), false); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) spec(id string, fwds ...ForwardSpec) LoginSpec {
	host, port, _ := net.SplitHostPort(r.srv.Addr())
	p, _ := strconv.Atoi(port)
	return LoginSpec{
		ID: id, Name: id, Host: host, Port: p, User: r.srv.User(),
		AuthMethods:   []AuthMethod{AuthPassword},
		SSHConfigPath: "none", HomeDir: r.home, KnownHostsFiles: []string{r.knownHosts}, AgentSocket: "none",
		Session:  SessionSettings{StatsInterval: 50 * time.Millisecond, ConnectTimeout: 10 * time.Second},
		Forwards: fwds,
	}
}

// webForward forwards a free local port (or port) to the web app.
func (r *rig) webForward(id string, port int) ForwardSpec {
	return ForwardSpec{ID: id, Local: forwarder.LocalSpec{BindAddress: "127.0.0.1", BindPort: port, TargetHost: "127.0.0.1", TargetPort: r.web.Port()}}
}

// appForward is a web (HTTP-aware) forward of a free local port (or port)
// to the web app, which the server reaches as localhost.
func (r *rig) appForward(id string, port int) ForwardSpec {
	return ForwardSpec{ID: id, Web: &forwarder.WebSpec{
		BindAddress: "127.0.0.1", BindPort: port, TargetHost: "localhost", TargetPort: r.web.Port(),
		ServerName: "rig", AllowedFrameAncestors: forwarder.WailsFrameAncestors,
	}}
}

// get fetches path through addr with a fresh connection.
func get(addr, path string, timeout time.Duration) (string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), nil
}

func mustGet(t *testing.T, addr, path string) string {
	t.Helper()
	body, err := get(addr, path, 10*time.Second)
	if err != nil {
		t.Fatalf("GET http://%s%s: %v", addr, path, err)
	}
	return body
}

// waitUntil polls cond every 10 ms until it holds or d passed.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakePrompter answers prompts from its fields and records them.
type fakePrompter struct {
	mu        sync.Mutex
	password  string
	err       error
	decision  sshconn.HostKeyDecision
	passwords []sshconn.PasswordPrompt
	hostKeys  []sshconn.HostKeyPrompt
	kis       []sshconn.KIPrompt
	infos     []PromptInfo
}

func (p *fakePrompter) note(ctx context.Context) {
	pi, _ := PromptInfoFrom(ctx)
	p.infos = append(p.infos, pi)
}

func (p *fakePrompter) Password(ctx context.Context, req sshconn.PasswordPrompt) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.note(ctx)
	p.passwords = append(p.passwords, req)
	return p.password, p.err
}

func (p *fakePrompter) KeyboardInteractive(ctx context.Context, req sshconn.KIPrompt) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.note(ctx)
	p.kis = append(p.kis, req)
	if p.err != nil {
		return nil, p.err
	}
	a := make([]string, len(req.Questions))
	for i := range a {
		a[i] = p.password
	}
	return a, nil
}

func (p *fakePrompter) UnknownHost(ctx context.Context, req sshconn.HostKeyPrompt) (sshconn.HostKeyDecision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.note(ctx)
	p.hostKeys = append(p.hostKeys, req)
	return p.decision, p.err
}

func (p *fakePrompter) counts() (pw, hk, ki int, infos []PromptInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.passwords), len(p.hostKeys), len(p.kis), append([]PromptInfo(nil), p.infos...)
}

// recorder keeps a login's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func record(l Login) *recorder {
	r := &recorder{}
	l.Subscribe(func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) find(pred func(Event) bool) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if pred(e) {
			return e, true
		}
	}
	return Event{}, false
}

func (r *recorder) count(pred func(Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if pred(e) {
			n++
		}
	}
	return n
}

func (r *recorder) waitFor(t *testing.T, what string, d time.Duration, pred func(Event) bool) Event {
	t.Helper()
	var got Event
	if !waitUntil(d, func() bool {
		var ok bool
		got, ok = r.find(pred)
		return ok
	}) {
		r.mu.Lock()
		var b strings.Builder
		for _, e := range r.events {
			fmt.Fprintf(&b, "\n  %s", e)
		}
		r.mu.Unlock()
		t.Fatalf("no %s event within %s; events:%s", what, d, b.String())
	}
	return got
}

func isState(s forwarder.State) func(Event) bool {
	return func(e Event) bool { return e.Kind == EventState && e.State != nil && e.State.State == s }
}

func isAgent(k AgentEventKind) func(Event) bool {
	return func(e Event) bool { return e.Kind == EventAgent && e.Agent != nil && e.Agent.Kind == k }
}

func isLog(substr string) func(Event) bool {
	return func(e Event) bool {
		return e.Kind == EventLog && e.Log != nil && strings.Contains(e.Log.Message, substr)
	}
}

// logBuffer is a concurrency-safe log sink for assertions.
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

func (b *logBuffer) count(s string) int { return strings.Count(b.String(), s) }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testSupervisor runs the test binary as the agent.
func testSupervisor(t *testing.T, opts SupervisorOptions) (*Supervisor, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts.Env = append(opts.Env, envTestChild+"=1", raceEnv)
	opts.Logger = logs.logger()
	sup := NewSupervisor(opts)
	t.Cleanup(func() {
		_ = sup.Close()
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.String())
		}
	})
	return sup, logs
}

func startRemote(t *testing.T, sup *Supervisor, spec LoginSpec, s Secrets, p sshconn.Prompter) *RemoteLogin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var prompter sshconn.Prompter
	if p != nil {
		prompter = p
	}
	l, err := sup.Start(ctx, spec, s, prompter)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// freePort returns a port nothing listens on (just closed).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func isErr(err, target error) bool { return errors.Is(err, target) }
