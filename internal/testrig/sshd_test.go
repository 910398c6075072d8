package testrig

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func dialSshd(t *testing.T, s *Sshd, cfg *ssh.ClientConfig) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr, cfg)
	if err != nil {
		t.Fatalf("ssh dial real sshd %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func runRemote(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("run %q: %v (output %q)", cmd, err, out)
	}
	return string(out)
}

func TestSshdRealOpenSSH(t *testing.T) {
	s := NewSshd(t, SshdOptions{})
	t.Logf("real OpenSSH sshd at %s as %s, dir %s", s.Addr, s.User, s.Dir)
	if len(s.HostKeys) != 2 {
		t.Fatalf("HostKeys = %d, want ed25519 and rsa", len(s.HostKeys))
	}
	for _, p := range []string{s.ClientKeyPath, s.ClientPubKeyPath, s.KnownHostsPath, s.ConfigPath, s.LogPath} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing file: %v", err)
		}
	}
	c := dialSshd(t, s, s.ClientConfig())
	if v := string(c.ServerVersion()); !strings.Contains(v, "OpenSSH") {
		t.Fatalf("server version %q is not OpenSSH", v)
	}
	t.Logf("connected with public key to %s", c.ServerVersion())

	t.Run("keepalive", func(t *testing.T) {
		ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		if err != nil || ok {
			t.Fatalf("keepalive = %v, %v; OpenSSH answers false, nil", ok, err)
		}
	})
	t.Run("exec", func(t *testing.T) {
		if got := runRemote(t, c, "echo hello from sshd"); got != "hello from sshd\n" {
			t.Fatalf("output %q", got)
		}
	})
	t.Run("direct-tcpip to the web app", func(t *testing.T) {
		app := NewWebApp(t)
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.DialContext(ctx, network, addr)
		}}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		_, body := httpGet(t, hc, app.URL()+"/")
		if !strings.Contains(string(body), "<title>"+WebAppTitle+"</title>") {
			t.Fatalf("index through sshd: %q", body)
		}
		_, body = httpGet(t, hc, app.URL()+"/big?size=5000000")
		want, _ := io.ReadAll(WebAppBigBody(5000000))
		if !bytes.Equal(body, want) {
			t.Fatalf("/big through sshd: %d bytes, content differs", len(body))
		}
		if got := app.Count("/"); got != 1 {
			t.Errorf("web app saw / %d times", got)
		}
		t.Logf("fetched the web app through the real sshd's direct-tcpip")
	})
	t.Run("through a delayed relay", func(t *testing.T) {
		r := NewRelay(t, s.Addr)
		r.SetDelay(20 * time.Millisecond)
		cfg := s.ClientConfig()
		cfg.HostKeyCallback = s.PinnedHostKeyCallback()
		rc, err := ssh.Dial("tcp", r.Addr(), cfg)
		if err != nil {
			t.Fatalf("ssh through relay: %v", err)
		}
		defer rc.Close()
		if got := runRemote(t, rc, "echo relayed"); got != "relayed\n" {
			t.Fatalf("output %q", got)
		}
	})
	t.Run("direct-tcpip half-close", func(t *testing.T) {
		addr := startTCPServer(t, countThenReplyHandler)
		ch, err := c.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if _, err := ch.Write(bytes.Repeat([]byte("k"), 50000)); err != nil {
			t.Fatal(err)
		}
		if err := ch.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		done := make(chan string, 1)
		go func() {
			b, _ := readAllString(ch)
			done <- b
		}()
		select {
		case got := <-done:
			if got != "got 50000 bytes" {
				t.Fatalf("reply %q", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no reply within 5 s")
		}
	})
	t.Run("wrong client key refused", func(t *testing.T) {
		cfg := s.ClientConfig()
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(NewTestKey(t))}
		if c2, err := ssh.Dial("tcp", s.Addr, cfg); err == nil {
			_ = c2.Close()
			t.Fatal("an unauthorized key was accepted")
		}
	})
	t.Run("host key checked against known_hosts", func(t *testing.T) {
		other := NewSshd(t, SshdOptions{HostKeyTypes: []string{"ed25519"}})
		cfg := s.ClientConfig() // known_hosts of s, not of other
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(other.ClientKey)}
		if c2, err := ssh.Dial("tcp", other.Addr, cfg); err == nil {
			_ = c2.Close()
			t.Fatal("connected to a server missing from known_hosts")
		}
		dialSshd(t, other, other.ClientConfig()).Close()
	})

	t.Run("Restart", func(t *testing.T) {
		before := s.Addr
		c2 := dialSshd(t, s, s.ClientConfig())
		if err := s.Restart(t.Context()); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		t.Logf("sshd restarted on %s", s.Addr)
		if s.Addr != before {
			t.Fatalf("Addr changed across Restart: %s → %s", before, s.Addr)
		}
		waited := make(chan error, 1)
		go func() { waited <- c2.Wait() }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			t.Fatal("old connection survived Restart")
		}
		c3 := dialSshd(t, s, s.ClientConfig()) // same host keys: known_hosts still valid
		if got := runRemote(t, c3, "echo again"); got != "again\n" {
			t.Fatalf("after restart: %q", got)
		}
	})
}

