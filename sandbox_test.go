package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestMain lets the test binary act as the porthole binary: `serve` for the
// sandbox tests, and `agent` when the app's Supervisor starts it again
// (/proc/self/exe) with its minimal environment, which carries agent.EnvMarker.
func TestMain(m *testing.M) {
	if os.Getenv("PORTHOLE_TEST_AS_PORTHOLE") == "1" ||
		(os.Getenv(agent.EnvMarker) != "" && len(os.Args) > 1 && os.Args[1] == "agent") {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// servedApp is a `porthole serve` child process driven over its HTTP API.
type servedApp struct {
	cmd   *exec.Cmd
	base  string
	token string
	log   *bytes.Buffer
}

func startServedApp(t *testing.T, home string) *servedApp {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "PORTHOLE_TEST_AS_PORTHOLE=1", "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DBUS_SESSION_BUS_ADDRESS=disabled:", "SSH_AUTH_SOCK=")
	var logs bytes.Buffer
	cmd.Stderr = &syncWriter{w: &logs}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &servedApp{cmd: cmd, log: &logs}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve log:\n%s", logs.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no URL: %v", err)
	}
	go io.Copy(io.Discard, out)
	u, tok, ok := strings.Cut(strings.TrimSpace(line), "/#token=")
	if !ok {
		t.Fatalf("first line %q is not the URL", line)
	}
	a.base, a.token = u, tok
	return a
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (a *servedApp) call(t *testing.T, method string, out any, args ...any) int {
	t.Helper()
	if args == nil {
		args = []any{}
	}
	body, _ := json.Marshal(args)
	req, _ := http.NewRequest("POST", a.base+"/api/"+method, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Logf("%s: %d %s", method, resp.StatusCode, b)
		return resp.StatusCode
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v in %s", method, err, b)
		}
	}
	return 200
}

// childrenOf lists the pids whose parent is pid and whose argv[1] is arg.
func childrenOf(pid int, arg string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv := strings.Split(string(cmdline), "\x00")
		if len(argv) > 1 && argv[1] == arg {
			out = append(out, p)
		}
	}
	return out
}

// TestSandboxKill9App: a server connected through `porthole serve` runs in an
// agent process that holds no secret in its cmdline or environment, and that
// is gone within 1 s when the app is killed with SIGKILL.
func TestSandboxKill9App(t *testing.T) {
	const secret = "s3cret-for-the-sandbox-test"
	home := t.TempDir()
	srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{User: "tester", Password: secret})
	host, port, _ := strings.Cut(srv.Addr(), ":")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	app := startServedApp(t, home)
	var prof struct {
		ID string `json:"id"`
	}
	portN, _ := strconv.Atoi(port)
	if code := app.call(t, "AddServer", &prof, map[string]any{"name": "sandbox", "host": host, "port": portN, "user": "tester", "auth": []string{"password"}, "options": map[string]any{}}); code != 200 {
		t.Fatalf("AddServer: %d", code)
	}
	done := make(chan int, 1)
	go func() { done <- app.call(t, "Connect", nil, prof.ID) }()
	answered := false
	for deadline := time.Now().Add(30 * time.Second); !answered && time.Now().Before(deadline); {
		var prompts []struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
		}
		app.call(t, "Prompts", &prompts)
		for _, p := range prompts {
			if app.call(t, "AnswerPrompt", nil, p.ID, map[string]any{"secret": secret}) == 200 {
				answered = true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !answered {
		t.Fatal("no password prompt within 30 s")
	}
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("Connect: %d", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Connect did not return within 60 s")
	}

	// The connection drops (server restart, network change): connecting
	// again asks nothing, because the agent kept the password that worked.
	srv.DropAll()
	reconnected := make(chan int, 1)
	go func() { reconnected <- app.call(t, "Connect", nil, prof.ID) }()
	giveUp := time.After(30 * time.Second)
	for waiting := true; waiting; {
		select {
		case code := <-reconnected:
			if code != 200 {
				t.Fatalf("Connect after the connection dropped: %d", code)
			}
			waiting = false
		case <-giveUp:
			t.Fatal("Connect after the connection dropped did not return within 30 s")
		case <-time.After(20 * time.Millisecond):
			var prompts []json.RawMessage
			app.call(t, "Prompts", &prompts)
			if len(prompts) > 0 {
				t.Fatalf("reconnecting asked again: %s", prompts[0])
			}
		}
	}
	if n := srv.Stats().AuthOK; n < 2 {
		t.Fatalf("server saw %d successful logins, want a second one after the drop", n)
	}

	agents := childrenOf(app.cmd.Process.Pid, "agent")
	if len(agents) != 1 {
		t.Fatalf("agent processes of serve (pid %d): %v, want exactly one", app.cmd.Process.Pid, agents)
	}
	pid := agents[0]
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("the secret is in /proc/%d/%s", pid, f)
		}
	}
	t.Logf("agent pid %d holds the login; secret not in its cmdline or environ", pid)

	if err := app.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for time.Since(killed) < time.Second {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			t.Logf("agent gone %v after kill -9 of the app", time.Since(killed).Round(time.Millisecond))
			return
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			t.Logf("agent dead (zombie, awaiting its reaper) %v after kill -9 of the app", time.Since(killed).Round(time.Millisecond))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("agent pid %d still alive 1 s after the app was killed", pid)
}
