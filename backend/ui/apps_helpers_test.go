package ui

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

// appsRig is an App whose server logins run in agents (this test binary,
// see TestMain), an in-process SSH server that runs commands (so the
// discovery script runs on "the server", which is this machine), and the
// test web app in a process of its own on the server's loopback.
type appsRig struct {
	*testApp
	srv      *testrig.SSHServer
	key      string // the client key file the server accepts
	web      *webAppProc
	endpoint string // endpoints.json
}

// appsServer is an in-process SSH server that runs commands and accepts a
// key (so reconnecting never asks anything), and that key's file;
// alsoForwardTo are non-loopback addresses it may forward to (see
// testrig.SSHServerOptions.AlsoForwardTo).
func appsServer(t *testing.T, alsoForwardTo ...string) (*testrig.SSHServer, string) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(k, "apps test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_apps")
	if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}, AllowExec: true, AlsoForwardTo: alsoForwardTo})
	return srv, path
}

// newAppsRig builds the rig. home may be shared by two rigs in turn (a
// restart of Porthole); "" makes a new one.
func newAppsRig(t *testing.T, srv *testrig.SSHServer, key string, web *webAppProc, home string) *appsRig {
	t.Helper()
	if home == "" {
		home = t.TempDir()
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(home, ".ssh", "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfgDir := filepath.Join(home, ".config", "porthole")
	store, _ := profiles.Open(filepath.Join(cfgDir, "profiles.json"), log)
	secrets := profiles.NewMemory()
	sup := agent.NewSupervisor(agent.SupervisorOptions{Env: []string{"GORACE=atexit_sleep_ms=0"}, Logger: log.With("component", "agents")})
	pm, err := portmap.Open(filepath.Join(cfgDir, "endpoints.json"), log)
	if err != nil {
		t.Fatalf("portmap: %v", err)
	}
	bus := events.New()
	rec := &recorder{}
	bus.AddSink(rec)
	app, life := New(Options{Log: log, Mode: ModeServe, Bus: bus, Servers: servers.Config{
		Store:   store,
		Secrets: secrets,
		Backend: "memory (test)",
		SSH: servers.SSHBase{
			HomeDir: home, ConfigPath: "none", SystemConfigPath: "none", AgentSocket: "none",
			KnownHostsFiles: []string{kh},
		},
		StartLogin:  servers.SupervisorLogins(sup),
		CloseLogins: func() { _ = sup.Close() },
	}, Ports: pm, Tabs: apps.OpenTabs(filepath.Join(cfgDir, "tabs.json"), log), ServeOrigin: "http://127.0.0.1:9"})
	// Listings probe only this test's own processes (the web app, the
	// agents): the test SSH server runs on this machine, so it lists this
	// machine's sockets, and other packages' tests run in parallel and
	// count the connections their listeners get.
	app.apps.SetProbeOnly(func(svc discovery.Service) bool {
		return svc.Process != nil && testrig.DescendsFromThisProcess(svc.Process.PID)
	})
	ctx, cancel := context.WithCancel(context.Background())
	life.Startup(ctx)
	r := &appsRig{testApp: &testApp{app: app, life: life, bus: bus, rec: rec, secrets: secrets, store: store, home: home, logs: logs}, srv: srv, key: key, web: web, endpoint: pm.Path()}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		life.Shutdown()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	})
	return r
}

// quit stops the App the way Porthole quits (its agents and forwards too).
func (r *appsRig) quit() {
	r.life.Shutdown()
}

// addServer saves a profile for the rig's SSH server that logs in with the
// key, so Connect (and every reconnect) asks nothing.
func (r *appsRig) addServer(t *testing.T, name string) profiles.Profile {
	t.Helper()
	host, port, _ := net.SplitHostPort(r.srv.Addr())
	n, _ := strconv.Atoi(port)
	p, err := r.app.AddServer(profiles.Profile{Name: name, Host: host, Port: n, User: r.srv.User(), KeyPath: r.key, Auth: []profiles.AuthMethod{profiles.AuthKey}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *appsRig) connect(t *testing.T, id string) {
	t.Helper()
	if _, err := r.app.Connect(id); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

// webAppProc is internal/testrig/cmd/testwebapp running in its own process:
// on "the server" it must not look like one of Porthole's own listeners.
type webAppProc struct {
	url  string
	port int
}

// startWebAppProc builds and starts the test web app (the build is in the
// test's temporary directory; the Go build cache keeps it quick); args are
// testwebapp's flags, e.g. "-addr", "[::1]:0".
func startWebAppProc(t *testing.T, args ...string) *webAppProc {
	t.Helper()
	webAppBin := filepath.Join(t.TempDir(), "testwebapp")
	if out, err := exec.Command("go", "build", "-o", webAppBin, "github.com/porthole-app/porthole/internal/testrig/cmd/testwebapp").CombinedOutput(); err != nil {
		t.Fatalf("build testwebapp: %v\n%s", err, out)
	}
	cmd := exec.Command(webAppBin, append([]string{"-stdin"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("testwebapp printed no URL: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	u := strings.TrimSpace(line)
	_, ps, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	port, _ := strconv.Atoi(ps)
	return &webAppProc{url: u, port: port}
}

// browser is a cookie-keeping HTTP client (like a browser profile).
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func fetch(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}