func readAllString(c interface{ Read([]byte) (int, error) }) (string, error) {
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b.String(), nil
			}
			return b.String(), err
		}
	}
}

func TestSshdStopKillsSessions(t *testing.T) {
	s, err := StartSshd(t.Context(), SshdOptions{HostKeyTypes: []string{"ed25519"}})
	if errors.Is(err, ErrSshdNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir
	c, err := ssh.Dial("tcp", s.Addr, s.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	marker := "porthole-testrig-sleep-" + filepath.Base(dir)
	if err := sess.Start("exec -a " + marker + " sleep 300"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the remote command to start", func() bool { return pgrep(marker) })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	eventually(t, "the remote command to die with sshd", func() bool { return !pgrep(marker) })
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s behind (%v)", dir, err)
	}
}

// pgrep reports whether a process whose command line contains s exists.
func pgrep(s string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

func TestSshdClientSSHConfig(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("OpenSSH client not installed (apt-get install -y openssh-client)")
	}
	s := NewSshd(t, SshdOptions{})
	path := filepath.Join(t.TempDir(), "home", ".ssh", "config")
	alias, err := s.WriteClientSSHConfig(path, "rig", "rig-alias")
	if err != nil {
		t.Fatal(err)
	}
	if alias != "rig" {
		t.Fatalf("alias %q", alias)
	}
	cfg, _ := os.ReadFile(path)
	for _, want := range []string{"HostName 127.0.0.1", "Port " + strconv.Itoa(s.Port), "User " + s.User, "IdentityFile " + s.ClientKeyPath, "UserKnownHostsFile " + s.KnownHostsPath} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	for _, a := range []string{"rig", "rig-alias"} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		out, err := exec.CommandContext(ctx, sshBin, "-F", path, a, "echo", "via-ssh-config").CombinedOutput()
		cancel()
		if err != nil || strings.TrimSpace(string(out)) != "via-ssh-config" {
			t.Fatalf("ssh -F %s %s: %v\n%s", path, a, err, out)
		}
	}
	t.Logf("the OpenSSH client reached the sshd through the written ssh_config")
}

func TestSshdPassword(t *testing.T) {
	const password = "correct-horse-battery"
	s := NewSshd(t, SshdOptions{Password: password, HostKeyTypes: []string{"ed25519"}})
	t.Logf("real sshd with PAM password via pam_wrapper at %s", s.Addr)
	withAuth := func(auth ssh.AuthMethod) *ssh.ClientConfig {
		cfg := s.ClientConfig()
		cfg.Auth = []ssh.AuthMethod{auth}
		return cfg
	}
	var prompts []string
	var echos []bool
	ki := func(answer string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(name, instruction string, q []string, e []bool) ([]string, error) {
			prompts = append(prompts, q...)
			echos = append(echos, e...)
			answers := make([]string, len(q))
			for i := range answers {
				answers[i] = answer
			}
			return answers, nil
		})
	}
	tests := []struct {
		name   string
		auth   ssh.AuthMethod
		wantOK bool
	}{
		{"password ok", ssh.Password(password), true},
		{"password wrong", ssh.Password("wrong"), false},
		{"keyboard-interactive ok", ki(password), true},
		{"keyboard-interactive wrong", ki("wrong"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prompts, echos = nil, nil
			c, err := ssh.Dial("tcp", s.Addr, withAuth(tc.auth))
			if tc.wantOK != (err == nil) {
				t.Fatalf("dial err = %v, want ok=%v", err, tc.wantOK)
			}
			if err == nil {
				if got := runRemote(t, c, "echo in"); got != "in\n" {
					t.Errorf("exec output %q", got)
				}
				_ = c.Close()
			}
			if tc.wantOK {
				want := "Accepted password for " + s.User
				if strings.HasPrefix(tc.name, "keyboard-interactive") {
					want = "Accepted keyboard-interactive/pam for " + s.User
				}
				if !strings.Contains(s.Log(), want) {
					t.Errorf("sshd log lacks %q:\n%s", want, s.Log())
				}
			}
			if strings.HasPrefix(tc.name, "keyboard-interactive") {
				if len(prompts) == 0 || slices.Contains(echos, true) {
					t.Errorf("prompts %q echos %v: want a non-echoed password prompt", prompts, echos)
				}
			}
		})
	}
}

