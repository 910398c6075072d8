package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/porthole-app/porthole/internal/testrig"
)

// secretSet is every secret a test run handed Porthole, by name.
type secretSet []struct{ name, value string }

// scan reports, as test errors, every secret found in data.
func (s secretSet) scan(t *testing.T, where string, data []byte) {
	t.Helper()
	for _, sec := range s {
		if bytes.Contains(data, []byte(sec.value)) {
			i := bytes.Index(data, []byte(sec.value))
			from, to := max(0, i-80), min(len(data), i+len(sec.value)+40)
			t.Errorf("the %s is in %s: …%q…", sec.name, where, data[from:to])
		}
	}
}

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestSecretsNeverLeak runs `porthole serve` (with its agents) through a
// realistic session that hands it every kind of secret: a password (answered
// with remember off, then on), a key passphrase, a Jupyter-like app token
// (opened as an app, as a pasted URL, saved in a tab, and opened in the
// system browser) and serve's own token. Then it searches serve's log (at
// debug level) and each server's log, every file under the throwaway HOME
// (config, cache, state), $XDG_RUNTIME_DIR and $TMPDIR (right after the
// browser was started, and again after serve quit), the event stream it
// received, /proc/PID/cmdline and environ of serve and of every agent, and
// the argv and environment a fake xdg-open recorded, and finds none of them.
// The browser must have been sent to the app's one-time link, which works
// once.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts porthole serve and its agents")
	}
	password := randomSecret(t, "pw-")
	passphrase := randomSecret(t, "pp-")
	appToken := randomSecret(t, "tk")
	home := t.TempDir()
	// $XDG_RUNTIME_DIR and $TMPDIR live apart from HOME, as on a desktop;
	// they are scanned too, while serve runs and after it quit.
	runtimeDir, tmpDir := t.TempDir(), t.TempDir()
	for _, d := range []string{runtimeDir, tmpDir} {
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{".ssh", ".config", ".cache", ".local/state"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// The server: one in-process SSH server taking the password or the key.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "porthole secrets test", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(home, ".ssh", "id_secret")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{User: "tester", Password: password, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	host, portS, _ := strings.Cut(srv.Addr(), ":")
	sshPort, _ := strconv.Atoi(portS)
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The app on the server: it answers only with its token, as Jupyter does.
	var sawToken sync.Once
	tokenSeen := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") != appToken {
			http.Error(w, "token required", http.StatusForbidden)
			return
		}
		sawToken.Do(func() { close(tokenSeen) })
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><head><title>JupyterLab</title></head><body>lab</body></html>")
	})}
	go web.Serve(ln)
	t.Cleanup(func() { web.Close() })
	appPort := ln.Addr().(*net.TCPAddr).Port

	// The system browser: a fake xdg-open that records its argv and environment.
	bin := t.TempDir()
	rec := filepath.Join(t.TempDir(), "xdg-open.record")
	script := "#!/bin/sh\n{ printf 'argv:'; printf ' %s' \"$0\" \"$@\"; printf '\\n'; env; } >> '" + rec + "'\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	app, logs := startServeForSecrets(t, home, []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "XDG_STATE_HOME=" + filepath.Join(home, ".local/state"),
		"XDG_RUNTIME_DIR=" + runtimeDir, "TMPDIR=" + tmpDir,
		"PORTHOLE_LOG=debug", "DISPLAY=", "WAYLAND_DISPLAY=",
	})
	secrets := secretSet{{"password", password}, {"key passphrase", passphrase}, {"app token", appToken}, {"serve token", app.token}}

	// The event stream, as the page receives it, from start to end.
	var events syncBuffer
	ctx, stopEvents := context.WithCancel(context.Background())
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		req, _ := http.NewRequestWithContext(ctx, "GET", app.base+"/api/events", nil)
		req.Header.Set("Authorization", "Bearer "+app.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		io.Copy(&events, resp.Body)
	}()
	t.Cleanup(func() { stopEvents(); <-eventsDone })

	addServer := func(p map[string]any) string {
		t.Helper()
		var prof struct {
			ID string `json:"id"`
		}
		p["host"], p["port"], p["user"], p["options"] = host, sshPort, "tester", map[string]any{}
		if code := app.call(t, "AddServer", &prof, p); code != 200 {
			t.Fatalf("AddServer %v: %d", p["name"], code)
		}
		return prof.ID
	}
	pwID := addServer(map[string]any{"name": "with-password", "auth": []string{"password"}})
	keyID := addServer(map[string]any{"name": "with-key", "auth": []string{"key"}, "keyPath": keyPath})

	connect(t, app, pwID, password, false)
	if code := app.call(t, "Disconnect", nil, pwID); code != 200 {
		t.Fatalf("Disconnect: %d", code)
	}
	connect(t, app, pwID, password, true) // remembered if the keyring works (here it does not: no D-Bus)
	connect(t, app, keyID, passphrase, true)

	// The app: opened from its port with the token, and as a pasted URL.
	var opened struct {
		LocalURL string `json:"localUrl"`
	}
	if code := app.call(t, "OpenApp", &opened, pwID, appPort, "/lab?token="+appToken); code != 200 {
		t.Fatalf("OpenApp: %d", code)
	}
	if !strings.Contains(opened.LocalURL, appToken) {
		t.Fatalf("OpenApp's URL %q lost the token the tab needs", opened.LocalURL)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(opened.LocalURL)
	if err != nil {
		t.Fatalf("GET the app through its forward: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case <-tokenSeen:
	default:
		t.Fatalf("the app did not get its token through the forward (status %d)", resp.StatusCode)
	}
	pasted := fmt.Sprintf("http://localhost:%d/tree?token=%s", appPort, appToken)
	if code := app.call(t, "ParseAppURL", nil, keyID, pasted); code != 200 {
		t.Fatalf("ParseAppURL: %d", code)
	}
	tabs := []map[string]any{{"id": "t1", "serverId": pwID, "port": appPort, "path": "/lab?token=" + appToken, "title": "JupyterLab",
		"localUrl": opened.LocalURL, "remoteUrl": fmt.Sprintf("http://localhost:%d/lab?token=%s", appPort, appToken)}}
	if code := app.call(t, "SaveTabs", nil, tabs); code != 200 {
		t.Fatalf("SaveTabs: %d", code)
	}
	if code := app.call(t, "OpenExternal", nil, opened.LocalURL); code != 200 {
		t.Fatalf("OpenExternal: %d", code)
	}
	// While the browser starts (and long after): no file anywhere holds
	// the token, not even a private, short-lived one.
	liveFiles := scanTree(t, secrets, "while serve runs", home, runtimeDir, tmpDir)
	// The browser was sent to a one-time link on the app's endpoint: it
	// leads to the app with its token once, then no more.
	t.Run("one-time link", func(t *testing.T) {
		b, err := os.ReadFile(rec)
		if err != nil {
			t.Fatalf("OpenExternal did not run the fake xdg-open: %v", err)
		}
		argv, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(argv)
		link := f[len(f)-1]
		origin := opened.LocalURL[:len("http://")+strings.IndexByte(opened.LocalURL[len("http://"):], '/')]
		if !strings.HasPrefix(link, origin+"/.porthole/open/") {
			t.Fatalf("the browser was started on %q, want a one-time link under %s/.porthole/open/", link, origin)
		}
		noFollow := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for i, want := range []int{http.StatusSeeOther, http.StatusGone} {
			resp, err := noFollow.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("use %d of the link: %s, want %d", i+1, resp.Status, want)
			}
			if loc := resp.Header.Get("Location"); want == http.StatusSeeOther && loc != strings.TrimPrefix(opened.LocalURL, origin) {
				t.Fatalf("the link leads to %q, want %q", loc, strings.TrimPrefix(opened.LocalURL, origin))
			}
		}
	})

	// Every Porthole process, while the logins are live.
	procs := map[int]string{app.cmd.Process.Pid: "serve"}
	for _, pid := range childrenOf(app.cmd.Process.Pid, "agent") {
		procs[pid] = "agent"
	}
	if len(procs) < 3 {
		t.Errorf("processes %v: want serve and an agent per connected server", procs)
	}
	for pid, what := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			secrets.scan(t, fmt.Sprintf("the %s's /proc/%d/%s", what, pid, f), b)
		}
	}

	// Each server's log, as the Log panel shows it.
	for _, id := range []string{pwID, keyID} {
		var view struct {
			Lines []string `json:"lines"`
		}
		if code := app.call(t, "ServerLog", &view, id); code != 200 || len(view.Lines) == 0 {
			t.Errorf("ServerLog(%s): %d, %d lines", id, code, len(view.Lines))
		}
		secrets.scan(t, "the server log of "+id, []byte(strings.Join(view.Lines, "\n")))
	}

	// Stop serve as a user would, so what it writes at exit is scanned too.
	for _, id := range []string{pwID, keyID} {
		app.call(t, "Disconnect", nil, id)
	}
	if err := app.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { app.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Error("serve did not exit within 30 s of SIGTERM")
	}
	stopEvents()
	<-eventsDone

	secrets.scan(t, "serve's log (stderr and stdout after the URL, PORTHOLE_LOG=debug)", logs.Bytes())
	if !bytes.Contains(logs.Bytes(), []byte("level=DEBUG")) {
		t.Errorf("the log has no debug lines: the scan would miss what debug logging writes")
	}
	secrets.scan(t, "the event stream", events.Bytes())
	if events.Len() == 0 {
		t.Error("the event stream was empty")
	}
	files := scanTree(t, secrets, "after serve quit", home, runtimeDir, tmpDir)
	if _, err := os.Stat(filepath.Join(home, ".config", "porthole", "tabs.json")); err != nil {
		t.Errorf("tabs.json was not written where the scan looks: %v", err)
	}
	t.Logf("scanned %d files under HOME, $XDG_RUNTIME_DIR and $TMPDIR while serve ran %v and %d after it quit %v, %d bytes of log, %d bytes of events, %d processes",
		len(liveFiles), liveFiles, len(files), files, logs.Len(), events.Len(), len(procs))

	t.Run("xdg-open argv and environment", func(t *testing.T) {
		b, err := os.ReadFile(rec)
		if err != nil {
			t.Fatalf("OpenExternal did not run the fake xdg-open: %v", err)
		}
		argv, env, _ := strings.Cut(string(b), "\n")
		secrets.scan(t, "xdg-open's environment", []byte(env))
		secrets.scan(t, "xdg-open's argv", []byte(argv))
	})
}

