package sshconn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/internal/testrig"
	"golang.org/x/crypto/ssh"
)

// server starts an in-process server, writes "Host srv" for it into the
// config (with extra lines) and its key into known_hosts, and resolves "srv".
func (e *testEnv) server(t *testing.T, opts testrig.SSHServerOptions, extra string) (*testrig.SSHServer, *Config) {
	t.Helper()
	srv := e.serverUnknown(t, opts, extra)
	e.addKnown(t, knownLine(srv.Addr(), srv.HostKey()))
	return srv, e.resolve(t, "srv", Options{})
}

// serverUnknown is server without the known_hosts line (and without resolving).
func (e *testEnv) serverUnknown(t *testing.T, opts testrig.SSHServerOptions, extra string) *testrig.SSHServer {
	t.Helper()
	srv := testrig.NewSSHServer(t, opts)
	e.configFor(t, "srv", srv.Addr(), srv.User(), extra)
	return srv
}

// configFor writes a config with "Host alias" pointing at addr.
func (e *testEnv) configFor(t *testing.T, alias, addr, user, extra string) {
	t.Helper()
	host, port := hostPort(t, addr)
	e.writeConfig(t, fmt.Sprintf("Host %s\n  HostName %s\n  Port %s\n  User %s\n%s\nHost *\n  GlobalKnownHostsFile none\n", alias, host, port, user, extra))
}

// dialOnce dials cfg and closes the client at the end of the test.
func dialOnce(t *testing.T, d *Dialer) (*Client, error) {
	t.Helper()
	c, err := d.Dial(dialCtx(t))
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestAuthPublicKey(t *testing.T) {
	checkGoroutines(t)
	env := newEnv(t)
	priv, _ := newEd25519(t)
	s := writeKey(t, env.sshPath("id_ed25519"), priv, "", false)
	srv, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "")
	p := &fakePrompter{}
	c, err := env.dialer(t, cfg, p).Dial(dialCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.User() != srv.User() {
		t.Errorf("user %q", c.User())
	}
	if pw, ki, hk := p.counts(); pw+ki+hk != 0 {
		t.Errorf("prompted: %d %d %d", pw, ki, hk)
	}
	if st := srv.Stats(); st.AuthOK != 1 {
		t.Errorf("server stats %+v", st)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestAuthEncryptedKey(t *testing.T) {
	cases := []struct {
		name        string
		passphrases []string
		noPub       bool
		wantPrompts int
		wantErr     []error
		wantMsg     string
	}{
		{name: "right passphrase", passphrases: []string{"correct horse"}, wantPrompts: 1},
		{name: "no .pub file (public key embedded)", passphrases: []string{"correct horse"}, noPub: true, wantPrompts: 1},
		{name: "wrong then right", passphrases: []string{"nope", "correct horse"}, wantPrompts: 2},
		{name: "wrong passphrase", passphrases: []string{"nope"}, wantPrompts: 3,
			wantErr: []error{ErrAuthFailed, ErrWrongPassphrase},
			wantMsg: "wrong passphrase for ~/.ssh/id_ed25519 (3 attempts)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			priv, _ := newEd25519(t)
			keyPath := env.sshPath("id_ed25519")
			s := writeKey(t, keyPath, priv, "correct horse", tc.noPub)
			srv, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "")
			p := &fakePrompter{passphrase: tc.passphrases}
			_, err := dialOnce(t, env.dialer(t, cfg, p))
			reqs := p.passwordReqs(PasswordKeyPassphrase)
			if len(reqs) != tc.wantPrompts {
				t.Errorf("%d passphrase prompts, want %d", len(reqs), tc.wantPrompts)
			}
			for i, r := range reqs {
				if r.KeyPath != keyPath || r.User != srv.User() || r.Host != srv.Addr() || r.Attempt != i+1 {
					t.Errorf("prompt %d: %+v", i, r)
				}
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error %v is not %v", err, want)
				}
			}
			if err != nil {
				mustContain(t, err.Error(), tc.wantMsg)
			}
		})
	}
}

// Like OpenSSH, an encrypted key is only unlocked when the server accepts it.
func TestAuthEncryptedKeyNotAcceptedIsNotUnlocked(t *testing.T) {
	env := newEnv(t)
	other, _ := newEd25519(t)
	writeKey(t, env.sshPath("id_rsa"), other, "secret", false) // tried first (default order), not authorized
	priv, _ := newEd25519(t)
	s := writeKey(t, env.sshPath("id_ed25519"), priv, "", false)
	_, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "")
	p := &fakePrompter{passphrase: []string{"secret"}}
	if _, err := dialOnce(t, env.dialer(t, cfg, p)); err != nil {
		t.Fatal(err)
	}
	if n := len(p.passwordReqs(PasswordKeyPassphrase)); n != 0 {
		t.Errorf("asked %d passphrases for a key the server does not accept", n)
	}
}

