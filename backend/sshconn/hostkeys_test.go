package sshconn

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/internal/testrig"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

func TestHostKeyUnknown(t *testing.T) {
	cases := []struct {
		decision HostKeyDecision
		wantErr  error
		wantSave bool
	}{
		{decision: AcceptOnce},
		{decision: AcceptAndSave, wantSave: true},
		{decision: Reject, wantErr: ErrHostKeyRejected},
	}
	for _, tc := range cases {
		t.Run(tc.decision.String(), func(t *testing.T) {
			checkGoroutines(t)
			env := newEnv(t)
			known := filepath.Join(env.home, "newdir", "known_hosts") // directory does not exist yet
			srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw"}, "  UserKnownHostsFile "+known+"\n")
			cfg := env.resolve(t, "srv", Options{})
			p := &fakePrompter{decision: tc.decision, passwords: []string{"pw"}}
			c, err := env.dialer(t, cfg, p).Dial(dialCtx(t))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				c.Close()
			}
			if len(p.hkReqs) != 1 {
				t.Fatalf("%d host key prompts", len(p.hkReqs))
			}
			r := p.hkReqs[0]
			_, port := hostPort(t, srv.Addr())
			want := HostKeyPrompt{Host: "[127.0.0.1]:" + port, Address: srv.Addr(), KeyType: ssh.KeyAlgoED25519,
				Fingerprint: ssh.FingerprintSHA256(srv.HostKey()), KnownHostsFile: known, Hop: cfg.String()}
			if r.Host != want.Host || r.Address != want.Address || r.KeyType != want.KeyType || r.Fingerprint != want.Fingerprint ||
				r.KnownHostsFile != want.KnownHostsFile || r.Hop != want.Hop || len(r.OtherKnownTypes) != 0 {
				t.Errorf("prompt\n%+v, want\n%+v", r, want)
			}

			st, statErr := os.Stat(known)
			if !tc.wantSave {
				if statErr == nil {
					t.Fatalf("%s was written", known)
				}
				return
			}
			if statErr != nil {
				t.Fatal(statErr)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("known_hosts mode %v", st.Mode())
			}
			if dst, err := os.Stat(filepath.Dir(known)); err != nil || dst.Mode().Perm() != 0o700 {
				t.Errorf("dir mode %v, %v", dst.Mode(), err)
			}
			if !fileContains(t, known, srv.HostKey()) {
				t.Errorf("key not saved")
			}
			// The next dial knows the host.
			np := &noHostPrompt{fakePrompter: fakePrompter{passwords: []string{"pw"}}, t: t}
			c2, err := env.dialer(t, cfg, np).Dial(dialCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			c2.Close()
		})
	}
}

func TestHostKeyStrictModes(t *testing.T) {
	cases := []struct {
		strict     string
		prompted   bool
		wantErr    error
		wantSaved  bool
		noPrompter bool
	}{
		{strict: "yes", wantErr: ErrHostKeyUnknown},
		{strict: "accept-new", wantSaved: true},
		{strict: "no", prompted: true},
		{strict: "ask", prompted: true},
		{strict: "ask", noPrompter: true, wantErr: ErrHostKeyUnknown},
	}
	for _, tc := range cases {
		name := tc.strict
		if tc.noPrompter {
			name += " without prompter"
		}
		t.Run(name, func(t *testing.T) {
			env := newEnv(t)
			_, s := newEd25519(t)
			srv := env.serverUnknown(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "  StrictHostKeyChecking "+tc.strict+"\n")
			cfg := env.resolve(t, "srv", Options{})
			p := &fakePrompter{decision: AcceptOnce}
			d := env.dialer(t, cfg, p)
			if tc.noPrompter {
				d.Prompter = nil
			}
			d.Signers = []ssh.Signer{s}
			_, err := dialOnce(t, d)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := len(p.hkReqs) == 1; got != tc.prompted {
				t.Errorf("prompted = %v, want %v", got, tc.prompted)
			}
			if got := fileContains(t, env.known, srv.HostKey()); got != tc.wantSaved {
				t.Errorf("saved = %v, want %v", got, tc.wantSaved)
			}
		})
	}
}

func TestHostKeyMismatch(t *testing.T) {
	for _, strict := range []string{"ask", "no", "accept-new"} {
		t.Run(strict, func(t *testing.T) {
			env := newEnv(t)
			_, s := newEd25519(t)
			srv := env.serverUnknown(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "  StrictHostKeyChecking "+strict+"\n")
			_, old := newEd25519(t)
			_, unrelated := newEd25519(t)
			env.addKnown(t,
				knownLine("example.org:22", unrelated.PublicKey()),
				knownLine(srv.Addr(), old.PublicKey()), // line 2
			)
			cfg := env.resolve(t, "srv", Options{})
			p := &fakePrompter{decision: AcceptAndSave}
			d := env.dialer(t, cfg, p)
			d.Signers = []ssh.Signer{s}
			_, err := dialOnce(t, d)
			if !errors.Is(err, ErrHostKeyMismatch) {
				t.Fatalf("err = %v", err)
			}
			t.Log(err)
			var mm *HostKeyMismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("not a HostKeyMismatchError: %T", err)
			}
			newFP, oldFP := ssh.FingerprintSHA256(srv.HostKey()), ssh.FingerprintSHA256(old.PublicKey())
			_, port := hostPort(t, srv.Addr())
			if mm.Fingerprint != newFP || mm.KeyType != ssh.KeyAlgoED25519 || mm.Host != "[127.0.0.1]:"+port ||
				len(mm.Known) != 1 || mm.Known[0].Fingerprint != oldFP || mm.Known[0].File != env.known || mm.Known[0].Line != 2 {
				t.Errorf("mismatch error %+v", mm)
			}
			mustContain(t, err.Error(), newFP, oldFP, env.known+":2", "ssh-keygen -R")
			if len(p.hkReqs) != 0 {
				t.Errorf("asked about a changed key")
			}
		})
	}
}

