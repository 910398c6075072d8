// Package prompts hands the questions of SSH logins to the person: the
// Broker publishes each question (password, passphrase, one-time code,
// unknown host key) on the event bus and waits for AnswerPrompt or
// CancelPrompt; the LoginPrompter answers from the OS keyring first and
// asks through the Broker otherwise. Prompts never hold a secret.
package prompts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// TopicPrompts carries the open prompts ([]Prompt); it is in every snapshot,
// so a reloaded page still sees a question that waits for an answer.
var TopicPrompts = events.NewTopic[[]Prompt]("prompts")

// DefaultPromptTimeout is how long a prompt waits for an answer.
const DefaultPromptTimeout = 2 * time.Minute

// PromptKind is what a prompt asks for.
type PromptKind int

const (
	PromptPassword            PromptKind = iota + 1 // the login password
	PromptPassphrase                                // the passphrase of an encrypted key file
	PromptKeyboardInteractive                       // the server's own questions (OTP, 2FA…)
	PromptHostKey                                   // trust an unknown host key?
)

var promptKindNames = [...]string{
	PromptPassword:            "password",
	PromptPassphrase:          "passphrase",
	PromptKeyboardInteractive: "keyboard-interactive",
	PromptHostKey:             "host-key",
}

func (k PromptKind) String() string {
	if k > 0 && int(k) < len(promptKindNames) {
		return promptKindNames[k]
	}
	return fmt.Sprintf("PromptKind(%d)", int(k))
}

