package testrig

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// KIQuestion is one keyboard-interactive prompt and the answer it expects.
type KIQuestion struct {
	Prompt string
	Echo   bool
	Answer string
}

// SSHServerOptions configures an in-process SSH server.
type SSHServerOptions struct {
	// User is the only user name accepted; default "tester".
	User string
	// Password enables password authentication when non-empty.
	Password string
	// AuthorizedKeys enables public-key authentication for these keys.
	AuthorizedKeys []ssh.PublicKey
	// KeyboardInteractive enables keyboard-interactive authentication when
	// non-empty: all questions are asked in one round and every answer must
	// match.
	KeyboardInteractive []KIQuestion
	// HostKey is the server's host key; default a fresh ed25519 key.
	HostKey ssh.Signer
	// AllowExec accepts "session" channels whose "exec" request runs
	// `sh -c CMD` locally, streaming stdout/stderr and sending exit-status.
	// Without it, session channels are rejected with ssh.Prohibited.
	AllowExec bool
	// Hosts are names only this server resolves (name → IP address), as if
	// listed in its /etc/hosts: a direct-tcpip channel to such a name
	// connects to its address (which must be loopback, like any target).
	// When Hosts is set, a name that is neither listed, nor an IP address,
	// nor "localhost" is rejected with ssh.ConnectionFailed and OpenSSH's
	// getaddrinfo message "Name or service not known"; without Hosts such
	// names are rejected with ssh.Prohibited.
	Hosts map[string]string
	// AlsoForwardTo are further addresses (besides loopback) that
	// direct-tcpip may reach: only addresses of a network namespace the
	// test made itself, e.g. a dummy interface's 192.0.2.10, to stand for
	// a server's own non-loopback address.
	AlsoForwardTo []string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// SSHServerStats are counters of what the server saw since it started.
type SSHServerStats struct {
	Conns        int64 // TCP connections accepted
	ActiveConns  int64 // TCP connections open now
	AuthOK       int64 // successful authentications
	AuthFail     int64 // failed authentication attempts (the "none" probe excluded)
	DirectTCPIP  int64 // direct-tcpip channel requests (including refused ones)
	Streamlocal  int64 // direct-streamlocal@openssh.com channel requests
	TCPIPForward int64 // tcpip-forward global requests
	Keepalives   int64 // keepalive@openssh.com global requests
	Exec         int64 // exec requests on session channels
}

// ErrClosed is returned when using a test rig component after Close.
var ErrClosed = errors.New("testrig: already closed")

// SSHServer is an in-process SSH server listening on 127.0.0.1 with switches
// to refuse channels, stall and drop connections.
type SSHServer struct {
	opts    SSHServerOptions
	log     *slog.Logger
	ln      net.Listener
	hostKey ssh.Signer
	config  *ssh.ServerConfig

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stall  *gate
	refuse atomic.Bool

	mu     sync.Mutex
	conns  map[*gatedConn]struct{}
	closed bool

	closeOnce sync.Once
	closeErr  error

	nConns, nActive, nAuthOK, nAuthFail                 atomic.Int64
	nDirect, nStreamlocal, nTCPIPFwd, nKeepalive, nExec atomic.Int64
}

// StartSSHServer starts an SSH server on 127.0.0.1:0. ctx bounds start-up
// only; the server runs until Close.
func StartSSHServer(ctx context.Context, opts SSHServerOptions) (*SSHServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start ssh server: %w", err)
	}
	if opts.User == "" {
		opts.User = "tester"
	}
	if opts.Password == "" && len(opts.AuthorizedKeys) == 0 && len(opts.KeyboardInteractive) == 0 {
		return nil, errors.New("start ssh server: no authentication method configured: set Password, AuthorizedKeys or KeyboardInteractive")
	}
	hostKey := opts.HostKey
	if hostKey == nil {
		var err error
		hostKey, err = NewEd25519Signer()
		if err != nil {
			return nil, fmt.Errorf("start ssh server: %w", err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start ssh server: listen on loopback: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &SSHServer{
		opts:    opts,
		log:     orDiscard(opts.Logger).With("component", "testrig.sshserver"),
		ln:      ln,
		hostKey: hostKey,
		ctx:     sctx,
		cancel:  cancel,
		stall:   newGate(),
		conns:   make(map[*gatedConn]struct{}),
	}
	s.config = s.serverConfig()
	s.wg.Go(s.acceptLoop)
	s.log.Debug("ssh server listening", "addr", s.Addr())
	return s, nil
}

// NewSSHServer is StartSSHServer for tests: it fails the test on error and
// closes the server in t.Cleanup.
func NewSSHServer(t testing.TB, opts SSHServerOptions) *SSHServer {
	t.Helper()
	s, err := StartSSHServer(context.Background(), opts)
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewEd25519Signer returns a fresh ed25519 SSH key.
func NewEd25519Signer() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("ed25519 signer: %w", err)
	}
	return signer, nil
}

// NewTestKey returns a fresh ed25519 SSH key or fails the test.
func NewTestKey(t testing.TB) ssh.Signer {
	t.Helper()
	s, err := NewEd25519Signer()
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	return s
}

// Addr is the server's "127.0.0.1:port".
func (s *SSHServer) Addr() string { return s.ln.Addr().String() }

// HostKey is the server's public host key.
func (s *SSHServer) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// HostKeyCallback accepts exactly the server's host key.
func (s *SSHServer) HostKeyCallback() ssh.HostKeyCallback { return ssh.FixedHostKey(s.HostKey()) }

// User is the user name the server accepts.
func (s *SSHServer) User() string { return s.opts.User }

// ClientConfig returns a client config for the server's user, pinned to its
// host key, with a 5 s timeout.
func (s *SSHServer) ClientConfig(auth ...ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            s.opts.User,
		Auth:            auth,
		HostKeyCallback: s.HostKeyCallback(),
		Timeout:         5 * time.Second,
	}
}

// SetRefuseChannels makes the server reject every new channel (and only
// channels) with ssh.Prohibited while on.
func (s *SSHServer) SetRefuseChannels(on bool) {
	s.refuse.Store(on)
	s.log.Debug("refuse channels", "on", on)
}

// SetStall freezes (on) or resumes (off) all traffic: existing connections
// stop reading and writing, so keepalives and channels hang; new TCP
// connections are accepted but get no handshake until resumed.
func (s *SSHServer) SetStall(on bool) {
	s.stall.setShut(on)
	s.log.Debug("stall", "on", on)
}

// DropAll abruptly resets every client TCP connection. New connections work.
func (s *SSHServer) DropAll() {
	s.mu.Lock()
	conns := make([]*gatedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	s.log.Debug("dropped all connections", "n", len(conns))
}

// Stats returns a snapshot of the server's counters.
func (s *SSHServer) Stats() SSHServerStats {
	return SSHServerStats{
		Conns:        s.nConns.Load(),
		ActiveConns:  s.nActive.Load(),
		AuthOK:       s.nAuthOK.Load(),
		AuthFail:     s.nAuthFail.Load(),
		DirectTCPIP:  s.nDirect.Load(),
		Streamlocal:  s.nStreamlocal.Load(),
		TCPIPForward: s.nTCPIPFwd.Load(),
		Keepalives:   s.nKeepalive.Load(),
		Exec:         s.nExec.Load(),
	}
}

// Close stops the server, closes every connection, listener and process it
// started, and waits for all its goroutines.
func (s *SSHServer) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*gatedConn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		s.cancel()
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = fmt.Errorf("close ssh server listener: %w", err)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *SSHServer) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-PortholeTestrig",
		AuthLogCallback: func(conn ssh.ConnMetadata, method string, err error) {
			switch {
			case err == nil:
				s.nAuthOK.Add(1)
				s.log.Debug("auth ok", "user", conn.User(), "method", method)
			case method != "none":
				s.nAuthFail.Add(1)
				s.log.Debug("auth failed", "user", conn.User(), "method", method, "err", err)
			}
		},
	}
	cfg.AddHostKey(s.hostKey)
	opts := s.opts
	if opts.Password != "" {
		cfg.PasswordCallback = func(conn ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			if conn.User() == opts.User && subtle.ConstantTimeCompare(password, []byte(opts.Password)) == 1 {
				return nil, nil
			}
			return nil, errors.New("wrong user or password")
		}
	}
	if len(opts.AuthorizedKeys) > 0 {
		cfg.PublicKeyCallback = func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if conn.User() != opts.User {
				return nil, errors.New("wrong user")
			}
			for _, k := range opts.AuthorizedKeys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("public key not authorized")
		}
	}
	if len(opts.KeyboardInteractive) > 0 {
		cfg.KeyboardInteractiveCallback = func(conn ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			prompts := make([]string, len(opts.KeyboardInteractive))
			echos := make([]bool, len(opts.KeyboardInteractive))
			for i, q := range opts.KeyboardInteractive {
				prompts[i], echos[i] = q.Prompt, q.Echo
			}
			answers, err := client(conn.User(), "Porthole testrig", prompts, echos)
			if err != nil {
				return nil, fmt.Errorf("keyboard-interactive: %w", err)
			}
			if conn.User() != opts.User || len(answers) != len(prompts) {
				return nil, errors.New("keyboard-interactive: wrong user or number of answers")
			}
			ok := 1
			for i, q := range opts.KeyboardInteractive {
				ok &= subtle.ConstantTimeCompare([]byte(answers[i]), []byte(q.Answer))
			}
			if ok != 1 {
				return nil, errors.New("keyboard-interactive: wrong answer")
			}
			return nil, nil
		}
	}
	return cfg
}