func TestHostKeyTypes(t *testing.T) {
	cases := []struct {
		name string
		key  func(t *testing.T) ssh.Signer
	}{
		{name: "ed25519", key: func(t *testing.T) ssh.Signer { _, s := newEd25519(t); return s }},
		{name: "rsa", key: func(t *testing.T) ssh.Signer { return signerOf(t, rsaKey(t, 0)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hostKey := tc.key(t)
			t.Run("known", func(t *testing.T) {
				env := newEnv(t)
				_, cfg := env.server(t, testrig.SSHServerOptions{Password: "pw", HostKey: hostKey}, "")
				p := &noHostPrompt{fakePrompter: fakePrompter{passwords: []string{"pw"}}, t: t}
				c, err := dialOnce(t, env.dialer(t, cfg, p))
				if err != nil {
					t.Fatal(err)
				}
				got := c.Client.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().HostKey
				if !slices.Contains(algosFor(hostKey.PublicKey().Type()), got) {
					t.Errorf("negotiated host key algorithm %s", got)
				}
			})
			t.Run("hashed", func(t *testing.T) {
				env := newEnv(t)
				srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw", HostKey: hostKey}, "")
				hashed := xknownhosts.HashHostname(knownhosts.Normalize(srv.Addr()))
				env.addKnown(t, hashed+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))))
				p := &noHostPrompt{fakePrompter: fakePrompter{passwords: []string{"pw"}}, t: t}
				if _, err := dialOnce(t, env.dialer(t, env.resolve(t, "srv", Options{}), p)); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("HashKnownHosts saves hashed", func(t *testing.T) {
				env := newEnv(t)
				srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw", HostKey: hostKey}, "  HashKnownHosts yes\n")
				cfg := env.resolve(t, "srv", Options{})
				p := &fakePrompter{decision: AcceptAndSave, passwords: []string{"pw"}}
				if _, err := dialOnce(t, env.dialer(t, cfg, p)); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(env.known)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(b), "|1|") || strings.Contains(string(b), "127.0.0.1") || !fileContains(t, env.known, srv.HostKey()) {
					t.Errorf("saved line %q", b)
				}
				np := &noHostPrompt{fakePrompter: fakePrompter{passwords: []string{"pw"}}, t: t}
				if _, err := dialOnce(t, env.dialer(t, cfg, np)); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func algosFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// A server with ed25519 and RSA host keys, and known_hosts holding only one
// of them: the known type must be negotiated (no false mismatch, no prompt).
func TestHostKeyKnownTypeIsPreferred(t *testing.T) {
	_, edKey := newEd25519(t)
	rsaSigner := signerOf(t, rsaKey(t, 1))
	for _, known := range []ssh.Signer{rsaSigner, edKey} {
		t.Run(known.PublicKey().Type(), func(t *testing.T) {
			checkGoroutines(t)
			srv := newMultiKeyServer(t, edKey, rsaSigner)
			env := newEnv(t)
			env.configFor(t, "srv", srv.Addr(), "anyone", "")
			env.addKnown(t, knownLine(srv.Addr(), known.PublicKey()))
			p := &noHostPrompt{t: t}
			c, err := env.dialer(t, env.resolve(t, "srv", Options{}), p).Dial(dialCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got := c.Client.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().HostKey
			if !slices.Contains(algosFor(known.PublicKey().Type()), got) {
				t.Errorf("negotiated %s, want a %s algorithm", got, known.PublicKey().Type())
			}
		})
	}
}

// known_hosts has an RSA key for the host, the server only has ed25519: that
// is a new key type, asked about like an unknown host, not a mismatch.
func TestHostKeyOtherTypeKnown(t *testing.T) {
	env := newEnv(t)
	srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw"}, "")
	env.addKnown(t, knownLine(srv.Addr(), signerOf(t, rsaKey(t, 2)).PublicKey()))
	p := &fakePrompter{decision: AcceptOnce, passwords: []string{"pw"}}
	if _, err := dialOnce(t, env.dialer(t, env.resolve(t, "srv", Options{}), p)); err != nil {
		t.Fatal(err)
	}
	if len(p.hkReqs) != 1 || !slices.Equal(p.hkReqs[0].OtherKnownTypes, []string{ssh.KeyAlgoRSA}) {
		t.Errorf("prompts %+v", p.hkReqs)
	}
}

func TestHostKeyRevoked(t *testing.T) {
	env := newEnv(t)
	srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw"}, "")
	env.addKnown(t,
		knownLine(srv.Addr(), srv.HostKey()),
		"@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey()))),
	)
	p := &fakePrompter{decision: AcceptAndSave, passwords: []string{"pw"}}
	_, err := dialOnce(t, env.dialer(t, env.resolve(t, "srv", Options{}), p))
	if !errors.Is(err, ErrHostKeyRevoked) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	mustContain(t, err.Error(), env.known+":2")
	if len(p.hkReqs) != 0 || len(p.pwReqs) != 0 {
		t.Errorf("prompted after a revoked key")
	}
}

func TestAppendKnownHostAddsNewline(t *testing.T) {
	env := newEnv(t)
	writeFile(t, env.known, "example.org ssh-ed25519 AAAA-no-newline")
	_, s := newEd25519(t)
	if err := AppendKnownHost(env.known, "127.0.0.1:2200", s.PublicKey(), false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(env.known)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[127.0.0.1]:2200 ssh-ed25519 ") {
		t.Errorf("file %q", b)
	}
}
