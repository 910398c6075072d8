//go:build linux

package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/crypto/ssh"
	sshagent "golang.org/x/crypto/ssh/agent"
	"golang.org/x/sys/unix"

	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

// envProbeHome names the home directory the sandbox-probe mode tries to
// read and write in (the test binary's agent only: production agents have
// no such mode).
const envProbeHome = "PORTHOLE_AGENT_TEST_PROBE_HOME"

func init() {
	// sandbox-probe: once sandboxed, the agent tries what a compromised
	// agent would and writes the outcome to stderr (the Supervisor logs it).
	testModes["sandbox-probe"] = func(o *serveOptions) {
		o.afterInit = func() { fmt.Fprintln(os.Stderr, "sandbox-probe "+sandboxProbe(os.Getenv(envProbeHome))) }
	}
	// no-landlock plays a kernel without Landlock.
	testModes["no-landlock"] = func(*serveOptions) {
		landlockABI = func() (int, error) { return 0, syscall.ENOSYS }
	}
}

// sandboxProbe returns "what=outcome …" for each forbidden operation.
func sandboxProbe(home string) string {
	outcome := func(err error) string {
		var errno syscall.Errno
		switch {
		case err == nil:
			return "ok"
		case errors.As(err, &errno):
			return unix.ErrnoName(errno)
		}
		return strings.ReplaceAll(err.Error(), " ", "_")
	}
	var out []string
	add := func(what string, err error) { out = append(out, what+"="+outcome(err)) }

	_, err := os.ReadFile(filepath.Join(home, ".bashrc"))
	add("read", err)
	add("write", os.WriteFile(filepath.Join(home, "planted"), []byte("x"), 0o600))
	// ForkExec opens nothing (os/exec would open /dev/null first, which
	// Landlock refuses before exec is even tried).
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "true"}, &syscall.ProcAttr{})
	if err == nil {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	}
	add("exec", err)
	// PEEKDATA on a process we do not trace: ESRCH when ptrace is allowed.
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, uintptr(os.Getppid()), 0, 0, 0, 0)
	add("ptrace", errnoErr(errno))
	// Reading our own memory succeeds when process_vm_readv is allowed.
	var src, dst [8]byte
	_, err = unix.ProcessVMReadv(os.Getpid(),
		[]unix.Iovec{{Base: &dst[0], Len: uint64(len(dst))}},
		[]unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&src[0])), Len: len(src)}}, 0)
	add("vm_readv", err)
	// Allowed: the network watcher's socket (forwarder.WakeDetector opens
	// one through netwatch to hear of address, route and link changes).
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR |
			unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE})
		_ = unix.Close(fd)
	}
	add("netlink_route", err)
	return strings.Join(out, " ")
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// TestSandboxDeniesFilesExecAndPtrace: inside a running agent, reading a
// file of $HOME the login does not need, writing a new file in $HOME,
// running /bin/sh, ptrace and process_vm_readv all fail, while the login
// itself connects.
func TestSandboxDeniesFilesExecAndPtrace(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	if err := os.WriteFile(filepath.Join(r.home, ".bashrc"), []byte("export SECRET=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sup, logs := testSupervisor(t, SupervisorOptions{Env: []string{envTestMode + "=sandbox-probe", envProbeHome + "=" + r.home}})
	l := startRemote(t, sup, r.spec("probe"), Secrets{Password: testPassword}, nil)
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("Connect from the sandbox: %v", err)
	}
	var line string
	if !waitUntil(10*time.Second, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "sandbox-probe ") {
				line = l
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the agent did not report its probe; log:\n%s", logs.String())
	}
	for _, want := range []string{"read=EACCES", "write=EACCES", "exec=EPERM", "ptrace=EPERM", "vm_readv=EPERM", "netlink_route=ok"} {
		if !strings.Contains(line, want) {
			t.Errorf("probe: %s; want %s", line, want)
		}
	}
	if _, err := os.Stat(filepath.Join(r.home, "planted")); err == nil {
		t.Errorf("the agent planted a file in $HOME")
	}
	if strings.Contains(logs.String(), "watch the network") || strings.Contains(logs.String(), "watching the network;") {
		t.Errorf("the sandboxed agent cannot watch the network for changes:\n%s", logs.String())
	}
}

// TestAgentThreadsAreHardened: every thread of the agent runs with
// no_new_privs and the seccomp filter (not just the one that set them).
func TestAgentThreadsAreHardened(t *testing.T) {
	sup, _ := testSupervisor(t, SupervisorOptions{})
	l := startRemote(t, sup, LoginSpec{ID: "threads", Host: "127.0.0.1", Port: 1, SSHConfigPath: "none"}, Secrets{}, nil)
	pid := l.Process().PID
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("agent %d has %d threads; the test needs several", pid, len(tasks))
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("thread %s of agent %d lacks %q", task.Name(), pid, want)
			}
		}
	}
}

