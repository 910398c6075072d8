package sshconn

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ---- keys ----

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns one of a few RSA keys generated once per test binary (RSA
// generation is slow under -race).
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

func newEd25519(t testing.TB) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

func signerOf(t testing.TB, k crypto.PrivateKey) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeKey writes priv as an OpenSSH private key (encrypted when passphrase
// is not empty) at path, and path.pub unless noPub.
func writeKey(t testing.TB, path string, priv crypto.PrivateKey, passphrase string, noPub bool) ssh.Signer {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s := signerOf(t, priv)
	if !noPub {
		if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// ---- files ----

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// knownLine is a known_hosts line for addr ("host:port") and key.
func knownLine(addr string, key ssh.PublicKey) string {
	host, port, _ := net.SplitHostPort(addr)
	name := host
	if port != "22" {
		name = "[" + host + "]:" + port
	}
	return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// ---- prompter ----

type fakePrompter struct {
	mu         sync.Mutex
	passwords  []string // returned in order for PasswordLogin; the last repeats
	passphrase []string // returned in order for PasswordKeyPassphrase; the last repeats
	kiAnswer   func(q KIQuestion) string
	decision   HostKeyDecision
	err        error // returned by every method when set

	pwReqs []PasswordPrompt
	kiReqs []KIPrompt
	hkReqs []HostKeyPrompt
}

func pick(list []string, n int) string {
	if len(list) == 0 {
		return ""
	}
	if n >= len(list) {
		return list[len(list)-1]
	}
	return list[n]
}

func (p *fakePrompter) Password(ctx context.Context, req PasswordPrompt) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.pwReqs {
		if r.Kind == req.Kind {
			n++
		}
	}
	p.pwReqs = append(p.pwReqs, req)
	if p.err != nil {
		return "", p.err
	}
	if req.Kind == PasswordKeyPassphrase {
		return pick(p.passphrase, n), nil
	}
	return pick(p.passwords, n), nil
}

func (p *fakePrompter) KeyboardInteractive(ctx context.Context, req KIPrompt) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kiReqs = append(p.kiReqs, req)
	if p.err != nil {
		return nil, p.err
	}
	var out []string
	for _, q := range req.Questions {
		a := ""
		if p.kiAnswer != nil {
			a = p.kiAnswer(q)
		}
		out = append(out, a)
	}
	return out, nil
}

func (p *fakePrompter) UnknownHost(ctx context.Context, req HostKeyPrompt) (HostKeyDecision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hkReqs = append(p.hkReqs, req)
	if p.err != nil {
		return Reject, p.err
	}
	return p.decision, nil
}

func (p *fakePrompter) counts() (pw, ki, hk int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pwReqs), len(p.kiReqs), len(p.hkReqs)
}

func (p *fakePrompter) passwordReqs(kind PasswordKind) []PasswordPrompt {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PasswordPrompt
	for _, r := range p.pwReqs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// noHostPrompt fails the test if asked about a host key.
type noHostPrompt struct {
	fakePrompter
	t testing.TB
}

func (p *noHostPrompt) UnknownHost(ctx context.Context, req HostKeyPrompt) (HostKeyDecision, error) {
	p.t.Errorf("unexpected host key prompt: %+v", req)
	return Reject, errors.New("unexpected prompt")
}

// ---- environment ----

// testEnv is a fake home directory with a config file.
type testEnv struct {
	home   string
	config string
	known  string
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	home := t.TempDir()
	return &testEnv{home: home, config: filepath.Join(home, ".ssh", "config"), known: filepath.Join(home, ".ssh", "known_hosts")}
}

func (e *testEnv) sshPath(name string) string { return filepath.Join(e.home, ".ssh", name) }

func (e *testEnv) writeConfig(t testing.TB, content string) { writeFile(t, e.config, content) }

func (e *testEnv) addKnown(t testing.TB, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(e.known, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(e.known), 0o700); err != nil {
			t.Fatal(err)
		}
		f, err = os.OpenFile(e.known, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}

func (e *testEnv) resolve(t testing.TB, host string, opts Options) *Config {
	t.Helper()
	opts.HomeDir = e.home
	if opts.ConfigPath == "" {
		opts.ConfigPath = e.config
		if _, err := os.Stat(e.config); err != nil {
			e.writeConfig(t, "")
		}
	}
	c, err := Resolve(host, opts)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", host, err)
	}
	return c
}

// hostPort splits "127.0.0.1:1234" into a config snippet.
func hostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// testLogger logs to t at Info level (Debug with SSHCONN_DEBUG=1).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("SSHCONN_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *testEnv) dialer(t testing.TB, cfg *Config, p Prompter) *Dialer {
	return &Dialer{Config: cfg, Prompter: p, Logger: testLogger(t), AgentSocket: "none"}
}

func dialCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ---- agent ----

// startAgent serves an in-memory ssh-agent holding keys on a unix socket.
func startAgent(t testing.TB, keys ...crypto.PrivateKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = agent.ServeAgent(kr, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		os.RemoveAll(dir)
	})
	return sock
}

// ---- goroutine leaks ----

// checkGoroutines records the goroutine count now and, at cleanup (after
// every cleanup registered later, i.e. after servers are closed), waits up to
// 10 s for the count to come back, failing with a stack dump otherwise.
// Tests using it must not run in parallel.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if n, ok := settleGoroutines(base, 10*time.Second); !ok {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: %d goroutines, %d before the test\n%s", n, base, buf)
		}
	})
}

func settleGoroutines(base int, within time.Duration) (int, bool) {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return n, true
		}
		if time.Now().After(deadline) {
			return n, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- a minimal server with several host keys ----

// multiKeyServer is an SSH server offering several host keys and accepting
// any user without authentication. testrig's server has one host key; this
// one exists to test host-key algorithm negotiation.
type multiKeyServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newMultiKeyServer(t testing.TB, keys ...ssh.Signer) *multiKeyServer {
	t.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	for _, k := range keys {
		cfg.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &multiKeyServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					_ = nc.Reject(ssh.Prohibited, "no channels")
				}
				sc.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *multiKeyServer) Addr() string { return s.ln.Addr().String() }

func mustContain(t testing.TB, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q\ndoes not contain %q", s, sub)
		}
	}
}

func fileContains(t testing.TB, path string, key ssh.PublicKey) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))[len(key.Type())+1:]))
}