func (s *SSHServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Debug("accept failed", "err", err)
			}
			return
		}
		gc := newGatedConn(c, s.stall)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[gc] = struct{}{}
		s.mu.Unlock()
		s.nConns.Add(1)
		s.nActive.Add(1)
		s.wg.Go(func() { s.serveConn(gc) })
	}
}

// connState holds the per-connection remote-forward listeners.
type connState struct {
	mu        sync.Mutex
	closed    bool
	listeners map[fwdKey]net.Listener
}

type fwdKey struct {
	addr string
	port uint32
}

func (cs *connState) add(k fwdKey, ln net.Listener) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	cs.listeners[k] = ln
	return true
}

func (cs *connState) remove(k fwdKey) net.Listener {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	ln := cs.listeners[k]
	delete(cs.listeners, k)
	return ln
}

func (cs *connState) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	for k, ln := range cs.listeners {
		_ = ln.Close()
		delete(cs.listeners, k)
	}
}

func (s *SSHServer) serveConn(gc *gatedConn) {
	defer func() {
		_ = gc.Close()
		s.mu.Lock()
		delete(s.conns, gc)
		s.mu.Unlock()
		s.nActive.Add(-1)
	}()
	sconn, chans, reqs, err := ssh.NewServerConn(gc, s.config)
	if err != nil {
		s.log.Debug("handshake failed", "remote", gc.RemoteAddr(), "err", err)
		return
	}
	s.log.Debug("client connected", "remote", sconn.RemoteAddr(), "user", sconn.User())
	cs := &connState{listeners: make(map[fwdKey]net.Listener)}
	s.wg.Go(func() { s.handleGlobalRequests(sconn, reqs, cs) })
	for nc := range chans {
		s.handleNewChannel(nc)
	}
	_ = sconn.Close()
	cs.closeAll()
	s.log.Debug("client disconnected", "remote", sconn.RemoteAddr())
}