func TestAuthBadKeyFile(t *testing.T) {
	cases := []struct {
		name    string
		content func(env *testEnv) string
		wantMsg string
	}{
		{name: "not a key", content: func(*testEnv) string { return "hello, I am not a key\n" },
			wantMsg: "identity file ~/.ssh/mykey is not a usable private key"},
		{name: "public key", content: func(env *testEnv) string {
			_, s := newEd25519(t)
			return string(ssh.MarshalAuthorizedKey(s.PublicKey()))
		}, wantMsg: "identity file ~/.ssh/mykey is a public key, not a usable private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			writeFile(t, env.sshPath("mykey"), tc.content(env))
			_, authorized := newEd25519(t)
			_, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{authorized.PublicKey()}}, "  IdentityFile ~/.ssh/mykey\n")
			_, err := dialOnce(t, env.dialer(t, cfg, &fakePrompter{}))
			if !errors.Is(err, ErrAuthFailed) || !errors.Is(err, ErrBadKey) {
				t.Fatalf("err = %v, want ErrAuthFailed and ErrBadKey", err)
			}
			t.Log(err)
			mustContain(t, err.Error(), tc.wantMsg)
		})
	}
}

func TestAuthKeyboardInteractive(t *testing.T) {
	checkGoroutines(t)
	env := newEnv(t)
	srv, cfg := env.server(t, testrig.SSHServerOptions{KeyboardInteractive: []testrig.KIQuestion{
		{Prompt: "Login name: ", Echo: true, Answer: "tester"},
		{Prompt: "One-time code: ", Echo: false, Answer: "424242"},
	}}, "")
	p := &fakePrompter{kiAnswer: func(q KIQuestion) string {
		if q.Echo {
			return "tester"
		}
		return "424242"
	}}
	c, err := env.dialer(t, cfg, p).Dial(dialCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(p.kiReqs) != 1 {
		t.Fatalf("%d keyboard-interactive prompts", len(p.kiReqs))
	}
	r := p.kiReqs[0]
	want := []KIQuestion{{Prompt: "Login name: ", Echo: true}, {Prompt: "One-time code: ", Echo: false}}
	if len(r.Questions) != 2 || r.Questions[0] != want[0] || r.Questions[1] != want[1] {
		t.Errorf("questions %+v, want %+v", r.Questions, want)
	}
	if r.User != srv.User() || r.Host != srv.Addr() || r.Instruction != "Porthole testrig" {
		t.Errorf("prompt %+v", r)
	}
}

func TestAuthPassword(t *testing.T) {
	cases := []struct {
		name      string
		passwords []string
		prompts   int
		wantErr   bool
	}{
		{name: "right", passwords: []string{"s3cret"}, prompts: 1},
		{name: "wrong then right", passwords: []string{"bad", "s3cret"}, prompts: 2},
		{name: "always wrong", passwords: []string{"bad"}, prompts: 3, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			srv, cfg := env.server(t, testrig.SSHServerOptions{Password: "s3cret"}, "")
			p := &fakePrompter{passwords: tc.passwords}
			_, err := dialOnce(t, env.dialer(t, cfg, p))
			reqs := p.passwordReqs(PasswordLogin)
			if len(reqs) != tc.prompts {
				t.Errorf("%d password prompts, want %d", len(reqs), tc.prompts)
			}
			for i, r := range reqs {
				if r.User != srv.User() || r.Host != srv.Addr() || r.Attempt != i+1 || r.Hop != cfg.String() {
					t.Errorf("prompt %d: %+v", i, r)
				}
			}
			if tc.wantErr {
				if !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("err = %v", err)
				}
				mustContain(t, err.Error(), "(tried: password)")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAuthAgent(t *testing.T) {
	cases := []struct {
		name           string
		identitiesOnly bool
		wantErr        bool
	}{
		{name: "agent key"},
		{name: "IdentitiesOnly hides agent keys that match no IdentityFile", identitiesOnly: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			env := newEnv(t)
			agentKey, agentSigner := newEd25519(t)
			sock := startAgent(t, agentKey)
			other, _ := newEd25519(t)
			writeKey(t, env.sshPath("id_other"), other, "", false)
			extra := "  IdentityFile ~/.ssh/id_other\n"
			if tc.identitiesOnly {
				extra += "  IdentitiesOnly yes\n"
			}
			_, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{agentSigner.PublicKey()}}, extra)
			d := env.dialer(t, cfg, &fakePrompter{})
			d.AgentSocket = sock
			c, err := d.Dial(dialCtx(t))
			if tc.wantErr {
				if !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("err = %v", err)
				}
				mustContain(t, err.Error(), "(tried: publickey (~/.ssh/id_other))")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}

// With IdentitiesOnly, an agent key matching an IdentityFile is used through
// the agent: the encrypted file is never unlocked.
func TestAuthAgentHoldsIdentityFile(t *testing.T) {
	env := newEnv(t)
	priv, s := newEd25519(t)
	sock := startAgent(t, priv)
	writeKey(t, env.sshPath("id_work"), priv, "secret", false)
	_, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}},
		"  IdentityFile ~/.ssh/id_work\n  IdentitiesOnly yes\n")
	p := &fakePrompter{passphrase: []string{"secret"}}
	d := env.dialer(t, cfg, p)
	d.AgentSocket = sock
	if _, err := dialOnce(t, d); err != nil {
		t.Fatal(err)
	}
	if n := len(p.passwordReqs(PasswordKeyPassphrase)); n != 0 {
		t.Errorf("asked %d passphrases for a key the agent holds", n)
	}
}

func TestAuthInMemorySigner(t *testing.T) {
	env := newEnv(t)
	_, s := newEd25519(t)
	_, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "")
	d := env.dialer(t, cfg, nil)
	d.Signers = []ssh.Signer{s}
	if _, err := dialOnce(t, d); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailureListsMethods(t *testing.T) {
	checkGoroutines(t)
	env := newEnv(t)
	agentKey, _ := newEd25519(t)
	sock := startAgent(t, agentKey)
	fileKey, _ := newEd25519(t)
	writeKey(t, env.sshPath("id_ed25519"), fileKey, "", false)
	_, authorized := newEd25519(t)
	srv, cfg := env.server(t, testrig.SSHServerOptions{
		AuthorizedKeys:      []ssh.PublicKey{authorized.PublicKey()},
		Password:            "right",
		KeyboardInteractive: []testrig.KIQuestion{{Prompt: "Code: ", Answer: "1"}},
	}, "  NumberOfPasswordPrompts 1\n") // the server allows 6 attempts in all
	p := &fakePrompter{passwords: []string{"wrong"}, kiAnswer: func(KIQuestion) string { return "0" }}
	d := env.dialer(t, cfg, p)
	d.AgentSocket = sock
	_, err := d.Dial(dialCtx(t))
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	want := fmt.Sprintf("authentication failed for %s@%s (tried: publickey (agent, ~/.ssh/id_ed25519), keyboard-interactive, password)", srv.User(), srv.Addr())
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error\n%s\ndoes not start with\n%s", err, want)
	}
	var ae *AuthError
	if !errors.As(err, &ae) || len(ae.Tried) != 3 || len(ae.Allowed) != 3 {
		t.Errorf("AuthError %+v", ae)
	}
}

