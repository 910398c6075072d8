package sshconn

import (
	"context"
	"errors"
	"strings"
)

// Prompter asks the user for what a connection needs. Every method may block
// until the user answers; it must return when ctx is done. An error aborts
// the whole Dial (use it for "cancel").
type Prompter interface {
	// Password asks for a login password or an identity file's passphrase
	// (req.Kind says which).
	Password(ctx context.Context, req PasswordPrompt) (string, error)
	// KeyboardInteractive asks the server's questions; it returns one answer
	// per question, in order.
	KeyboardInteractive(ctx context.Context, req KIPrompt) ([]string, error)
	// UnknownHost asks whether to trust a host key not found in known_hosts.
	UnknownHost(ctx context.Context, req HostKeyPrompt) (HostKeyDecision, error)
}

// PasswordPrompt describes a password or passphrase request.
type PasswordPrompt struct {
	Kind    PasswordKind
	User    string // remote user
	Host    string // host:port
	KeyPath string // the identity file, for PasswordKeyPassphrase
	Attempt int    // 1 for the first try, 2 after a wrong answer, …
	Hop     string // which connection asks: "jump host 1 of 2 (bastion:22)" or the destination
	// Jump: a jump host asks, not the destination. A secret saved for the
	// destination must never answer a jump host (it would hand the
	// destination's password to another server).
	Jump bool
}

// HopID is the identity of the hop that asks, "user@host:port": what a
// saved secret of that hop is keyed by.
func (r PasswordPrompt) HopID() string { return HopID(r.User, r.Host) }

// KIQuestion is one keyboard-interactive question.
type KIQuestion struct {
	Prompt string
	Echo   bool // false: the answer is secret and must not be shown while typed
}

// KIPrompt is one keyboard-interactive round from the server.
type KIPrompt struct {
	User        string
	Host        string // host:port
	Name        string // from the server, often empty
	Instruction string // from the server, often empty
	Questions   []KIQuestion
	Hop         string
	Jump        bool // a jump host asks, not the destination (see PasswordPrompt.Jump)
}

// HopID is the identity of the hop that asks, "user@host:port".
func (r KIPrompt) HopID() string { return HopID(r.User, r.Host) }

// HopID is "user@host:port", the identity of one hop of a connection
// (hostPort as Config.Addr writes it).
func HopID(user, hostPort string) string { return user + "@" + hostPort }

// HostKeyPrompt describes a host key that known_hosts does not know.
type HostKeyPrompt struct {
	Host           string // as known_hosts records it: "example.com" or "[example.com]:2222"
	Address        string // the address connected to (host:port)
	KeyType        string // e.g. "ssh-ed25519"
	Fingerprint    string // "SHA256:…"
	KnownHostsFile string // where AcceptAndSave writes ("" = nowhere to save)
	// OtherKnownTypes lists key types known_hosts already holds for this
	// host (the server offered a key of a type not recorded yet).
	OtherKnownTypes []string
	Hop             string
}

// Errors a Prompter returns. They live here, with the interface, so that
// every side (the app's prompt broker, an agent that relays the questions,
// `porthole forward`'s terminal) means the same thing by them, and they keep
// their identity across the agent's pipe.
var (
	// ErrPromptCanceled: the user canceled the question (closed the dialog,
	// disconnected) or nobody is there to ask any more.
	ErrPromptCanceled = errors.New("canceled")
	// ErrPromptTimeout: nobody answered the question in time.
	ErrPromptTimeout = errors.New("prompt timed out")
)

// IsPasswordRound tells a keyboard-interactive round that only asks for the
// account password (PAM's "Password: ") from real challenges (OTP, 2FA):
// such a round is answered like a password prompt, so that a saved password
// also works for servers that log in through PAM.
func (req KIPrompt) IsPasswordRound() bool {
	if len(req.Questions) != 1 || req.Questions[0].Echo {
		return false
	}
	q := strings.ToLower(req.Questions[0].Prompt)
	if !strings.Contains(q, "password") {
		return false
	}
	for _, not := range []string{"new", "again", "retype", "code", "token", "otp", "one-time", "verification", "pin"} {
		if strings.Contains(q, not) {
			return false
		}
	}
	return true
}
