package notify

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

// privateBus starts a D-Bus daemon of the test's own (dbus-daemon
// --session) and returns its address; it stops with the test.
func privateBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon is not installed (apt-get install -y dbus)")
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(line)
}

// sentNote is one Notify call the fake notification service answered.
type sentNote struct {
	id      uint32
	summary string
	body    string
	actions []string
	at      time.Time
}

// notifd is a fake org.freedesktop.Notifications service on a bus.
type notifd struct {
	conn *dbus.Conn
	mu   sync.Mutex
	sent []sentNote
	next uint32
}

func (d *notifd) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	d.sent = append(d.sent, sentNote{id: d.next, summary: summary, body: body, actions: actions, at: time.Now()})
	return d.next, nil
}

func (d *notifd) GetCapabilities() ([]string, *dbus.Error) { return []string{"actions", "body"}, nil }

func (d *notifd) all() []sentNote {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]sentNote(nil), d.sent...)
}

// click sends ActionInvoked for a notification, as a desktop does.
func (d *notifd) click(t *testing.T, id uint32, key string) {
	t.Helper()
	if err := d.conn.Emit(notifyPath, notifyInterface+".ActionInvoked", id, key); err != nil {
		t.Fatal(err)
	}
}

func startNotifd(t *testing.T, addr string) *notifd {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	d := &notifd{conn: conn}
	if err := conn.Export(d, notifyPath, notifyInterface); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(notifyService, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v, %v", r, err)
	}
	return d
}

