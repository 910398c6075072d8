package testrig

import (
	"bufio"
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
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SshdPath is where Debian's openssh-server installs the daemon.
const SshdPath = "/usr/sbin/sshd"

// ErrSshdNotInstalled is returned by StartSshd when SshdPath does not exist.
var ErrSshdNotInstalled = errors.New("OpenSSH sshd is not installed at " + SshdPath + ": install it with `apt-get install -y openssh-server`")

// SshdOptions configures a real OpenSSH sshd.
type SshdOptions struct {
	// HostKeyTypes is a subset of "ed25519" and "rsa"; default both.
	HostKeyTypes []string
	// ExtraConfig lines go into sshd_config before the testrig's defaults,
	// so they override them (in sshd_config the first value of a keyword
	// wins), e.g. "AllowTcpForwarding no". A line starting with "Match" and
	// every line after it go at the end instead, as Match blocks must.
	ExtraConfig []string
	// Password, when non-empty, enables password and keyboard-interactive
	// authentication through PAM for the sshd's user, without touching the
	// machine's accounts or PAM files: sshd runs under libpam_wrapper with a
	// private PAM service that uses pam_matrix and a password file in Dir.
	// Needs the Debian package libpam-wrapper (see PamWrapperAvailable).
	Password string
	// Hosts are names only this sshd resolves (name → IP address), as if in
	// the server's /etc/hosts: sshd runs in a private mount namespace
	// (unshare -m) where a copy of /etc/hosts with these lines is bound over
	// /etc/hosts; the rest of the machine (and Porthole) cannot resolve
	// them. The network is shared, so the addresses are this machine's.
	// Needs root and unshare(1) (see SshdHostsAvailable).
	Hosts map[string]string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// SshdHostsAvailable says why SshdOptions.Hosts cannot work here ("" when
// it can): it needs root (a mount namespace) and unshare(1).
func SshdHostsAvailable() string {
	if os.Geteuid() != 0 {
		return "SshdOptions.Hosts needs root (sshd runs in a private mount namespace with its own /etc/hosts)"
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return "SshdOptions.Hosts needs unshare(1) (util-linux)"
	}
	return ""
}

// writeHostsFile writes /etc/hosts plus hosts' lines to path.
func writeHostsFile(path string, hosts map[string]string) error {
	base, err := os.ReadFile("/etc/hosts")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var b strings.Builder
	b.Write(base)
	if len(base) > 0 && base[len(base)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString("# testrig: names only this sshd resolves\n")
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ip := net.ParseIP(hosts[n])
		if ip == nil || n == "" || strings.ContainsAny(n, " \t\r\n#") {
			return fmt.Errorf("hosts: %q → %q is not a name and an IP address", n, hosts[n])
		}
		fmt.Fprintf(&b, "%s %s\n", ip, n)
	}
	return writeFile(path, []byte(b.String()))
}

// Sshd is a running OpenSSH sshd on 127.0.0.1 with throwaway keys in Dir.
type Sshd struct {
	Addr string // "127.0.0.1:port"
	Host string // "127.0.0.1"
	Port int
	User string // the OS user running the tests (sshd accepts only this user)
	Dir  string // throwaway directory holding keys, config and log

	ClientKey        ssh.Signer // authorized for User
	ClientKeyPath    string     // OpenSSH private key file (0600) of ClientKey
	ClientPubKeyPath string

	HostKeys       []ssh.PublicKey
	KnownHostsPath string // known_hosts with HostKeys for [127.0.0.1]:Port
	ConfigPath     string // sshd_config
	LogPath        string // sshd's stderr (-e), appended across restarts

	opts SshdOptions
	log  *slog.Logger
	// hostsPath is the /etc/hosts sshd sees (SshdOptions.Hosts), or "".
	hostsPath string
	ownDir    bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	waitDone chan struct{}
	waitErr  error

	closeOnce sync.Once
	closeErr  error
}

// StartSshd generates keys and a config in a new temporary directory and
// starts /usr/sbin/sshd -D -e on a free loopback port. ctx bounds start-up
// only. Close stops sshd (and every connection child) and removes the
// directory.
func StartSshd(ctx context.Context, opts SshdOptions) (*Sshd, error) {
	dir, err := os.MkdirTemp("", "porthole-sshd-")
	if err != nil {
		return nil, fmt.Errorf("start sshd: temp dir: %w", err)
	}
	s, err := startSshdIn(ctx, opts, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.ownDir = true
	return s, nil
}

// NewSshd is StartSshd for tests. If sshd is not installed it calls t.Fatal
// when the environment has CI=true and t.Skip otherwise. sshd's log is
// printed when the test fails; Close runs in t.Cleanup.
func NewSshd(t testing.TB, opts SshdOptions) *Sshd {
	t.Helper()
	if _, err := os.Stat(SshdPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testrig: %v", ErrSshdNotInstalled)
		}
		t.Skipf("testrig: %v", ErrSshdNotInstalled)
	}
	if opts.Password != "" {
		if err := PamWrapperAvailable(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("testrig: %v", err)
			}
			t.Skipf("testrig: %v", err)
		}
	}
	s, err := startSshdIn(context.Background(), opts, t.TempDir())
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		if t.Failed() {
			t.Logf("sshd log (%s):\n%s", s.LogPath, s.Log())
		}
	})
	return s
}