// scanTree scans every regular file under roots for the secrets (when says
// at which point of the test) and returns the files it read.
func scanTree(t *testing.T, secrets secretSet, when string, roots ...string) []string {
	t.Helper()
	var files []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, p)
			secrets.scan(t, p+" ("+when+")", b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// connect connects server id, answering its password or passphrase prompt.
func connect(t *testing.T, app *servedApp, id, secret string, remember bool) {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- app.call(t, "Connect", nil, id) }()
	answered := false
	for deadline := time.Now().Add(30 * time.Second); !answered && time.Now().Before(deadline); {
		var prompts []struct {
			ID       string `json:"id"`
			ServerID string `json:"serverId"`
		}
		app.call(t, "Prompts", &prompts)
		for _, p := range prompts {
			if p.ServerID == id && app.call(t, "AnswerPrompt", nil, p.ID, map[string]any{"secret": secret, "remember": remember}) == 200 {
				answered = true
			}
		}
		select {
		case code := <-done:
			done <- code
			if !answered {
				t.Fatalf("Connect returned %d without asking", code)
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !answered {
		t.Fatal("no prompt within 30 s")
	}
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("Connect: %d", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Connect did not return within 60 s")
	}
}

// startServeForSecrets starts `porthole serve` like startServedApp, with
// extra environment, keeping everything it writes but the URL line.
func startServeForSecrets(t *testing.T, home string, env []string) (*servedApp, *logView) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "PORTHOLE_TEST_AS_PORTHOLE=1", "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DBUS_SESSION_BUS_ADDRESS=disabled:", "SSH_AUTH_SOCK=")
	cmd.Env = append(cmd.Env, env...)
	logs, stdout := &syncBuffer{}, &syncBuffer{}
	cmd.Stderr, cmd.Stdout = logs, stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve log:\n%s", logs.Bytes())
		}
	})
	var line string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, _, ok := bytes.Cut(stdout.Bytes(), []byte("\n")); ok {
			line = string(l)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URL within 30 s: %q", stdout.Bytes())
		}
	}
	// The log is stderr and what stdout says after the URL line (the URL
	// with serve's token is for the user's terminal).
	u, tok, ok := strings.Cut(strings.TrimSpace(line), "/#token=")
	if !ok {
		t.Fatalf("first line %q is not the URL", line)
	}
	return &servedApp{cmd: cmd, base: u, token: tok}, &logView{stderr: logs, stdout: stdout, skip: len(line) + 1}
}

// logView is serve's stderr followed by its stdout past the URL line.
type logView struct {
	stderr, stdout *syncBuffer
	skip           int
}

func (l *logView) Bytes() []byte {
	return append(l.stderr.Bytes(), l.stdout.Bytes()[l.skip:]...)
}

func (l *logView) Len() int { return len(l.Bytes()) }

// syncBuffer is a bytes.Buffer for several writers and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
