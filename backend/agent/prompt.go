package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/porthole-app/porthole/backend/sshconn"
)

// PromptInfo is what a Prompter may want to know beyond the sshconn
// request; get it with PromptInfoFrom(ctx).
type PromptInfo struct {
	// Login is the LoginSpec.ID of the login that asks.
	Login string `json:"login,omitempty"`
	// SavedRejected: the secret from Secrets was tried first and the
	// server did not accept it (show "the saved password was not accepted").
	SavedRejected bool `json:"savedRejected,omitempty"`
}

type promptInfoKey struct{}

// WithPromptInfo returns ctx carrying pi.
func WithPromptInfo(ctx context.Context, pi PromptInfo) context.Context {
	return context.WithValue(ctx, promptInfoKey{}, pi)
}

// PromptInfoFrom returns the PromptInfo a Login put into a Prompter's ctx.
func PromptInfoFrom(ctx context.Context) (PromptInfo, bool) {
	pi, ok := ctx.Value(promptInfoKey{}).(PromptInfo)
	return pi, ok
}

// dialPrompter is the Prompter of one connection attempt: it answers a
// password or passphrase question with the saved secret once, and asks next
// (the user) after that. A password is answered only to the hop it belongs
// to: Secrets.Password to the destination, Secrets.JumpPasswords[hop] to
// that jump host.
type dialPrompter struct {
	login   string
	secrets Secrets
	next    sshconn.Prompter // nil: nobody to ask

	mu         sync.Mutex
	tried      map[string]bool // secret slots already answered: "pp", "pw", "pw@<hop>"
	askedUser  bool            // the user was asked (a final failure is theirs to see)
	promptErrs error           // the user's Prompter failed (canceled, timed out)
}

func newDialPrompter(login string, s Secrets, next sshconn.Prompter) *dialPrompter {
	return &dialPrompter{login: login, secrets: s, next: next, tried: map[string]bool{}}
}

var _ sshconn.Prompter = (*dialPrompter)(nil)

// take returns the saved secret of kind for hop (an sshconn.HopID; jump
// tells a jump host from the destination) the first time it is asked for.
// Later, rejected reports that a saved secret was tried (and, since the
// server asks again, not accepted).
func (p *dialPrompter) take(kind sshconn.PasswordKind, hop string, jump bool) (value string, ok, rejected bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var secret, slot string
	switch {
	case kind == sshconn.PasswordKeyPassphrase:
		// A passphrase unlocks a local key file; it never leaves this process.
		secret, slot = p.secrets.Passphrase, "pp"
	case jump:
		secret, slot = p.secrets.JumpPasswords[hop], "pw@"+hop
	default:
		secret, slot = p.secrets.Password, "pw"
	}
	if secret == "" {
		return "", false, false
	}
	if !p.tried[slot] {
		p.tried[slot] = true
		return secret, true, false
	}
	return "", false, true
}

func (p *dialPrompter) ask(ctx context.Context, tried bool) (context.Context, error) {
	if p.next == nil {
		return nil, ErrNoPrompter
	}
	p.mu.Lock()
	p.askedUser = true
	p.mu.Unlock()
	return WithPromptInfo(ctx, PromptInfo{Login: p.login, SavedRejected: tried}), nil
}

func (p *dialPrompter) failed(err error) error {
	p.mu.Lock()
	if p.promptErrs == nil {
		p.promptErrs = err
	}
	p.mu.Unlock()
	return err
}

// userFailed reports whether the user's Prompter returned an error.
func (p *dialPrompter) userFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.promptErrs != nil
}

func (p *dialPrompter) Password(ctx context.Context, req sshconn.PasswordPrompt) (string, error) {
	v, ok, rejected := p.take(req.Kind, req.HopID(), req.Jump)
	if ok {
		return v, nil
	}
	actx, err := p.ask(ctx, rejected)
	if err != nil {
		return "", p.failed(fmt.Errorf("%w: the server wants the %s", err, req.Kind))
	}
	v, err = p.next.Password(actx, req)
	if err != nil {
		return "", p.failed(err)
	}
	return v, nil
}

func (p *dialPrompter) KeyboardInteractive(ctx context.Context, req sshconn.KIPrompt) ([]string, error) {
	rejected := false
	if req.IsPasswordRound() {
		v, ok, r := p.take(sshconn.PasswordLogin, req.HopID(), req.Jump)
		if ok {
			return []string{v}, nil
		}
		rejected = r
	}
	actx, err := p.ask(ctx, rejected)
	if err != nil {
		return nil, p.failed(fmt.Errorf("%w: the server asks %d question(s)", err, len(req.Questions)))
	}
	a, err := p.next.KeyboardInteractive(actx, req)
	if err != nil {
		return nil, p.failed(err)
	}
	return a, nil
}

func (p *dialPrompter) UnknownHost(ctx context.Context, req sshconn.HostKeyPrompt) (sshconn.HostKeyDecision, error) {
	if p.next == nil {
		return sshconn.Reject, p.failed(fmt.Errorf("%w: %s (%s key %s) is not in known_hosts and there is no one to ask; add its key to known_hosts first",
			sshconn.ErrHostKeyUnknown, req.Host, req.KeyType, req.Fingerprint))
	}
	actx, _ := p.ask(ctx, false)
	d, err := p.next.UnknownHost(actx, req)
	if err != nil {
		return sshconn.Reject, p.failed(err)
	}
	return d, nil
}