func startSshdIn(ctx context.Context, opts SshdOptions, dir string) (*Sshd, error) {
	if _, err := os.Stat(SshdPath); err != nil {
		return nil, fmt.Errorf("start sshd: %w", ErrSshdNotInstalled)
	}
	if len(opts.HostKeyTypes) == 0 {
		opts.HostKeyTypes = []string{"ed25519", "rsa"}
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("start sshd: current user: %w", err)
	}
	s := &Sshd{
		Host:             "127.0.0.1",
		User:             u.Username,
		Dir:              dir,
		ClientKeyPath:    filepath.Join(dir, "id_ed25519"),
		ClientPubKeyPath: filepath.Join(dir, "id_ed25519.pub"),
		KnownHostsPath:   filepath.Join(dir, "known_hosts"),
		ConfigPath:       filepath.Join(dir, "sshd_config"),
		LogPath:          filepath.Join(dir, "sshd.log"),
		opts:             opts,
		log:              orDiscard(opts.Logger).With("component", "testrig.sshd"),
	}
	// Privilege separation needs this directory when sshd runs as root.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		return nil, fmt.Errorf("start sshd: create /run/sshd: %w", err)
	}
	var hostKeyPaths []string
	for _, typ := range opts.HostKeyTypes {
		path := filepath.Join(dir, "ssh_host_"+typ+"_key")
		signer, err := writeKeyPair(typ, path, "porthole-testrig-host")
		if err != nil {
			return nil, fmt.Errorf("start sshd: host key: %w", err)
		}
		s.HostKeys = append(s.HostKeys, signer.PublicKey())
		hostKeyPaths = append(hostKeyPaths, path)
	}
	s.ClientKey, err = writeKeyPair("ed25519", s.ClientKeyPath, "porthole-testrig-client")
	if err != nil {
		return nil, fmt.Errorf("start sshd: client key: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(s.ClientKey.PublicKey())); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	if len(opts.Hosts) > 0 {
		if why := SshdHostsAvailable(); why != "" {
			return nil, fmt.Errorf("start sshd: %s", why)
		}
		s.hostsPath = filepath.Join(dir, "hosts")
		if err := writeHostsFile(s.hostsPath, opts.Hosts); err != nil {
			return nil, fmt.Errorf("start sshd: %w", err)
		}
	}
	var env []string
	if opts.Password != "" {
		env, err = setupPamWrapper(dir, s.User, opts.Password)
		if err != nil {
			return nil, fmt.Errorf("start sshd: %w", err)
		}
	}

	const attempts = 5
	for i := range attempts {
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, fmt.Errorf("start sshd: %w", err)
		}
		s.setPort(port)
		if err := s.writeConfig(hostKeyPaths); err != nil {
			return nil, fmt.Errorf("start sshd: %w", err)
		}
		if err := writeFile(s.KnownHostsPath, s.knownHostsContent()); err != nil {
			return nil, fmt.Errorf("start sshd: %w", err)
		}
		cmdEnv := append(os.Environ(), env...)
		err = s.start(ctx, cmdEnv)
		if err == nil {
			s.log.Debug("sshd started", "addr", s.Addr, "dir", dir)
			return s, nil
		}
		if ctx.Err() != nil || !strings.Contains(s.Log(), "Address already in use") || i == attempts-1 {
			return nil, fmt.Errorf("start sshd: %w\nsshd log:\n%s", err, s.Log())
		}
		s.log.Debug("sshd port taken, retrying", "port", port)
	}
	return nil, fmt.Errorf("start sshd: no free port after %d attempts", attempts)
}

