package sshconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
	"golang.org/x/crypto/ssh"
)

// sshdBlock is a config block for a real sshd with known_hosts in known.
func sshdBlock(alias string, s *testrig.Sshd, known string) string {
	return fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
		alias, s.Host, s.Port, s.User, s.ClientKeyPath, known)
}

// remoteSSHConnection runs `echo $SSH_CONNECTION` on c and returns the server port it names.
func remoteServerPort(t *testing.T, c *Client) int {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Output("echo $SSH_CONNECTION")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 {
		t.Fatalf("SSH_CONNECTION = %q", out)
	}
	p, _ := strconv.Atoi(f[3])
	return p
}

func TestSshdHostKeysAndPubkey(t *testing.T) {
	cases := []struct {
		name    string
		offered []string // sshd host key types
		known   string   // the one type written to known_hosts
	}{
		{name: "ed25519", offered: []string{"ed25519"}, known: ssh.KeyAlgoED25519},
		{name: "rsa", offered: []string{"rsa"}, known: ssh.KeyAlgoRSA},
		{name: "both offered, only rsa known", offered: []string{"ed25519", "rsa"}, known: ssh.KeyAlgoRSA},
		{name: "both offered, only ed25519 known", offered: []string{"ed25519", "rsa"}, known: ssh.KeyAlgoED25519},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: tc.offered})
			env := newEnv(t)
			for _, k := range sshd.HostKeys {
				if k.Type() == tc.known {
					env.addKnown(t, knownLine(sshd.Addr, k))
				}
			}
			env.writeConfig(t, sshdBlock("real", sshd, env.known)+"Host *\n  GlobalKnownHostsFile none\n")
			cfg := env.resolve(t, "real", Options{})
			c, err := env.dialer(t, cfg, &noHostPrompt{t: t}).Dial(dialCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.Client.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().HostKey; !slices.Contains(algosFor(tc.known), got) {
				t.Errorf("negotiated %s, want a %s algorithm", got, tc.known)
			}
			if !strings.HasPrefix(string(c.ServerVersion()), "SSH-2.0-OpenSSH") {
				t.Errorf("server version %q", c.ServerVersion())
			}
			// OpenSSH answers keepalive@openssh.com with a failure: still alive.
			if _, err := c.Ping(context.Background(), 5*time.Second); err != nil {
				t.Errorf("ping: %v", err)
			}
			// A forward works: read sshd's own banner through a direct-tcpip channel.
			conn, err := c.Dial("tcp", sshd.Addr)
			if err != nil {
				t.Fatal(err)
			}
			banner, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err != nil || !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
				t.Errorf("banner through the forward: %q, %v", banner, err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestSshdHostKeyMismatch(t *testing.T) {
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	env := newEnv(t)
	_, other := newEd25519(t)
	env.addKnown(t, knownLine(sshd.Addr, other.PublicKey()))
	env.writeConfig(t, sshdBlock("real", sshd, env.known)+"Host *\n  GlobalKnownHostsFile none\n")
	_, err := env.dialer(t, env.resolve(t, "real", Options{}), &noHostPrompt{t: t}).Dial(dialCtx(t))
	var mm *HostKeyMismatchError
	if !errors.As(err, &mm) || mm.Fingerprint != ssh.FingerprintSHA256(sshd.HostKeys[0]) || mm.Known[0].Line != 1 {
		t.Fatalf("err = %v", err)
	}
}

// client → sshd A → sshd B, resolved from an ssh_config file.
func TestSshdProxyJumpTwoHops(t *testing.T) {
	checkGoroutines(t)
	a := testrig.NewSshd(t, testrig.SshdOptions{})
	b := testrig.NewSshd(t, testrig.SshdOptions{})
	env := newEnv(t)
	var known []string
	for _, k := range a.HostKeys {
		known = append(known, knownLine(a.Addr, k))
	}
	for _, k := range b.HostKeys {
		known = append(known, knownLine(b.Addr, k))
	}
	env.addKnown(t, known...)
	env.writeConfig(t, sshdBlock("hop-a", a, env.known)+sshdBlock("hop-b", b, env.known)+
		"Host hop-b\n  ProxyJump hop-a\nHost *\n  GlobalKnownHostsFile none\n  ConnectTimeout 10\n")
	cfg := env.resolve(t, "hop-b", Options{})
	if len(cfg.Jumps) != 1 || cfg.Jumps[0].Port != a.Port || cfg.Port != b.Port {
		t.Fatalf("resolved %s via %v", cfg, cfg.Jumps)
	}
	var log stepLog
	d := env.dialer(t, cfg, &noHostPrompt{t: t})
	d.OnStep = log.record
	c, err := d.Dial(dialCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := remoteServerPort(t, c); p != b.Port {
		t.Errorf("the session runs on the sshd at port %d, want B (%d)", p, b.Port)
	}
	if _, err := c.Ping(context.Background(), 5*time.Second); err != nil {
		t.Errorf("ping: %v", err)
	}
	mustContain(t, strings.Join(log.text, "\n"), "jump host 1 of 1 ("+a.Addr+")")
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Password and keyboard-interactive through PAM (pam_wrapper), when available.
func TestSshdPasswordAndKeyboardInteractive(t *testing.T) {
	if err := testrig.PamWrapperAvailable(); err != nil {
		t.Skip(err)
	}
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, Password: "pam-pw"})
	for _, method := range []string{"keyboard-interactive", "password"} {
		t.Run(method, func(t *testing.T) {
			env := newEnv(t)
			env.writeConfig(t, fmt.Sprintf("Host real\n  HostName %s\n  Port %d\n  User %s\n  UserKnownHostsFile %s\n  PreferredAuthentications %s\n  GlobalKnownHostsFile none\n",
				sshd.Host, sshd.Port, sshd.User, sshd.KnownHostsPath, method))
			p := &fakePrompter{passwords: []string{"pam-pw"}, kiAnswer: func(KIQuestion) string { return "pam-pw" }}
			c, err := dialOnce(t, env.dialer(t, env.resolve(t, "real", Options{}), p))
			if err != nil {
				t.Fatal(err)
			}
			if method == "keyboard-interactive" {
				if len(p.kiReqs) == 0 || len(p.kiReqs[0].Questions) != 1 || p.kiReqs[0].Questions[0].Echo {
					t.Errorf("prompts %+v", p.kiReqs)
				}
			} else if len(p.passwordReqs(PasswordLogin)) != 1 {
				t.Errorf("prompts %+v", p.pwReqs)
			}
			c.Close()
		})
	}
}