func TestSshdExtraConfig(t *testing.T) {
	s := NewSshd(t, SshdOptions{
		HostKeyTypes: []string{"rsa"},
		ExtraConfig:  []string{"AllowTcpForwarding no", "Match User nobody", "  PermitTTY no"},
	})
	conf, _ := os.ReadFile(s.ConfigPath)
	if i, j := strings.Index(string(conf), "AllowTcpForwarding no"), strings.Index(string(conf), "AllowTcpForwarding yes"); i < 0 || i > j {
		t.Fatalf("override not placed before the default:\n%s", conf)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(conf)), "PermitTTY no") {
		t.Fatalf("Match block not at the end:\n%s", conf)
	}
	if len(s.HostKeys) != 1 || s.HostKeys[0].Type() != ssh.KeyAlgoRSA {
		t.Fatalf("HostKeys = %v, want one RSA key", s.HostKeys)
	}
	c := dialSshd(t, s, s.ClientConfig())
	_, err := c.Dial("tcp", startTCPServer(t, echoHandler))
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Fatalf("direct-tcpip with AllowTcpForwarding no: %v, want Prohibited", err)
	}
}

// TestSshdHosts: a name in SshdOptions.Hosts resolves for the sshd (a
// direct-tcpip channel to it reaches the address, sessions see it) and not
// on this machine; a restart keeps it.
func TestSshdHosts(t *testing.T) {
	if why := SshdHostsAvailable(); why != "" {
		t.Skip(why)
	}
	const name = "grafana.porthole-testrig.test"
	s := NewSshd(t, SshdOptions{HostKeyTypes: []string{"ed25519"}, Hosts: map[string]string{name: "127.0.0.1"}})
	if addrs, err := net.LookupHost(name); err == nil {
		t.Fatalf("%s resolves on this machine too (%v): the test would prove nothing", name, addrs)
	}
	app := NewWebApp(t)
	for round := range 2 {
		c := dialSshd(t, s, s.ClientConfig())
		hc := &http.Client{Transport: &http.Transport{Dial: func(_, addr string) (net.Conn, error) { return c.Dial("tcp", addr) }}, Timeout: 10 * time.Second}
		resp, err := hc.Get("http://" + net.JoinHostPort(name, strconv.Itoa(app.Port())) + "/small")
		if err != nil {
			t.Fatalf("round %d: GET through sshd by name: %v", round, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "small\n" {
			t.Fatalf("round %d: GET = %d %q", round, resp.StatusCode, b)
		}
		if _, err := c.Dial("tcp", net.JoinHostPort("nowhere.porthole-testrig.test", strconv.Itoa(app.Port()))); err == nil {
			t.Fatalf("round %d: an unlisted name connected", round)
		}
		if out := runRemote(t, c, "getent hosts "+name); !strings.Contains(out, "127.0.0.1") {
			t.Errorf("round %d: getent on the server = %q", round, out)
		}
		_ = c.Close()
		if round == 0 {
			if err := s.Restart(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}
