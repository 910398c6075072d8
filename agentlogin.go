package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// agentLogin runs one server login in its own `porthole agent` process
// (backend/agent): the agent holds the SSH session and the forwards' listeners,
// dies with the app, and is restarted by the Supervisor if it crashes.
//
// Secrets never go in the agent's argv or environment. The agent asks for a
// password or passphrase through the pipe (a prompt callback), and the
// per-attempt loginPrompter answers from the keyring first, then asks the
// user — exactly as an in-process login does — and saves a "remember"ed
// secret once the login succeeds.
type agentLogin struct {
	p   profiles.Profile
	env loginEnv
	sup *agent.Supervisor

	prompter switchPrompter

	mu     sync.Mutex
	remote *agent.RemoteLogin
	unsub  func()
	closed bool
}

// newAgentLoginFunc makes server logins run in agents started by sup.
func newAgentLoginFunc(sup *agent.Supervisor) newLoginFunc {
	return func(p profiles.Profile, env loginEnv) loginRunner {
		return &agentLogin{p: p, env: env, sup: sup}
	}
}

var errLoginClosed = errors.New("the server login was closed")

// loginSpec maps a profile to the agent's spec (no secrets in it).
func loginSpec(p profiles.Profile, base sshBase, connectTimeout time.Duration) agent.LoginSpec {
	s := agent.LoginSpec{
		ID:               p.ID,
		Name:             p.Name,
		HomeDir:          base.HomeDir,
		SSHConfigPath:    base.ConfigPath,
		SystemConfigPath: base.SystemConfigPath,
		KnownHostsFiles:  base.KnownHostsFiles,
		AgentSocket:      base.AgentSocket,
		Session: agent.SessionSettings{
			IdleTimeout:       p.Options.IdleTimeout.D(),
			PingIdleThreshold: p.Options.PingThreshold.D(),
			ConnectTimeout:    connectTimeout,
			PoolSize:          p.Options.PoolSize,
		},
	}
	if s.Session.IdleTimeout <= 0 {
		s.Session.IdleTimeout = -1 // stay connected until the user disconnects
	}
	if p.SSHConfigAlias != "" {
		s.SSHConfigAlias = p.SSHConfigAlias
	} else {
		s.Host, s.Port, s.User = p.Host, p.Port, p.User
		if p.KeyPath != "" {
			s.IdentityFiles = []string{p.KeyPath}
		}
		s.ProxyJump = strings.Join(p.JumpHosts, ",")
		for _, m := range p.AuthOrder() {
			switch m {
			case profiles.AuthAgent:
				s.AuthMethods = append(s.AuthMethods, agent.AuthAgent)
			case profiles.AuthKey:
				s.AuthMethods = append(s.AuthMethods, agent.AuthKey)
			case profiles.AuthPassword:
				s.AuthMethods = append(s.AuthMethods, agent.AuthPassword)
			case profiles.AuthKeyboardInteractive:
				s.AuthMethods = append(s.AuthMethods, agent.AuthKeyboardInteractive)
			}
		}
	}
	if !usesAgent(p) {
		s.AgentSocket = "none"
	}
	return s
}

// start makes sure the agent process runs.
func (l *agentLogin) start(ctx context.Context) (*agent.RemoteLogin, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errLoginClosed
	}
	if l.remote != nil {
		return l.remote, nil
	}
	r, err := l.sup.Start(ctx, loginSpec(l.p, l.env.ssh, l.env.timeouts.connect), agent.Secrets{}, &l.prompter)
	if err != nil {
		return nil, err
	}
	l.remote = r
	l.unsub = r.Subscribe(l.onEvent)
	return r, nil
}

func (l *agentLogin) onEvent(e agent.Event) {
	switch {
	case e.State != nil:
		l.env.onEvent(*e.State)
	case e.Step != nil:
		if l.env.onStep != nil {
			l.env.onStep(e.Step.Step, e.Step.Detail)
		}
	case e.Log != nil:
		attrs := make([]any, 0, 2*len(e.Log.Attrs))
		for _, a := range e.Log.Attrs {
			attrs = append(attrs, a.Key, a.Value)
		}
		l.env.log.Log(context.Background(), e.Log.Level, e.Log.Message, attrs...)
	case e.Agent != nil && e.Agent.Kind == agent.AgentFailed:
		l.env.log.Error("the login's background process was stopped: " + e.Agent.Message)
	}
}

// Connect starts the agent if needed and connects, asking the user through
// this attempt's prompter.
func (l *agentLogin) Connect(ctx context.Context) error {
	lp := newLoginPrompter(l.p, l.env)
	l.prompter.set(lp)
	r, err := l.start(ctx)
	if err != nil {
		return err
	}
	if err := r.Connect(ctx); err != nil {
		return err
	}
	lp.commit()
	// The agent keeps the secrets that worked, in its memory only, so that
	// a reconnect after a network change or sleep needs no question. They
	// travel over the pipe, never argv or environment (see DESIGN: Sandbox).
	if pw, pp := lp.usedSecrets(); pw != "" || pp != "" {
		if err := r.SetSecrets(ctx, agent.Secrets{Password: pw, Passphrase: pp}); err != nil {
			l.env.log.Warn("could not hand the login's secrets to its background process; a reconnect may ask again", "err", err)
		}
	}
	return nil
}

func (l *agentLogin) State() forwarder.StateInfo {
	l.mu.Lock()
	r := l.remote
	l.mu.Unlock()
	if r == nil {
		return forwarder.StateInfo{State: forwarder.StateIdle}
	}
	return r.State()
}

// Login is the running login, for forwards and discovery (nil before Connect).
func (l *agentLogin) Login() agent.Login {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.remote == nil {
		return nil
	}
	return l.remote
}

func (l *agentLogin) Close() error {
	l.mu.Lock()
	r, unsub := l.remote, l.unsub
	l.remote, l.unsub, l.closed = nil, nil, true
	l.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	if r == nil {
		return nil
	}
	return r.Close()
}

// switchPrompter forwards the agent's questions to the current connection
// attempt's loginPrompter.
type switchPrompter struct {
	mu  sync.Mutex
	cur *loginPrompter
}

func (s *switchPrompter) set(lp *loginPrompter) {
	s.mu.Lock()
	s.cur = lp
	s.mu.Unlock()
}

func (s *switchPrompter) get() (*loginPrompter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil, errPromptCanceled
	}
	return s.cur, nil
}

func (s *switchPrompter) Password(ctx context.Context, req sshconn.PasswordPrompt) (string, error) {
	lp, err := s.get()
	if err != nil {
		return "", err
	}
	return lp.Password(ctx, req)
}

func (s *switchPrompter) KeyboardInteractive(ctx context.Context, req sshconn.KIPrompt) ([]string, error) {
	lp, err := s.get()
	if err != nil {
		return nil, err
	}
	return lp.KeyboardInteractive(ctx, req)
}

func (s *switchPrompter) UnknownHost(ctx context.Context, req sshconn.HostKeyPrompt) (sshconn.HostKeyDecision, error) {
	lp, err := s.get()
	if err != nil {
		return sshconn.Reject, err
	}
	return lp.UnknownHost(ctx, req)
}

func init() {
	// The prompt broker's errors come back from the agent (its Prompter is
	// this process's broker); keep errors.Is working across the pipe.
	agent.RegisterError("porthole.prompt-canceled", errPromptCanceled)
	agent.RegisterError("porthole.prompt-timeout", errPromptTimeout)
}