func TestAuthServerGivesUp(t *testing.T) {
	// More keys than the server's MaxAuthTries (6): the server disconnects,
	// and the error still says what was tried.
	env := newEnv(t)
	var ids string
	for i := range 7 {
		k, _ := newEd25519(t)
		name := fmt.Sprintf("id_%d", i)
		writeKey(t, env.sshPath(name), k, "", false)
		ids += "  IdentityFile ~/.ssh/" + name + "\n"
	}
	_, authorized := newEd25519(t)
	_, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{authorized.PublicKey()}}, ids)
	_, err := dialOnce(t, env.dialer(t, cfg, nil))
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	mustContain(t, err.Error(), "~/.ssh/id_0, ~/.ssh/id_1", "the server closed the connection")
}

func TestAuthPrompterCancel(t *testing.T) {
	env := newEnv(t)
	_, cfg := env.server(t, testrig.SSHServerOptions{Password: "pw", KeyboardInteractive: []testrig.KIQuestion{{Prompt: "x"}}}, "")
	errCancel := errors.New("user canceled")
	p := &fakePrompter{err: errCancel}
	_, err := dialOnce(t, env.dialer(t, cfg, p))
	if !errors.Is(err, errCancel) {
		t.Fatalf("err = %v, want the prompter's error", err)
	}
	if pw, ki, _ := p.counts(); pw+ki != 1 {
		t.Errorf("prompted %d+%d times after a cancel", pw, ki)
	}
}

// An agent key that matches an IdentityFile (the key the user named, e.g.
// with -i) is offered before the agent's other keys, as OpenSSH does: each
// key the server rejects costs a round trip (and counts against its
// MaxAuthTries).
func TestAuthAgentKeyOfIdentityFileFirst(t *testing.T) {
	env := newEnv(t)
	a, _ := newEd25519(t)
	b, _ := newEd25519(t)
	c, cs := newEd25519(t)
	sock := startAgent(t, a, b, c)
	writeKey(t, env.sshPath("id_named"), c, "", false)
	srv, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{cs.PublicKey()}},
		"  IdentityFile ~/.ssh/id_named\n")
	d := env.dialer(t, cfg, nil)
	d.AgentSocket = sock
	if _, err := dialOnce(t, d); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().AuthFail; n != 0 {
		t.Errorf("the server rejected %d keys before the named one, want 0 (it was offered after the agent's other keys)", n)
	}
}