func (s *SSHServer) handleGlobalRequests(sconn *ssh.ServerConn, reqs <-chan *ssh.Request, cs *connState) {
	for req := range reqs {
		switch req.Type {
		case "keepalive@openssh.com":
			s.nKeepalive.Add(1)
			// OpenSSH answers keepalives with SSH_MSG_REQUEST_FAILURE.
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		case "tcpip-forward":
			s.nTCPIPFwd.Add(1)
			s.handleTCPIPForward(sconn, req, cs)
		case "cancel-tcpip-forward":
			var m struct {
				Addr string
				Port uint32
			}
			ok := false
			if err := ssh.Unmarshal(req.Payload, &m); err == nil {
				if ln := cs.remove(fwdKey{m.Addr, m.Port}); ln != nil {
					_ = ln.Close()
					ok = true
				}
			}
			if req.WantReply {
				_ = req.Reply(ok, nil)
			}
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func (s *SSHServer) handleTCPIPForward(sconn *ssh.ServerConn, req *ssh.Request, cs *connState) {
	reply := func(ok bool, payload []byte) {
		if req.WantReply {
			_ = req.Reply(ok, payload)
		}
	}
	var m struct {
		Addr string
		Port uint32
	}
	if err := ssh.Unmarshal(req.Payload, &m); err != nil || m.Port > 65535 {
		reply(false, nil)
		return
	}
	host := m.Addr
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		s.log.Debug("tcpip-forward refused: not loopback", "addr", m.Addr)
		reply(false, nil)
		return
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(s.ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(m.Port))))
	if err != nil {
		s.log.Debug("tcpip-forward listen failed", "err", err)
		reply(false, nil)
		return
	}
	bound := uint32(ln.Addr().(*net.TCPAddr).Port)
	if !cs.add(fwdKey{m.Addr, bound}, ln) {
		_ = ln.Close()
		reply(false, nil)
		return
	}
	if m.Port == 0 {
		reply(true, ssh.Marshal(struct{ Port uint32 }{bound}))
	} else {
		reply(true, nil)
	}
	s.log.Debug("tcpip-forward listening", "addr", ln.Addr())
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.forwardBack(sconn, c, m.Addr, bound) })
		}
	})
}