func (s *Sshd) setPort(port int) {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
}

func (s *Sshd) writeConfig(hostKeyPaths []string) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# written by porthole internal/testrig")
	var matchBlock []string
	for i, line := range s.opts.ExtraConfig {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			matchBlock = s.opts.ExtraConfig[i:]
			break
		}
		w("%s", line)
	}
	w("Port %d", s.Port)
	w("ListenAddress %s", s.Host)
	for _, p := range hostKeyPaths {
		w("HostKey %s", p)
	}
	w("PidFile none")
	w("AuthorizedKeysFile %s", filepath.Join(s.Dir, "authorized_keys"))
	w("PermitRootLogin yes")
	w("StrictModes no")
	// Commands run through the login user's shell, and bash reads ~/.bashrc
	// for sshd's commands unless SHLVL ≥ 2. A machine whose root ~/.bashrc
	// runs `pyenv init` made every command wait 60 s on pyenv's lock after
	// a test ended a session mid-rehash; tests must not depend on that file.
	w("SetEnv SHLVL=9")
	w("PubkeyAuthentication yes")
	if s.opts.Password != "" {
		w("UsePAM yes")
		w("PasswordAuthentication yes")
		w("KbdInteractiveAuthentication yes")
	} else {
		w("UsePAM no")
		w("PasswordAuthentication no")
		w("KbdInteractiveAuthentication no")
	}
	w("AllowUsers %s", s.User)
	w("AllowTcpForwarding yes")
	w("AllowStreamLocalForwarding yes")
	w("GatewayPorts no")
	w("X11Forwarding no")
	w("PermitTunnel no")
	w("UseDNS no")
	w("PrintMotd no")
	w("PrintLastLog no")
	w("MaxStartups 100:30:200")
	w("MaxSessions 100")
	w("LogLevel VERBOSE")
	w("Subsystem sftp internal-sftp")
	w("AcceptEnv LANG LC_*")
	for _, line := range matchBlock {
		w("%s", line)
	}
	return writeFile(s.ConfigPath, []byte(b.String()))
}

func (s *Sshd) knownHostsContent() []byte {
	var b strings.Builder
	for _, k := range s.HostKeys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// start launches sshd and waits until it answers with an OpenSSH banner.
func (s *Sshd) start(ctx context.Context, env []string) error {
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open sshd log: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	fmt.Fprintf(logf, "==== testrig: starting %s on %s at %s\n", SshdPath, s.Addr, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(SshdPath, "-D", "-e", "-f", s.ConfigPath)
	if s.hostsPath != "" {
		// A private mount namespace with its own /etc/hosts; sh execs sshd,
		// so the process (and its parent-death signal) stays the same.
		cmd = exec.Command("unshare", "-m", "--propagation", "private", "--",
			"/bin/sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, s.hostsPath,
			SshdPath, "-D", "-e", "-f", s.ConfigPath)
	}
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = s.Dir
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", SshdPath, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.waitDone, s.waitErr = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		select {
		case <-done:
			s.mu.Lock()
			err := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("sshd exited during start-up: %v", err)
		default:
		}
		if banner, err := readBanner(ctx, s.Addr); err == nil {
			if !strings.Contains(banner, "OpenSSH") {
				_ = s.Stop()
				return fmt.Errorf("port %d answered %q, not OpenSSH", s.Port, banner)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			_ = s.Stop()
			return fmt.Errorf("sshd not answering on %s: %w", s.Addr, ctx.Err())
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readBanner(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Restart stops sshd, dropping every connection, and starts it again on the
// same port with the same keys and config (a server reboot).
func (s *Sshd) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return fmt.Errorf("restart sshd: %w", err)
	}
	var env []string
	if s.opts.Password != "" {
		env = pamWrapperEnv(s.Dir)
	}
	// The port can stay briefly busy; retry within ctx (at most 10 s).
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := s.start(ctx, append(os.Environ(), env...))
		if err == nil {
			s.log.Debug("sshd restarted", "addr", s.Addr)
			return nil
		}
		if !strings.Contains(s.Log(), "Address already in use") || ctx.Err() != nil {
			return fmt.Errorf("restart sshd: %w\nsshd log:\n%s", err, s.Log())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart sshd: port %d stayed busy: %w", s.Port, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop kills sshd and every per-connection child it forked (so existing
// sessions die, as in a reboot) and waits for it. Restart may follow.
func (s *Sshd) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.waitDone
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	killProcessTree(cmd.Process.Pid)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("sshd (pid %d) did not exit within 10 s of SIGKILL", cmd.Process.Pid)
	}
	if s.opts.Password != "" {
		removePamWrapperDirs(s.Dir)
	}
	s.log.Debug("sshd stopped", "pid", cmd.Process.Pid)
	return nil
}

// Close stops sshd and removes Dir if StartSshd created it.
func (s *Sshd) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.Stop()
		if s.ownDir {
			if err := os.RemoveAll(s.Dir); err != nil && s.closeErr == nil {
				s.closeErr = fmt.Errorf("remove sshd dir: %w", err)
			}
		}
	})
	return s.closeErr
}

