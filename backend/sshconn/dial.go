package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Dialer connects to a resolved Config, through its jump hosts.
type Dialer struct {
	Config   *Config
	Prompter Prompter // nil: no passwords, passphrases or host-key questions (unknown hosts fail)
	Logger   *slog.Logger
	// OnStep, if set, is called during Dial as it progresses, one call at a
	// time (not always on the goroutine that called Dial). It must not block.
	OnStep func(step Step, detail string)

	// AgentSocket overrides the agent for every hop: "" = the hop's
	// IdentityAgent or $SSH_AUTH_SOCK; "none" = do not use an agent.
	AgentSocket string
	// Signers are extra in-memory keys, offered after the agent's keys and
	// before identity files (e.g. a key handed over by the app).
	Signers []ssh.Signer
	// KnownHostsFiles, if set, replaces every hop's UserKnownHostsFile and
	// GlobalKnownHostsFile; new keys go to the first file.
	KnownHostsFiles []string
}

func (d *Dialer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Dialer) step(s Step, detail string) {
	if d.OnStep != nil {
		d.OnStep(s, detail)
	}
}

func (d *Dialer) agentSocket(hop *Config) string {
	switch {
	case d.AgentSocket != "":
		return d.AgentSocket
	case hop.IdentityAgent != "":
		return hop.IdentityAgent
	}
	return os.Getenv("SSH_AUTH_SOCK")
}

// Dial connects and authenticates every hop in turn: the first over TCP,
// each next one over a direct-tcpip channel of the previous hop, each with
// its own host-key check. ctx bounds the whole dial, including prompts.
func (d *Dialer) Dial(ctx context.Context) (*Client, error) {
	if d.Config == nil {
		return nil, fmt.Errorf("%w: Dialer has no Config", ErrConfig)
	}
	hops := append(append([]*Config(nil), d.Config.Jumps...), d.Config)
	log := d.logger()
	var clients []*ssh.Client
	closeAll := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	for i, hop := range hops {
		label := hop.String()
		if i < len(hops)-1 {
			label = fmt.Sprintf("jump host %d of %d (%s)", i+1, len(hops)-1, hop.Addr())
		}
		var prev *ssh.Client
		if i > 0 {
			prev = clients[i-1]
		}
		c, err := d.dialHop(ctx, hop, prev, label, log.With("hop", label))
		if err != nil {
			closeAll()
			if i < len(hops)-1 {
				err = fmt.Errorf("%s: %w", label, err)
			}
			return nil, err
		}
		clients = append(clients, c)
	}
	d.step(StepReady, d.Config.String())
	log.Info("connected", "dest", d.Config.String(), "jumps", len(hops)-1)
	return newClient(clients, d.Config, log), nil
}

func (d *Dialer) dialHop(ctx context.Context, hop *Config, prev *ssh.Client, label string, log *slog.Logger) (*ssh.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", hop.Addr(), err)
	}
	timeout := hop.connectTimeout()
	addr := hop.Addr()
	var conn net.Conn
	if prev == nil {
		d.step(StepResolving, fmt.Sprintf("%s: %s", label, hop.HostName))
		d.step(StepConnecting, fmt.Sprintf("%s: %s", label, addr))
		nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		c, err := nd.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("connecting to %s: %w", addr, ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("%w: %s did not answer within %s (%v); check the host name and port, and that the server is up", ErrUnreachable, addr, timeout, err)
			}
			return nil, fmt.Errorf("%w: cannot connect to %s: %v; check the host name and port, and that the server is up", ErrUnreachable, addr, err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			if err := tc.SetNoDelay(true); err != nil {
				log.Debug("cannot set TCP_NODELAY", "err", err)
			}
		}
		log.Debug("tcp connected", "addr", addr, "remote", c.RemoteAddr().String())
		conn = withQuickAck(c)
	} else {
		d.step(StepConnecting, fmt.Sprintf("%s: %s via the previous jump host", label, addr))
		cctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := prev.DialContext(cctx, "tcp", addr)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("connecting to %s: %w", addr, ctx.Err())
			}
			return nil, fmt.Errorf("%w: the previous jump host could not connect to %s: %v", ErrUnreachable, addr, err)
		}
		conn = c
	}
	return d.handshake(ctx, conn, hop, label, log)
}