func (s *SSHServer) forwardBack(sconn *ssh.ServerConn, c net.Conn, addr string, port uint32) {
	orig := c.RemoteAddr().(*net.TCPAddr)
	payload := ssh.Marshal(struct {
		Addr     string
		Port     uint32
		OrigAddr string
		OrigPort uint32
	}{addr, port, orig.IP.String(), uint32(orig.Port)})
	ch, reqs, err := sconn.OpenChannel("forwarded-tcpip", payload)
	if err != nil {
		s.log.Debug("forwarded-tcpip open failed", "err", err)
		_ = c.Close()
		return
	}
	s.pipe(ch, reqs, c.(*net.TCPConn))
}

func (s *SSHServer) handleNewChannel(nc ssh.NewChannel) {
	typ := nc.ChannelType()
	switch typ {
	case "direct-tcpip":
		s.nDirect.Add(1)
	case "direct-streamlocal@openssh.com":
		s.nStreamlocal.Add(1)
	case "session":
	default:
		_ = nc.Reject(ssh.UnknownChannelType, "unsupported channel type "+typ)
		return
	}
	if s.refuse.Load() {
		_ = nc.Reject(ssh.Prohibited, "channels refused by the test switch SetRefuseChannels")
		return
	}
	s.wg.Go(func() {
		switch typ {
		case "direct-tcpip":
			s.serveDirectTCPIP(nc)
		case "direct-streamlocal@openssh.com":
			s.serveStreamlocal(nc)
		case "session":
			s.serveSession(nc)
		}
	})
}

type halfCloser interface {
	net.Conn
	CloseWrite() error
}

