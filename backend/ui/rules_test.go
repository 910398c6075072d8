package ui

import (
	"context"
	"fmt"
	"github.com/porthole-app/porthole/backend/discovery"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/rules"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

// rulesRig is an App over a config dir in home whose logins reach a real
// OpenSSH sshd with its key (nothing is asked).
type rulesRig struct {
	app  *App
	life *Lifecycle
	rec  *recorder
	logs *syncBuffer
}

func newRulesRig(t *testing.T, sshd *testrig.Sshd, home string, agents bool) *rulesRig {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := profiles.Open(filepath.Join(home, ".config", "porthole", "profiles.json"), log)
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	rec := &recorder{}
	bus.AddSink(rec)
	cfg := servers.Config{
		Store: store, Secrets: profiles.NewMemory(), Backend: "memory (test)",
		SSH: servers.SSHBase{HomeDir: home, ConfigPath: "none", SystemConfigPath: "none", AgentSocket: "none",
			KnownHostsFiles: []string{sshd.KnownHostsPath}},
		StartLogin: servers.LocalLogins(log.With("component", "login")),
	}
	if agents {
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
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	})
	return &rulesRig{app: app, life: life, rec: rec, logs: logs}
}

func addSshdServer(t *testing.T, a *App, sshd *testrig.Sshd) profiles.Profile {
	t.Helper()
	p, err := a.AddServer(profiles.Profile{Name: "real sshd", Host: sshd.Host, Port: sshd.Port, User: sshd.User,
		KeyPath: sshd.ClientKeyPath, Auth: []profiles.AuthMethod{profiles.AuthKey}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort is a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitRule polls ListRules until rule ruleID satisfies ok (30 s).
func waitRule(t *testing.T, a *App, serverID, ruleID string, what string, ok func(rules.RuleStatus) bool) rules.RuleStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last rules.RuleStatus
	for time.Now().Before(deadline) {
		l, err := a.ListRules(serverID)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range l.Rules {
			if st.Rule.ID == ruleID {
				last = st
				if ok(st) {
					return st
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("rule %s not %s within 30 s; last %+v", ruleID, what, last)
	return last
}

// getThrough GETs url, retrying for up to 30 s (a restarted sshd takes a moment).
func getThrough(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return string(b)
			}
			lastErr = fmt.Errorf("status %d, %v", resp.StatusCode, err)
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s kept failing for 30 s: %v", url, lastErr)
	return ""
}

func listening(st rules.RuleStatus) bool { return st.State == rules.RuleListening }

// TestRulesSavedStartedRestoredAndReestablished: -L and -R rules are saved
// in the profile, wait while the server is disconnected, start on connect
// and forward, count their bytes, come back after sshd is restarted, and
// after a restart of Porthole (a new App over the same config dir) they
// are still there and the rule that asks for it connects the server at start.
func TestRulesSavedStartedRestoredAndReestablished(t *testing.T) {
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello through the rule")
	}))
	t.Cleanup(web.Close)
	webPort := web.Listener.Addr().(*net.TCPAddr).Port
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}

	r1 := newRulesRig(t, sshd, home, true)
	p := addSshdServer(t, r1.app, sshd)

	// Validation as typed: field errors, nothing saved.
	bad := r1.app.ValidateRule(p.ID, profiles.ForwardRule{Kind: profiles.ForwardLocal, LocalPort: 70000})
	if bad.Valid || len(bad.Fields) != 2 {
		t.Fatalf("ValidateRule(bad) = %+v", bad)
	}

	lport, rport := freePort(t), freePort(t)
	lrule, err := r1.app.AddRule(p.ID, profiles.ForwardRule{Kind: profiles.ForwardLocal, Label: "web", LocalHost: "127.0.0.1", LocalPort: lport,
		RemoteHost: "127.0.0.1", RemotePort: webPort, ConnectAtStart: true})
	if err != nil || lrule.ID == "" {
		t.Fatalf("AddRule -L: %+v, %v", lrule, err)
	}
	rrule, err := r1.app.AddRule(p.ID, profiles.ForwardRule{Kind: profiles.ForwardRemote, RemotePort: rport, LocalHost: "127.0.0.1", LocalPort: webPort})
	if err != nil {
		t.Fatalf("AddRule -R: %v", err)
	}
	if dup := r1.app.ValidateRule(p.ID, profiles.ForwardRule{Kind: profiles.ForwardDynamic, LocalPort: lport}); dup.Valid {
		t.Fatalf("a second rule on port %d was accepted: %+v", lport, dup)
	}
	st := waitRule(t, r1.app, p.ID, lrule.ID, "waiting", func(s rules.RuleStatus) bool { return s.State == rules.RuleWaiting })
	if st.Remote != net.JoinHostPort("127.0.0.1", fmt.Sprint(webPort)) {
		t.Fatalf("waiting rule endpoints %+v", st)
	}

	if _, err := r1.app.Connect(p.ID); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	st = waitRule(t, r1.app, p.ID, lrule.ID, "listening", listening)
	if st.Local != fmt.Sprintf("127.0.0.1:%d", lport) {
		t.Fatalf("listening -L rule: %+v", st)
	}
	if got := getThrough(t, fmt.Sprintf("http://127.0.0.1:%d/", lport)); got != "hello through the rule" {
		t.Fatalf("through -L: %q", got)
	}
	waitRule(t, r1.app, p.ID, rrule.ID, "listening", listening)
	if got := getThrough(t, fmt.Sprintf("http://127.0.0.1:%d/", rport)); got != "hello through the rule" {
		t.Fatalf("through -R: %q", got)
	}
	// The counters arrive as `rules` events (the agent's batched stats).
	waitRule(t, r1.app, p.ID, lrule.ID, "counting bytes", func(s rules.RuleStatus) bool { return s.BytesIn > 0 && s.TotalConns > 0 && !s.At.IsZero() })
	if n := r1.rec.count(rules.TopicRules.Name(), func(d any) bool {
		for _, s := range d.(rules.RuleList).Rules {
			if s.Rule.ID == lrule.ID && s.BytesIn > 0 {
				return true
			}
		}
		return false
	}); n == 0 {
		t.Fatal("no `rules` event carried the rule's bytes")
	}

	// sshd restarts (every connection dropped): the rules work again.
	if err := sshd.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := getThrough(t, fmt.Sprintf("http://127.0.0.1:%d/", lport)); got != "hello through the rule" {
		t.Fatalf("through -L after the sshd restart: %q", got)
	}
	waitRule(t, r1.app, p.ID, rrule.ID, "listening again", listening)
	if got := getThrough(t, fmt.Sprintf("http://127.0.0.1:%d/", rport)); got != "hello through the rule" {
		t.Fatalf("through -R after the sshd restart: %q", got)
	}

	// Disconnect: the rules wait.
	if _, err := r1.app.Disconnect(p.ID); err != nil {
		t.Fatal(err)
	}
	waitRule(t, r1.app, p.ID, lrule.ID, "waiting after Disconnect", func(s rules.RuleStatus) bool { return s.State == rules.RuleWaiting })

	// Porthole restarts: the rules are read back, and the -L rule's
	// ConnectAtStart connects the server by itself.
	r1.life.Shutdown()
	r2 := newRulesRig(t, sshd, home, true)
	l, err := r2.app.ListRules(p.ID)
	if err != nil || len(l.Rules) != 2 || l.Rules[0].Rule != lrule || l.Rules[1].Rule != rrule {
		t.Fatalf("rules after a restart: %+v, %v", l, err)
	}
	waitRule(t, r2.app, p.ID, lrule.ID, "listening after a restart", listening)
	if got := getThrough(t, fmt.Sprintf("http://127.0.0.1:%d/", lport)); got != "hello through the rule" {
		t.Fatalf("through -L after restarting Porthole: %q", got)
	}

	// Editing and deleting.
	lrule.Label = "renamed"
	if _, err := r2.app.UpdateRule(p.ID, lrule); err != nil {
		t.Fatal(err)
	}
	if err := r2.app.DeleteRule(p.ID, rrule.ID); err != nil {
		t.Fatal(err)
	}
	if err := r2.app.DeleteRule(p.ID, rrule.ID); HTTPStatus(err) != 404 {
		t.Fatalf("deleting it twice: %v (status %d)", err, HTTPStatus(err))
	}
	l, _ = r2.app.ListRules(p.ID)
	if len(l.Rules) != 1 || l.Rules[0].Rule.Label != "renamed" {
		t.Fatalf("after edit and delete: %+v", l.Rules)
	}
	waitRule(t, r2.app, p.ID, lrule.ID, "listening after its edit", listening)
}

// TestRulePermitOpenDenied: sshd's PermitOpen forbids the target; the rule
// still listens, a connection through it is refused by the server, and the
// rule says so naming the setting.
func TestRulePermitOpenDenied(t *testing.T) {
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{"PermitOpen 127.0.0.1:1"}})
	home := t.TempDir()
	r := newRulesRig(t, sshd, home, false)
	p := addSshdServer(t, r.app, sshd)
	lport, target := freePort(t), freePort(t)
	rule, err := r.app.AddRule(p.ID, profiles.ForwardRule{Kind: profiles.ForwardLocal, LocalPort: lport, RemoteHost: "127.0.0.1", RemotePort: target})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.app.Connect(p.ID); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	waitRule(t, r.app, p.ID, rule.ID, "listening", listening)
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", lport), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes through a forbidden forward", n)
	}
	c.Close()
	want := fmt.Sprintf("the server refused to open 127.0.0.1:%d: its sshd_config may forbid it (AllowTcpForwarding no/remote or a PermitOpen rule)", target)
	st := waitRule(t, r.app, p.ID, rule.ID, "refused", func(s rules.RuleStatus) bool { return s.State == rules.RuleRefused })
	if st.Reason != want || st.LastError != want {
		t.Fatalf("refused rule: reason %q, last error %q; want %q", st.Reason, st.LastError, want)
	}
	if !strings.Contains(sshd.Log(), "denied") && !strings.Contains(sshd.Log(), "PermitOpen") {
		t.Logf("sshd log does not mention the denial:\n%s", sshd.Log())
	}
}