// TestLandlockUnavailable: on a kernel without Landlock the agent says so
// and still serves the login.
func TestLandlockUnavailable(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	sup, logs := testSupervisor(t, SupervisorOptions{Env: []string{envTestMode + "=no-landlock"}})
	l := startRemote(t, sup, r.spec("old-kernel"), Secrets{Password: testPassword}, nil)
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if !waitUntil(5*time.Second, func() bool { return strings.Contains(logs.String(), "landlock unavailable") }) {
		t.Errorf("the log does not say Landlock is unavailable:\n%s", logs.String())
	}
}

// writeKey writes an unencrypted OpenSSH private key and its .pub file.
func writeKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}

// startSSHAgent serves an in-memory ssh-agent holding a new key on a
// Unix socket; it returns the socket and the key.
func startSSHAgent(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := sshagent.NewKeyring()
	if err := kr.Add(sshagent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent") // short: Unix socket paths are limited
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
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _ = sshagent.ServeAgent(kr, c) })
		}
	})
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
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sock, signer.PublicKey()
}

// TestSandboxedLogins: logins still work from a sandboxed agent with a key
// (named and default), a password, ssh-agent (from $SSH_AUTH_SOCK and a
// named socket), ProxyJump, an ssh_config alias defined in an Included
// file, and a new host key accepted and saved to a known_hosts file that
// did not exist.
func TestSandboxedLogins(t *testing.T) {
	home := t.TempDir()
	idFile := filepath.Join(home, "keys", "login_key")
	idKey := writeKey(t, idFile)
	defaultKey := writeKey(t, filepath.Join(home, ".ssh", "id_ed25519"))
	sock, agentKey := startSSHAgent(t)
	t.Setenv("SSH_AUTH_SOCK", sock) // the agents inherit it when they may use it

	target := newRig(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{idKey, defaultKey, agentKey}})
	jump := newRig(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{defaultKey}})
	knownHosts := filepath.Join(home, ".ssh", "known_hosts")
	for _, s := range []*testrig.SSHServer{target.srv, jump.srv} {
		if err := sshconn.AppendKnownHost(knownHosts, s.Addr(), s.HostKey(), false); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(target.srv.Addr())
	incDir := filepath.Join(home, "ssh.d")
	if err := os.MkdirAll(incDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(incDir, "target.conf"), fmt.Appendf(nil,
		"Host target-alias\n  HostName %s\n  Port %s\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n",
		host, port, target.srv.User(), idFile), 0o600); err != nil {
		t.Fatal(err)
	}
	sshConfig := filepath.Join(home, ".ssh", "config")
	if err := os.WriteFile(sshConfig, []byte("Include "+incDir+"/*.conf\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	base := func(id string) LoginSpec {
		s := target.spec(id)
		s.HomeDir = home
		s.KnownHostsFiles = []string{knownHosts}
		return s
	}
	for _, tc := range []struct {
		name    string
		spec    func() LoginSpec
		secrets Secrets
		prompt  *fakePrompter
		check   func(t *testing.T, spec LoginSpec)
	}{
		{name: "named key", spec: func() LoginSpec {
			s := base("key")
			s.AuthMethods, s.IdentityFiles = []AuthMethod{AuthKey}, []string{idFile}
			return s
		}},
		{name: "default key", spec: func() LoginSpec {
			s := base("default-key")
			s.AuthMethods = []AuthMethod{AuthKey}
			return s
		}},
		{name: "password", spec: func() LoginSpec { return base("password") }, secrets: Secrets{Password: testPassword}},
		{name: "ssh-agent from SSH_AUTH_SOCK", spec: func() LoginSpec {
			s := base("agent-env")
			s.AuthMethods, s.AgentSocket = []AuthMethod{AuthAgent}, ""
			return s
		}},
		{name: "ssh-agent on a named socket", spec: func() LoginSpec {
			s := base("agent-sock")
			s.AuthMethods, s.AgentSocket = []AuthMethod{AuthAgent}, sock
			return s
		}},
		{name: "ProxyJump", spec: func() LoginSpec {
			s := base("jump")
			s.ProxyJump = jump.srv.User() + "@" + jump.srv.Addr()
			return s
		}, secrets: Secrets{Password: testPassword}, check: func(t *testing.T, _ LoginSpec) {
			if jump.srv.Stats().DirectTCPIP == 0 {
				t.Errorf("the jump host forwarded no connection")
			}
		}},
		{name: "ssh_config alias from an Include", spec: func() LoginSpec {
			s := base("alias")
			s.Host, s.Port, s.User = "", 0, ""
			s.SSHConfigAlias, s.SSHConfigPath, s.AuthMethods = "target-alias", sshConfig, []AuthMethod{AuthKey}
			return s
		}},
		{name: "new host key saved to a new known_hosts", spec: func() LoginSpec {
			s := base("save")
			s.KnownHostsFiles = []string{filepath.Join(home, "fresh", "known_hosts")}
			return s
		}, secrets: Secrets{Password: testPassword}, prompt: &fakePrompter{decision: sshconn.AcceptAndSave},
			check: func(t *testing.T, spec LoginSpec) {
				b, err := os.ReadFile(spec.KnownHostsFiles[0])
				if err != nil || !strings.Contains(string(b), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(target.srv.HostKey())))) {
					t.Errorf("known_hosts after accept-and-save: %q, %v; want the server's key", b, err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sup, logs := testSupervisor(t, SupervisorOptions{})
			spec := tc.spec()
			var p sshconn.Prompter
			if tc.prompt != nil {
				p = tc.prompt
			}
			l := startRemote(t, sup, spec, tc.secrets, p)
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect from the sandboxed agent: %v", err)
			}
			out, err := l.Exec(ctxT(t, 10*time.Second), "echo hi")
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			_ = out
			if tc.check != nil {
				tc.check(t, spec)
			}
			if strings.Contains(logs.String(), "landlock unavailable") {
				t.Errorf("the agent ran without Landlock")
			}
		})
	}
}

