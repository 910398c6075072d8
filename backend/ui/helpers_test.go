package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/webui"
)

// recorder is an event sink that keeps every event, as JSON too (what a
// browser would receive).
type recorder struct {
	mu     sync.Mutex
	events []recorded
}

type recorded struct {
	topic string
	data  any
	json  string
}

func (r *recorder) Publish(topic string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.events = append(r.events, recorded{topic: topic, data: data, json: string(b)})
	r.mu.Unlock()
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.events...)
}

// count returns how many events of topic satisfy ok.
func (r *recorder) count(topic string, ok func(any) bool) int {
	n := 0
	for _, e := range r.all() {
		if e.topic == topic && (ok == nil || ok(e.data)) {
			n++
		}
	}
	return n
}

// syncBuffer is a goroutine-safe log buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testApp struct {
	app     *App
	life    *Lifecycle
	bus     *events.Bus
	rec     *recorder
	secrets *profiles.Memory
	store   *profiles.Store
	home    string
	logs    *syncBuffer
}

type testAppOptions struct {
	promptTimeout time.Duration
	sshConfig     string // contents of HOME/.ssh/config ("" = none)
	profilesJSON  string // initial contents of profiles.json ("" = none)
	// defaultSSHConfig: ConfigPath "" (HOME/.ssh/config) even without sshConfig.
	defaultSSHConfig bool
	// agents: run each login in a `porthole agent` process (this test
	// binary, see TestMain) over RPC, as the app does; false runs it
	// in-process (agent.LocalLogin). Both are production logins.
	agents bool
}

// loginKinds are the two implementations of agent.Login the tests run on.
var loginKinds = []struct {
	name   string
	agents bool
}{{"local", false}, {"agent", true}}

// newTestApp builds an App with a profiles file and a fake HOME in a temp
// dir, an in-memory SecretStore, no ssh agent and no system ssh_config.
func newTestApp(t *testing.T, o testAppOptions) *testApp {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgPath := "none"
	if o.defaultSSHConfig {
		cfgPath = ""
	}
	if o.sshConfig != "" {
		cfgPath = filepath.Join(home, ".ssh", "config")
		if err := os.WriteFile(cfgPath, []byte(o.sshConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ppath := filepath.Join(home, ".config", "porthole", "profiles.json")
	if o.profilesJSON != "" {
		if err := os.MkdirAll(filepath.Dir(ppath), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ppath, []byte(o.profilesJSON), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, _ := profiles.Open(ppath, log)
	secrets := profiles.NewMemory()
	bus := events.New()
	rec := &recorder{}
	bus.AddSink(rec)
	cfg := servers.Config{
		Store:   store,
		Secrets: secrets,
		Backend: "memory (test)",
		SSH: servers.SSHBase{
			HomeDir: home, ConfigPath: cfgPath, SystemConfigPath: "none", AgentSocket: "none",
		},
		PromptTimeout: o.promptTimeout,
		StartLogin:    servers.LocalLogins(log.With("component", "login")),
	}
	if o.agents {
		sup := agent.NewSupervisor(agent.SupervisorOptions{Env: []string{"GORACE=atexit_sleep_ms=0"}, Logger: log.With("component", "agents")})
		cfg.StartLogin, cfg.CloseLogins = servers.SupervisorLogins(sup), func() { _ = sup.Close() }
	}
	app, life := New(Options{Log: log, Mode: ModeServe, Bus: bus, Servers: cfg})
	// Listings (the notifier lists connected servers' apps) probe only
	// this test's processes: the test SSH server runs on this machine, so
	// it lists this machine's sockets, and other packages' tests run in
	// parallel and count the connections their listeners get.
	app.apps.SetProbeOnly(func(svc discovery.Service) bool {
		return svc.Process != nil && testrig.DescendsFromThisProcess(svc.Process.PID)
	})
	ctx, cancel := context.WithCancel(context.Background())
	life.Startup(ctx)
	t.Cleanup(func() {
		cancel()
		life.Shutdown()
	})
	return &testApp{app: app, life: life, bus: bus, rec: rec, secrets: secrets, store: store, home: home, logs: logs}
}

// bridge serves the App through the real webui bridge on a loopback port.
type bridge struct {
	t     *testing.T
	base  string
	token string
}

func newBridge(t *testing.T, ta *testApp) *bridge {
	t.Helper()
	srv, err := webui.New(webui.Options{Bound: ta.app, Snapshot: ta.app.Snapshot, Status: HTTPStatus})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the webui server did not stop within 10 s")
		}
	})
	u := srv.URL(ln.Addr().String())
	base, frag, _ := strings.Cut(u, "/#token=")
	return &bridge{t: t, base: base, token: frag}
}

// call POSTs /api/method with args and returns the status and body.
func (b *bridge) call(method string, args ...any) (int, string) {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	body, err := json.Marshal(args)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.raw(method, string(body))
}

func (b *bridge) raw(method, body string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+"/api/"+method, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// waitPrompt waits (up to 10 s) for an open prompt of the given kind and server.
func waitPrompt(t *testing.T, a *App, serverID string, kind prompts.PromptKind) prompts.Prompt {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range a.Prompts() {
			if p.ServerID == serverID && p.Kind == kind {
				return p
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s prompt for %s within 10 s; open prompts: %+v", kind, serverID, a.Prompts())
	return prompts.Prompt{}
}

type connectResult struct {
	sum servers.ServerSummary
	err error
}

// connectAsync runs Connect in the background (it blocks on prompts).
func connectAsync(a *App, id string) <-chan connectResult {
	ch := make(chan connectResult, 1)
	go func() {
		s, err := a.Connect(id)
		ch <- connectResult{s, err}
	}()
	return ch
}

func waitConnect(t *testing.T, ch <-chan connectResult) connectResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Connect did not return within 30 s")
	}
	return connectResult{}
}

func serverErrorOf(t *testing.T, err error) *servers.ServerError {
	t.Helper()
	var ce *servers.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *servers.ConnectError", err, err)
	}
	return ce.Server
}