// Log returns sshd's log so far (empty if unreadable).
func (s *Sshd) Log() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// HostKeyCallback checks host keys against KnownHostsPath.
func (s *Sshd) HostKeyCallback() ssh.HostKeyCallback {
	cb, err := knownhosts.New(s.KnownHostsPath)
	if err != nil {
		return func(string, net.Addr, ssh.PublicKey) error {
			return fmt.Errorf("testrig: read %s: %w", s.KnownHostsPath, err)
		}
	}
	return cb
}

// PinnedHostKeyCallback accepts any of HostKeys whatever address was
// dialed: use it to reach the sshd through a Relay or another address.
func (s *Sshd) PinnedHostKeyCallback() ssh.HostKeyCallback {
	keys := slices.Clone(s.HostKeys)
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		return fmt.Errorf("testrig: host key of %s is not one of the sshd's host keys", hostname)
	}
}

// ClientConfig returns a config for User authenticating with ClientKey and
// checking the host key against KnownHostsPath, with a 5 s timeout.
func (s *Sshd) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: s.HostKeyCallback(),
		Timeout:         5 * time.Second,
	}
}

// SSHConfigBlock returns an ssh_config "Host alias" block that reaches this
// sshd: HostName 127.0.0.1, Port, User, IdentityFile and UserKnownHostsFile.
func (s *Sshd) SSHConfigBlock(alias string) string {
	return fmt.Sprintf(`Host %s
    HostName %s
    Port %d
    User %s
    IdentityFile %s
    IdentitiesOnly yes
    UserKnownHostsFile %s
    StrictHostKeyChecking yes
    BatchMode yes
`, alias, s.Host, s.Port, s.User, s.ClientKeyPath, s.KnownHostsPath)
}

// WriteClientSSHConfig writes an ssh_config file at path (mode 0600,
// atomically, creating parent directories) holding SSHConfigBlock for each
// alias (default "porthole-sshd"), and returns the first alias. Use it as
// the ~/.ssh/config of a fake home or with `ssh -F path`.
func (s *Sshd) WriteClientSSHConfig(path string, aliases ...string) (string, error) {
	if len(aliases) == 0 {
		aliases = []string{"porthole-sshd"}
	}
	var b strings.Builder
	for _, a := range aliases {
		b.WriteString(s.SSHConfigBlock(a))
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("write ssh config: %w", err)
	}
	if err := writeFile(path, []byte(b.String())); err != nil {
		return "", fmt.Errorf("write ssh config: %w", err)
	}
	return aliases[0], nil
}

// writeKeyPair generates a key of typ ("ed25519" or "rsa"), writes the
// private key in OpenSSH format to path (0600) and the public key to
// path+".pub", and returns the signer.
func writeKeyPair(typ, path, comment string) (ssh.Signer, error) {
	priv, err := generatePrivateKey(typ)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%s signer: %w", typ, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("marshal %s key: %w", typ, err)
	}
	if err := writeFile(path, pem.EncodeToMemory(block)); err != nil {
		return nil, err
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + comment + "\n"
	if err := writeFile(path+".pub", []byte(pub)); err != nil {
		return nil, err
	}
	return signer, nil
}

func generatePrivateKey(typ string) (crypto.PrivateKey, error) {
	switch typ {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		return k, nil
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate rsa key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unknown key type %q: use \"ed25519\" or \"rsa\"", typ)
	}
}

// writeFile writes data to path atomically with mode 0600.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port, nil
}