// MarshalText writes the name.
func (k PromptKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (k *PromptKind) UnmarshalText(b []byte) error {
	if i := slices.Index(promptKindNames[:], string(b)); i > 0 {
		*k = PromptKind(i)
		return nil
	}
	return fmt.Errorf("unknown prompt kind %q (password, passphrase, keyboard-interactive or host-key)", b)
}

// HostKeyChoice is the answer to an unknown host key.
type HostKeyChoice int

const (
	HostKeyReject       HostKeyChoice = iota + 1 // do not connect
	HostKeyAcceptOnce                            // connect this time, remember nothing
	HostKeyAcceptAlways                          // connect and add the key to known_hosts
)

var hostKeyChoiceNames = [...]string{
	HostKeyReject:       "reject",
	HostKeyAcceptOnce:   "accept-once",
	HostKeyAcceptAlways: "accept-always",
}

func (c HostKeyChoice) String() string {
	if c > 0 && int(c) < len(hostKeyChoiceNames) {
		return hostKeyChoiceNames[c]
	}
	return fmt.Sprintf("HostKeyChoice(%d)", int(c))
}

// MarshalText writes the name; the zero value (no choice) is "".
func (c HostKeyChoice) MarshalText() ([]byte, error) {
	if c == 0 {
		return []byte{}, nil
	}
	return []byte(c.String()), nil
}

// UnmarshalText reads "reject", "accept-once" or "accept-always".
func (c *HostKeyChoice) UnmarshalText(b []byte) error {
	v, err := parseHostKeyChoice(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

func parseHostKeyChoice(s string) (HostKeyChoice, error) {
	for i, n := range hostKeyChoiceNames {
		if n != "" && n == s {
			return HostKeyChoice(i), nil
		}
	}
	return 0, fmt.Errorf("unknown host key choice %q: use \"accept-once\", \"accept-always\" or \"reject\"", s)
}

// PromptQuestion is one keyboard-interactive question.
type PromptQuestion struct {
	Prompt string `json:"prompt"`
	// Echo false: the answer is secret (type=password); true: show it as typed.
	Echo bool `json:"echo"`
}

// HostKeyInfo describes a host key that known_hosts does not know.
type HostKeyInfo struct {
	Host        string `json:"host"`    // as known_hosts records it: "example.com" or "[example.com]:2222"
	Address     string `json:"address"` // host:port connected to
	KeyType     string `json:"keyType"` // e.g. "ssh-ed25519"
	Fingerprint string `json:"fingerprint"`
	// KnownHostsFile is where "accept-always" adds the key ("" = nowhere).
	KnownHostsFile  string   `json:"knownHostsFile,omitempty"`
	OtherKnownTypes []string `json:"otherKnownTypes,omitempty"`
}

// Prompt is a question a connection waits on. It never holds a secret.
type Prompt struct {
	ID         string     `json:"id"`
	ServerID   string     `json:"serverId"`
	ServerName string     `json:"serverName"`
	Kind       PromptKind `json:"kind"`
	Title      string     `json:"title"`             // "Password for alice@gpu.lab:22"
	Message    string     `json:"message,omitempty"` // more words, e.g. the server's instruction
	// Notice says why the question comes again, e.g. "The password saved
	// in the keychain was not accepted."
	Notice  string `json:"notice,omitempty"`
	User    string `json:"user,omitempty"`
	Host    string `json:"host,omitempty"` // host:port
	Hop     string `json:"hop,omitempty"`  // which connection of a jump chain asks
	KeyPath string `json:"keyPath,omitempty"`
	Attempt int    `json:"attempt,omitempty"`

	// Keyboard-interactive.
	Name        string           `json:"name,omitempty"`
	Instruction string           `json:"instruction,omitempty"`
	Questions   []PromptQuestion `json:"questions,omitempty"`

	// Host key.
	HostKey *HostKeyInfo `json:"hostKey,omitempty"`

	// CanRemember: the answer may be kept in the OS keyring (password and
	// passphrase prompts, when the keyring works). Remember is the initial
	// state of the checkbox. KeyringMessage says why remembering is off.
	CanRemember    bool   `json:"canRemember"`
	Remember       bool   `json:"remember"`
	KeyringMessage string `json:"keyringMessage,omitempty"`

	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// PromptAnswer is the user's answer to a Prompt (App.AnswerPrompt).
type PromptAnswer struct {
	// Secret answers a password or passphrase prompt.
	Secret string `json:"secret,omitempty"`
	// Answers answer a keyboard-interactive prompt, one per question.
	Answers []string `json:"answers,omitempty"`
	// Remember keeps the secret in the OS keyring once the login succeeds.
	Remember bool `json:"remember,omitempty"`
	// HostKey answers a host-key prompt.
	HostKey HostKeyChoice `json:"hostKey,omitempty"`
}

// Errors of the prompt broker.
var (
	// ErrPromptGone: AnswerPrompt/CancelPrompt for a prompt that is no longer open.
	// (A canceled or unanswered question ends with sshconn.ErrPromptCanceled
	// or sshconn.ErrPromptTimeout, which keep their identity across the
	// agent's pipe.)
	ErrPromptGone = errors.New("the question is no longer open")
)

// TimeoutError says which question went unanswered and for how long; it
// matches sshconn.ErrPromptTimeout.
type TimeoutError struct {
	Kind  PromptKind
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("nobody answered the %s question within %s", e.Kind, FmtWait(e.After))
}

// Is matches sshconn.ErrPromptTimeout.
func (e *TimeoutError) Is(target error) bool { return target == sshconn.ErrPromptTimeout }

// FmtWait writes a wait as people say it: "2 minutes", "90 seconds", "500ms".
func FmtWait(d time.Duration) string {
	switch {
	case d >= time.Minute && d%time.Minute == 0:
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return d.String()
}

// Broker hands the questions of connections to the UI: each question
// is published in the `prompts` event with an ID, and the connection waits
// until AnswerPrompt or CancelPrompt names that ID, its context ends, or the
// timeout passes.
type Broker struct {
	timeout time.Duration
	bus     *events.Bus
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	pending []*pendingPrompt // in the order asked

	pubMu sync.Mutex // orders publications so the last one is the current list
}

type pendingPrompt struct {
	p      Prompt
	answer chan PromptAnswer // capacity 1: answer never blocks
	cancel chan struct{}     // closed by cancel
}

// NewBroker returns a broker whose questions expire after timeout
// (DefaultPromptTimeout when ≤ 0) and are published on bus (nil: nowhere).
func NewBroker(timeout time.Duration, bus *events.Bus, log *slog.Logger) *Broker {
	if timeout <= 0 {
		timeout = DefaultPromptTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Broker{timeout: timeout, bus: bus, log: log, now: time.Now}
}

// Ask publishes p and waits for its answer. The error is sshconn.ErrPromptCanceled,
// a *TimeoutError (errors.Is sshconn.ErrPromptTimeout), or ctx's error.
func (b *Broker) Ask(ctx context.Context, p Prompt) (PromptAnswer, error) {
	if err := ctx.Err(); err != nil {
		return PromptAnswer{}, err
	}
	p.ID = strings.ToLower(rand.Text())
	p.CreatedAt = b.now().UTC()
	p.ExpiresAt = p.CreatedAt.Add(b.timeout)
	pp := &pendingPrompt{p: p, answer: make(chan PromptAnswer, 1), cancel: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, pp)
	b.mu.Unlock()
	b.log.Info("waiting for an answer", "prompt", p.ID, "kind", p.Kind, "server", p.ServerID)
	b.PublishList()
	defer func() {
		if b.remove(pp) {
			b.PublishList()
		}
	}()

	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	select {
	case a := <-pp.answer:
		return a, nil
	case <-pp.cancel:
		return PromptAnswer{}, sshconn.ErrPromptCanceled
	case <-ctx.Done():
		return PromptAnswer{}, ctx.Err()
	case <-timer.C:
		b.log.Info("question timed out", "prompt", p.ID, "kind", p.Kind, "after", b.timeout)
		return PromptAnswer{}, &TimeoutError{Kind: p.Kind, After: b.timeout}
	}
}

// remove drops pp from the pending list; false if it was gone already.
func (b *Broker) remove(pp *pendingPrompt) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.pending, pp)
	if i < 0 {
		return false
	}
	b.pending = slices.Delete(b.pending, i, i+1)
	return true
}

func (b *Broker) find(id string) *pendingPrompt {
	for _, pp := range b.pending {
		if pp.p.ID == id {
			return pp
		}
	}
	return nil
}

func goneError(id string) error {
	return apperr.Mark(fmt.Errorf("%w (id %q): it was answered, canceled, or timed out; connect again if needed", ErrPromptGone, id), apperr.ErrNotFound)
}

// Answer delivers a to the prompt with the given ID after checking that it
// fits the question (bad input is a 400; an unknown ID a 404).
func (b *Broker) Answer(id string, a PromptAnswer) error {
	b.mu.Lock()
	pp := b.find(id)
	if pp == nil {
		b.mu.Unlock()
		return goneError(id)
	}
	if err := checkAnswer(pp.p, a); err != nil {
		b.mu.Unlock()
		return err
	}
	b.pending = slices.DeleteFunc(b.pending, func(x *pendingPrompt) bool { return x == pp })
	pp.answer <- a
	b.mu.Unlock()
	b.log.Info("answered", "prompt", id, "kind", pp.p.Kind)
	b.PublishList()
	return nil
}

func checkAnswer(p Prompt, a PromptAnswer) error {
	bad := func(format string, args ...any) error {
		return apperr.BadInput(format, args...)
	}
	switch p.Kind {
	case PromptPassword, PromptPassphrase:
		if len(a.Answers) > 0 || a.HostKey != 0 {
			return bad("a %s question is answered with \"secret\" only", p.Kind)
		}
		if len(a.Secret) > 64<<10 {
			return bad("the %s is longer than 64 KiB", p.Kind)
		}
	case PromptKeyboardInteractive:
		if a.Secret != "" || a.HostKey != 0 {
			return bad("a keyboard-interactive question is answered with \"answers\" only")
		}
		if len(a.Answers) != len(p.Questions) {
			return bad("the server asked %d question(s); got %d answer(s)", len(p.Questions), len(a.Answers))
		}
	case PromptHostKey:
		if a.Secret != "" || len(a.Answers) > 0 || a.Remember {
			return bad("a host key question is answered with \"hostKey\" only")
		}
		if a.HostKey == 0 {
			return bad("choose \"accept-once\", \"accept-always\" or \"reject\" for the host key")
		}
	}
	return nil
}

// Cancel ends the prompt with the given ID: its connection gives up.
func (b *Broker) Cancel(id string) error {
	b.mu.Lock()
	pp := b.find(id)
	if pp == nil {
		b.mu.Unlock()
		return goneError(id)
	}
	b.pending = slices.DeleteFunc(b.pending, func(x *pendingPrompt) bool { return x == pp })
	close(pp.cancel)
	b.mu.Unlock()
	b.log.Info("question canceled", "prompt", id, "kind", pp.p.Kind)
	b.PublishList()
	return nil
}

// CancelServer cancels every open prompt of one server.
func (b *Broker) CancelServer(serverID string) {
	b.mu.Lock()
	var n int
	b.pending = slices.DeleteFunc(b.pending, func(pp *pendingPrompt) bool {
		if pp.p.ServerID != serverID {
			return false
		}
		close(pp.cancel)
		n++
		return true
	})
	b.mu.Unlock()
	if n > 0 {
		b.PublishList()
	}
}

// List returns the open prompts, oldest first (never nil).
func (b *Broker) List() []Prompt {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Prompt, 0, len(b.pending))
	for _, pp := range b.pending {
		p := pp.p
		p.Questions = slices.Clone(p.Questions)
		out = append(out, p)
	}
	return out
}

func (b *Broker) PublishList() {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	events.Publish(b.bus, TopicPrompts, b.List())
}
