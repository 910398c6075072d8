package servers

import (
	"context"
	"errors"
	"sync"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// runner is one server's login as the Manager drives it. The login itself
// is an agent.Login — in the app a sandboxed `porthole agent` process (it
// holds the SSH session and the forwards' listeners, dies with the app, and
// is restarted by the Supervisor if it crashes), in tests an in-process
// agent.LocalLogin — started on the first Connect.
//
// Secrets never go in the agent's argv or environment. The login asks for
// a password or passphrase through its Prompter; each Connect's
// prompts.LoginPrompter answers from the keyring first, then asks the user,
// and saves a "remember"ed secret once the login succeeds.
type runner struct {
	p     profiles.Profile
	env   runnerEnv
	start StartLoginFunc

	prompter switchPrompter

	mu     sync.Mutex
	l      agent.Login
	fwds   *forwardSet // the login's forwards, by owner
	unsub  func()
	closed bool
}

func newRunner(p profiles.Profile, env runnerEnv, start StartLoginFunc) *runner {
	return &runner{p: p, env: env, start: start}
}

var errLoginClosed = errors.New("the server login was closed")

// ensure makes sure the login runs.
func (r *runner) ensure(ctx context.Context) (agent.Login, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errLoginClosed
	}
	if r.l != nil {
		return r.l, nil
	}
	l, err := r.start(ctx, LoginSpec(r.p, r.env.ssh, r.env.connectTimeout), agent.Secrets{}, &r.prompter)
	if err != nil {
		return nil, err
	}
	r.l = l
	r.fwds = newForwardSet(l)
	r.unsub = l.Subscribe(r.onEvent)
	return l, nil
}

func (r *runner) onEvent(e agent.Event) {
	switch {
	case e.State != nil:
		r.env.onEvent(*e.State)
	case e.Stats != nil:
		if r.env.onStats != nil {
			r.env.onStats(*e.Stats)
		}
	case e.Step != nil:
		if r.env.onStep != nil {
			r.env.onStep(e.Step.Step, e.Step.Detail)
		}
	case e.Log != nil:
		attrs := make([]any, 0, 2*len(e.Log.Attrs))
		for _, a := range e.Log.Attrs {
			attrs = append(attrs, a.Key, a.Value)
		}
		r.env.log.Log(context.Background(), e.Log.Level, e.Log.Message, attrs...)
	case e.Agent != nil:
		if e.Agent.Kind == agent.AgentFailed {
			r.env.log.Error("the login's background process was stopped: " + e.Agent.Message)
		}
		if r.env.onAgent != nil {
			r.env.onAgent(*e.Agent)
		}
	}
}

// Connect starts the login if needed and connects, asking the user through
// this attempt's prompter.
func (r *runner) Connect(ctx context.Context) error {
	lp := prompts.NewLoginPrompter(r.p, r.env.prompter)
	r.prompter.set(lp)
	l, err := r.ensure(ctx)
	if err != nil {
		return err
	}
	if err := l.Connect(ctx); err != nil {
		if ask := lp.AskError(); ask != nil && (errors.Is(err, sshconn.ErrPromptTimeout) || errors.Is(err, sshconn.ErrPromptCanceled)) {
			return &askFailed{err: err, ask: ask}
		}
		return err
	}
	lp.Commit()
	// The login keeps the secrets that worked, in its memory only, so that
	// a reconnect after a network change or sleep needs no question. They
	// travel over the agent's pipe, never argv or environment.
	if pw, pp, jumps := lp.UsedSecrets(); pw != "" || pp != "" || len(jumps) > 0 {
		if err := l.SetSecrets(ctx, agent.Secrets{Password: pw, Passphrase: pp, JumpPasswords: jumps}); err != nil {
			r.env.log.Warn("could not hand the login's secrets to its background process; a reconnect may ask again", "err", err)
		}
	}
	return nil
}

// State is the session's last known state.
func (r *runner) State() forwarder.StateInfo {
	if l := r.login(OwnerApps); l != nil {
		return l.State()
	}
	return forwarder.StateInfo{State: forwarder.StateIdle}
}

// login is owner's view of the running login, for forwards and discovery
// (nil before Connect, and for a nil runner).
func (r *runner) login(owner string) agent.Login {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.l == nil {
		return nil
	}
	return r.fwds.view(owner)
}

// Close ends the login and everything it started.
func (r *runner) Close() error {
	r.mu.Lock()
	l, unsub := r.l, r.unsub
	r.l, r.fwds, r.unsub, r.closed = nil, nil, nil, true
	r.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	if l == nil {
		return nil
	}
	return l.Close()
}

// switchPrompter forwards the login's questions to the current connection
// attempt's LoginPrompter.
type switchPrompter struct {
	mu  sync.Mutex
	cur *prompts.LoginPrompter
}

func (s *switchPrompter) set(lp *prompts.LoginPrompter) {
	s.mu.Lock()
	s.cur = lp
	s.mu.Unlock()
}

func (s *switchPrompter) get() (*prompts.LoginPrompter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil, sshconn.ErrPromptCanceled
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

// askFailed is a Connect that failed because a question went unanswered:
// the login's error (its words), with the prompter's own error (which
// question, how long) in the chain too.
type askFailed struct{ err, ask error }

func (e *askFailed) Error() string   { return e.err.Error() }
func (e *askFailed) Unwrap() []error { return []error{e.err, e.ask} }

// prewarm asks the running login for a speculative, prompt-free connect
// (agent.Prewarmer); it does nothing before Connect started the login.
func (r *runner) prewarm(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	l := r.l
	r.mu.Unlock()
	if w, ok := l.(agent.Prewarmer); ok {
		return w.Prewarm(ctx)
	}
	return nil
}