func (s *SSHServer) serveDirectTCPIP(nc ssh.NewChannel) {
	var m struct {
		Host     string
		Port     uint32
		OrigAddr string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil || m.Port > 65535 {
		_ = nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	if addr, ok := s.opts.Hosts[m.Host]; ok {
		m.Host = addr
	} else if s.opts.Hosts != nil && m.Host != "localhost" && net.ParseIP(m.Host) == nil {
		_ = nc.Reject(ssh.ConnectionFailed, "Name or service not known")
		return
	}
	if !isLoopbackHost(m.Host) && !slices.Contains(s.opts.AlsoForwardTo, m.Host) {
		_ = nc.Reject(ssh.Prohibited, "testrig only forwards to loopback targets")
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(s.ctx, "tcp", net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port))))
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = c.Close()
		return
	}
	s.pipe(ch, reqs, c.(*net.TCPConn))
}

func (s *SSHServer) serveStreamlocal(nc ssh.NewChannel) {
	var m struct {
		Path      string
		Reserved0 string
		Reserved1 uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "malformed direct-streamlocal request")
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(s.ctx, "unix", m.Path)
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = c.Close()
		return
	}
	s.pipe(ch, reqs, c.(*net.UnixConn))
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pipe copies between an SSH channel and a socket, propagating half-close
// both ways, and closes both when both directions are done or when the
// channel is closed by the client (or dies with its connection).
func (s *SSHServer) pipe(ch ssh.Channel, reqs <-chan *ssh.Request, c halfCloser) {
	toConnDone := make(chan struct{})
	var copies sync.WaitGroup
	copies.Go(func() {
		defer close(toConnDone)
		_, _ = io.Copy(c, ch)
		_ = c.CloseWrite()
	})
	copies.Go(func() {
		_, _ = io.Copy(ch, c)
		_ = ch.CloseWrite()
	})
	// Server Close ends the socket even if its peer stopped reading.
	stop := context.AfterFunc(s.ctx, func() { _ = c.Close() })
	defer stop()
	s.wg.Go(func() {
		for r := range reqs {
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
		// The channel is closed: deliver what was received (bounded, in
		// case the socket's peer does not read), then end the socket so
		// the copy from it stops.
		select {
		case <-toConnDone:
		case <-time.After(5 * time.Second):
		case <-s.ctx.Done():
		}
		_ = c.Close()
	})
	copies.Wait()
	_ = ch.Close()
	_ = c.Close()
}

func (s *SSHServer) serveSession(nc ssh.NewChannel) {
	if !s.opts.AllowExec {
		_ = nc.Reject(ssh.Prohibited, "session channels are disabled (SSHServerOptions.AllowExec)")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var env []string
	var execDone chan struct{}
	for req := range reqs {
		switch req.Type {
		case "env":
			var m struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &m); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			env = append(env, m.Name+"="+m.Value)
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		case "exec":
			var m struct{ Command string }
			if execDone != nil || ssh.Unmarshal(req.Payload, &m) != nil {
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
				continue
			}
			s.nExec.Add(1)
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
			execDone = make(chan struct{})
			done := execDone
			cmdEnv := append(os.Environ(), env...)
			s.wg.Go(func() {
				defer close(done)
				s.runExec(ctx, ch, m.Command, cmdEnv)
			})
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
	// The channel is closed: stop a command that is still running.
	cancel()
	if execDone != nil {
		<-execDone
	}
	_ = ch.Close()
}

func (s *SSHServer) runExec(ctx context.Context, ch ssh.Channel, command string, env []string) {
	s.log.Debug("exec", "command", command)
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = env
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.WaitDelay = 2 * time.Second
	killGroupOnCancel(cmd)
	stdin, err := cmd.StdinPipe()
	status := uint32(0)
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		_, _ = fmt.Fprintf(ch.Stderr(), "testrig: cannot run command: %v\n", err)
		status = 127
	} else {
		s.wg.Go(func() {
			_, _ = io.Copy(stdin, ch)
			_ = stdin.Close()
		})
		err = cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			status = uint32(ee.ExitCode())
		default:
			status = 255
		}
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
	_ = ch.CloseWrite()
	_ = ch.Close()
}