// TestSandboxPolicy: the files a spec resolves to, and nothing else of $HOME.
func TestSandboxPolicy(t *testing.T) {
	home := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ssh := filepath.Join(home, ".ssh")
	must(os.MkdirAll(filepath.Join(ssh, "conf.d"), 0o700))
	must(os.WriteFile(filepath.Join(ssh, "conf.d", "a.conf"), []byte("Host a\n  IdentityFile ~/.ssh/a_key\n"), 0o600))
	must(os.WriteFile(filepath.Join(home, "extra.conf"), []byte("# nothing\n"), 0o600))
	cfg := filepath.Join(ssh, "config")
	must(os.WriteFile(cfg, fmt.Appendf(nil, "Include %s/conf.d/*.conf\ninclude = \"%s/extra.conf\"\nHost b\n  UserKnownHostsFile ~/.ssh/kh_b ~/.ssh/kh_b2\n", ssh, home), 0o600))

	for _, tc := range []struct {
		name                      string
		spec                      LoginSpec
		read, write, sockets, not []string
	}{
		{
			name:  "alias from an include",
			spec:  LoginSpec{SSHConfigAlias: "a", SSHConfigPath: cfg, SystemConfigPath: "none", HomeDir: home, AgentSocket: "none"},
			read:  []string{cfg, filepath.Join(ssh, "conf.d"), filepath.Join(ssh, "conf.d", "a.conf"), filepath.Join(home, "extra.conf"), filepath.Join(ssh, "a_key"), filepath.Join(ssh, "a_key.pub"), "/etc/hosts"},
			write: []string{filepath.Join(ssh, "known_hosts")},
			not:   []string{home, ssh, filepath.Join(ssh, "id_rsa")},
		},
		{
			name:    "known_hosts from the config",
			spec:    LoginSpec{SSHConfigAlias: "b", SSHConfigPath: cfg, SystemConfigPath: "none", HomeDir: home, AgentSocket: "/run/a.sock"},
			read:    []string{filepath.Join(ssh, "kh_b2"), filepath.Join(ssh, "id_ed25519")},
			write:   []string{filepath.Join(ssh, "kh_b")},
			sockets: []string{"/run/a.sock"},
			not:     []string{home, ssh},
		},
		{
			name:  "explicit files, no agent",
			spec:  LoginSpec{Host: "h", SSHConfigPath: "none", HomeDir: home, IdentityFiles: []string{"~/k"}, KnownHostsFiles: []string{"~/kh", "/etc/kh"}, AuthMethods: []AuthMethod{AuthKey}},
			read:  []string{filepath.Join(home, "k"), filepath.Join(home, "k.pub"), "/etc/kh"},
			write: []string{filepath.Join(home, "kh")},
			not:   []string{cfg, filepath.Join(ssh, "known_hosts")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sandboxPolicyFor(tc.spec, "/nonexistent", false)
			for _, f := range tc.read {
				if !slices.Contains(p.read, f) {
					t.Errorf("read lacks %s: %q", f, p.read)
				}
			}
			if !slices.Equal(p.write, tc.write) {
				t.Errorf("write = %q, want %q", p.write, tc.write)
			}
			if !slices.Equal(p.sockets, tc.sockets) {
				t.Errorf("sockets = %q, want %q", p.sockets, tc.sockets)
			}
			for _, f := range tc.not {
				if slices.Contains(p.read, f) || slices.Contains(p.write, f) {
					t.Errorf("the policy grants %s", f)
				}
			}
		})
	}
}

var includeCases = []struct {
	in   string
	want []string
}{
	{"Include a b\n", []string{"a", "b"}},
	{"  include=~/x\n", []string{"~/x"}},
	{"INCLUDE = \"/p q\"\n", []string{"/p", "q"}},
	{"# Include no\nHost x\n  Include /y/*.conf\n", []string{"/y/*.conf"}},
	{"Includes a\nIdentityFile b\n", nil},
	{"Include\n", nil},
}

func TestIncludeArgs(t *testing.T) {
	for _, tc := range includeCases {
		t.Run(tc.in, func(t *testing.T) {
			if got := includeArgs([]byte(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("includeArgs(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzIncludeArgs(f *testing.F) {
	for _, tc := range includeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, a := range includeArgs([]byte(in)) {
			if a == "" || strings.ContainsAny(a, " \t\n") {
				t.Errorf("includeArgs(%q) returned %q", in, a)
			}
		}
	})
}