// waitNote waits up to limit for a notification that ok accepts.
func waitNote(t *testing.T, d *notifd, limit time.Duration, what string, ok func(sentNote) bool) sentNote {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, n := range d.all() {
			if ok(n) {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s notification within %s; sent: %+v", what, limit, d.all())
	return sentNote{}
}

// liveRig is a server login to an in-process SSH server (which runs
// commands: discovery lists this machine) behind a relay, its apps, and a
// Notifier sending to a fake notification service on a private bus.
type liveRig struct {
	n      *Notifier
	bus    *events.Bus
	srv    *testrig.SSHServer
	relay  *testrig.Relay
	mgr    *servers.Manager
	id     string
	notifd *notifd
}

func newLiveRig(t *testing.T, cfg Config) *liveRig {
	t.Helper()
	return newLiveRigOTP(t, cfg, "")
}

// newLiveRigOTP: with otp set, the server asks for that one-time code
// (keyboard-interactive) at every login, and the rig answers the first.
func newLiveRigOTP(t *testing.T, cfg Config, otp string) *liveRig {
	t.Helper()
	addr := privateBus(t)
	d := startNotifd(t, addr)

	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(k)
	pemKey, _ := ssh.MarshalPrivateKey(k, "notify test")
	home := t.TempDir()
	keyPath := filepath.Join(home, "id_test")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(pemKey), 0o600); err != nil {
		t.Fatal(err)
	}
	so := testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}, AllowExec: true}
	auth := []profiles.AuthMethod{profiles.AuthKey}
	if otp != "" {
		so.AuthorizedKeys, so.KeyboardInteractive = nil, []testrig.KIQuestion{{Prompt: "Verification code: ", Answer: otp}}
		auth = []profiles.AuthMethod{profiles.AuthKeyboardInteractive}
	}
	srv := testrig.NewSSHServer(t, so)
	relay := testrig.NewRelay(t, srv.Addr())
	kh := filepath.Join(home, "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(relay.Addr())}, srv.HostKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	store, err := profiles.Open(filepath.Join(home, "profiles.json"), log)
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	mgr := servers.New(log, bus, servers.Config{
		Store: store, Secrets: profiles.NewMemory(), Backend: "memory (test)",
		SSH:        servers.SSHBase{HomeDir: home, ConfigPath: "none", SystemConfigPath: "none", AgentSocket: "none", KnownHostsFiles: []string{kh}},
		StartLogin: servers.LocalLogins(log),
	})
	am := apps.New(log, bus, mgr, nil, nil)
	// Listings probe only this test's processes: the test SSH server lists
	// this machine's sockets, and other packages' tests run in parallel.
	am.SetProbeOnly(func(svc discovery.Service) bool {
		return svc.Process != nil && testrig.DescendsFromThisProcess(svc.Process.PID)
	})
	cfg.Sender = NewDBus(log, addr)
	n := New(Options{Config: cfg, Log: log, Bus: bus, Servers: mgr, Apps: am})
	mgr.OnAgentEvent(n.AgentEvent)
	ctx, cancel := context.WithCancel(context.Background())
	n.Start(ctx)
	mgr.Start(ctx)
	t.Cleanup(func() { cancel(); mgr.Shutdown(); n.Close() })

	host, ps, _ := net.SplitHostPort(relay.Addr())
	port, _ := strconv.Atoi(ps)
	p, err := mgr.Add(profiles.Profile{Name: "gpu1", Host: host, Port: port, User: srv.User(), KeyPath: keyPath, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := mgr.Connect(p.ID); done <- err }()
	if otp != "" {
		q := waitPrompt(t, mgr, p.ID)
		if err := mgr.Prompts().Answer(q.ID, prompts.PromptAnswer{Answers: []string{otp}}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Connect did not return within 60 s")
	}
	r := &liveRig{n: n, bus: bus, srv: srv, relay: relay, mgr: mgr, id: p.ID, notifd: d}
	r.waitBaseline(t)
	return r
}

// waitPrompt waits for an open question of server id.
func waitPrompt(t *testing.T, mgr *servers.Manager, id string) prompts.Prompt {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, q := range mgr.Prompts().List() {
			if q.ServerID == id {
				return q
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no question within 30 s")
	return prompts.Prompt{}
}

// waitBaseline waits for the first listing since connect.
func (r *liveRig) waitBaseline(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r.n.mu.Lock()
		tr := r.n.servers[r.id]
		done := tr != nil && tr.baseline != nil
		r.n.mu.Unlock()
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no baseline listing within 30 s of connecting")
}

// closedAddr is a loopback address where nothing listens (a stopped sshd).
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// TestUnreachableAndBackOverDBus: the SSH server stops (its connections
// reset, new ones refused) for longer than the threshold (1.5 s here; the
// 30 s rule is TestUnreachableAfter30s on a fake clock): the desktop gets
// "gpu1 is unreachable" no sooner than the threshold, once, and "gpu1 is
// back" once it answers again.
func TestUnreachableAndBackOverDBus(t *testing.T) {
	t.Parallel()
	const threshold = 1500 * time.Millisecond
	r := newLiveRig(t, Config{UnreachableAfter: threshold, PollEvery: 500 * time.Millisecond})
	if got := r.notifd.all(); len(got) != 0 {
		t.Fatalf("sent before anything happened: %+v", got)
	}
	stopped := time.Now()
	r.relay.SetTarget(closedAddr(t))
	r.relay.CutFlows()

	down := waitNote(t, r.notifd, 30*time.Second, "unreachable", func(n sentNote) bool { return n.summary == "gpu1 is unreachable" })
	if d := down.at.Sub(stopped); d < threshold {
		t.Fatalf("unreachable after %s; the rule is more than %s", d, threshold)
	}
	if !strings.Contains(down.body, "keeps trying") || len(down.actions) != 4 || down.actions[1] != "Show" {
		t.Fatalf("unreachable notification: %+v", down)
	}
	time.Sleep(threshold) // still down a while longer: no second notification
	r.relay.SetTarget(r.srv.Addr())
	waitNote(t, r.notifd, 30*time.Second, "back", func(n sentNote) bool { return n.summary == "gpu1 is back" })
	time.Sleep(500 * time.Millisecond)
	var got []string
	for _, n := range r.notifd.all() {
		got = append(got, n.summary)
	}
	if strings.Join(got, "|") != "gpu1 is unreachable|gpu1 is back" {
		t.Fatalf("sent %q; want exactly unreachable, then back", got)
	}
}

// freeLowPort is a free loopback port below the ephemeral range.
func freeLowPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		n, _ := rand.Int(rand.Reader, big.NewInt(10000))
		port := 20000 + int(n.Int64())
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			_ = ln.Close()
			return port
		}
	}
	t.Fatal("no free port in 20000–29999")
	return 0
}

// startWebApp runs internal/testrig/cmd/testwebapp on port in a process of
// its own (discovery hides the test process's own listeners).
func startWebApp(t *testing.T, port int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testwebapp")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/porthole-app/porthole/internal/testrig/cmd/testwebapp").CombinedOutput(); err != nil {
		t.Fatalf("build testwebapp: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-stdin", "-addr", "127.0.0.1:"+strconv.Itoa(port))
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
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
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("testwebapp did not start: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
}

// TestNewAppOverDBus: a web app that starts listening on the server after
// the baseline listing is announced on the desktop with an Open action;
// clicking it asks the window to open that app.
func TestNewAppOverDBus(t *testing.T) {
	t.Parallel()
	port := freeLowPort(t)
	r := newLiveRig(t, Config{PollEvery: 500 * time.Millisecond})
	opened := make(chan OpenRequest, 16)
	events.Subscribe(r.bus, TopicOpen, func(o OpenRequest) { opened <- o })

	startWebApp(t, port)
	want := "appeared on gpu1 (port " + strconv.Itoa(port) + ")"
	n := waitNote(t, r.notifd, 30*time.Second, "new app", func(n sentNote) bool { return strings.HasSuffix(n.body, want) })
	if n.summary != "New app on gpu1" || len(n.actions) != 4 || n.actions[1] != "Open" {
		t.Fatalf("new app notification: %+v", n)
	}
	r.notifd.click(t, n.id, "open")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case o := <-opened:
			if o.Port != port {
				continue
			}
			if o.ServerID != r.id || !o.Show {
				t.Fatalf("open request %+v; want server %s, shown", o, r.id)
			}
			return
		case <-deadline:
			t.Fatal("clicking Open asked the window for nothing within 10 s")
		}
	}
}

// TestBackgroundReconnectNeedsYouOverDBus: the one-time code asked while
// the person's Connect runs is no notification; the one a background
// reconnect asks for (after the connection broke) is: "gpu1 needs your
// one-time code to reconnect".
func TestBackgroundReconnectNeedsYouOverDBus(t *testing.T) {
	t.Parallel()
	r := newLiveRigOTP(t, Config{PollEvery: 500 * time.Millisecond}, "424242")
	if got := r.notifd.all(); len(got) != 0 {
		t.Fatalf("the code asked during Connect notified: %+v", got)
	}
	r.relay.CutFlows() // the network changed: the login reconnects by itself
	n := waitNote(t, r.notifd, 30*time.Second, "needs-you", func(n sentNote) bool { return n.summary == "gpu1 needs you" })
	if n.body != "gpu1 needs your one-time code to reconnect." {
		t.Fatalf("needs-you notification: %+v", n)
	}
	q := waitPrompt(t, r.mgr, r.id)
	if err := r.mgr.Prompts().Answer(q.ID, prompts.PromptAnswer{Answers: []string{"424242"}}); err != nil {
		t.Fatal(err)
	}
}