func (d *Dialer) handshake(ctx context.Context, conn net.Conn, hop *Config, label string, log *slog.Logger) (*ssh.Client, error) {
	timeout := hop.connectTimeout()
	wd := newWatchdog(conn, timeout)
	defer wd.stop()
	stopCtx := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopCtx()

	files, global := hop.KnownHostsFiles, hop.GlobalKnownHostsFiles
	if d.KnownHostsFiles != nil {
		files, global = d.KnownHostsFiles, nil
	}
	hk, err := newHostKeyChecker(ctx, hop, files, global, label, d.Prompter, log, d.OnStep, wd)
	if err != nil {
		conn.Close()
		return nil, err
	}
	au := newAuthenticator(ctx, hop, label, d.Prompter, log, d.OnStep, wd, d.agentSocket(hop), d.Signers)
	au.jump = hop != d.Config
	defer au.close()

	cfg := &ssh.ClientConfig{
		User:              hop.User,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algos,
		AuthCallback:      au.next,
		Config:            ssh.Config{Ciphers: hop.Ciphers},
		BannerCallback: func(msg string) error {
			log.Info("server banner", "banner", msg)
			return nil
		},
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, hop.knownHostsName(), cfg)
	fired := wd.stop()
	if err != nil {
		conn.Close()
		switch {
		case hk.err != nil:
			return nil, hk.err
		case au.err != nil:
			return nil, au.err
		case ctx.Err() != nil:
			return nil, fmt.Errorf("connecting to %s: %w", hop.Addr(), ctx.Err())
		case fired:
			return nil, fmt.Errorf("%w: %s accepted the connection but the SSH handshake did not finish within %s; check that an SSH server listens on this port", ErrHandshakeTimeout, hop.Addr(), timeout)
		case au.wasStarted() && strings.Contains(err.Error(), "ssh: disconnect"):
			// The server hung up during authentication, typically after
			// MaxAuthTries failures: still say what was tried.
			return nil, au.interrupted(err)
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("ssh handshake with %s: the server closed the connection (%v); check that an SSH server listens on this port and allows you", hop.Addr(), err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", hop.Addr(), err)
	}
	if !stopCtx() && ctx.Err() != nil { // ctx ended just as the handshake succeeded
		c.Close()
		return nil, fmt.Errorf("connecting to %s: %w", hop.Addr(), ctx.Err())
	}
	log.Debug("authenticated", "user", hop.User, "server", string(c.ServerVersion()))
	return ssh.NewClient(c, chans, reqs), nil
}

// watchdog closes a connection whose handshake stalls longer than timeout.
// It is paused while a Prompter waits for the user.
type watchdog struct {
	mu      sync.Mutex
	c       io.Closer
	timeout time.Duration
	timer   *time.Timer
	paused  int
	fired   bool
	done    bool
}

func newWatchdog(c io.Closer, timeout time.Duration) *watchdog {
	w := &watchdog{c: c, timeout: timeout}
	w.timer = time.AfterFunc(timeout, w.fire)
	return w
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.paused > 0 {
		return
	}
	w.fired = true
	w.c.Close()
}

func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused++
	w.timer.Stop()
}

// resume restarts the full timeout: the server gets the whole ConnectTimeout
// to answer after the user did.
func (w *watchdog) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused > 0 {
		w.paused--
	}
	if w.paused == 0 && !w.done && !w.fired {
		w.timer.Reset(w.timeout)
	}
}

// stop disarms the watchdog and reports whether it had fired.
func (w *watchdog) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.timer.Stop()
	return w.fired
}
