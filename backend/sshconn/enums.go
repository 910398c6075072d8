package sshconn

import "fmt"

// Step is a stage of Dialer.Dial, reported through Dialer.OnStep so a UI can
// show progress. With jump hosts the steps repeat for every hop; the detail
// string names the hop.
type Step int

const (
	StepResolving      Step = iota + 1 // looking up the host name
	StepConnecting                     // opening the TCP connection (or the direct-tcpip channel through a jump host)
	StepHostKey                        // the server sent its host key; checking it against known_hosts
	StepAuthenticating                 // trying the authentication methods
	StepReady                          // the whole chain is connected and authenticated
)

func (s Step) String() string {
	switch s {
	case StepResolving:
		return "resolving"
	case StepConnecting:
		return "connecting"
	case StepHostKey:
		return "host key"
	case StepAuthenticating:
		return "authenticating"
	case StepReady:
		return "ready"
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// StrictMode is the StrictHostKeyChecking setting.
//
// Porthole never connects to a host whose key differs from the one in
// known_hosts, whatever the setting (OpenSSH's "no" would connect anyway):
//
//   - StrictAsk (the default, "ask"): an unknown host is shown to the user
//     through Prompter.UnknownHost.
//   - StrictYes ("yes"): an unknown host is refused without asking
//     (ErrHostKeyUnknown); add its key to known_hosts first.
//   - StrictAcceptNew ("accept-new"): an unknown host's key is saved to
//     known_hosts without asking.
//   - StrictNo ("no"/"off"): treated like StrictAsk, i.e. ask but never
//     insecure: unknown hosts are asked about, changed keys are refused.
type StrictMode int

const (
	StrictAsk StrictMode = iota
	StrictYes
	StrictAcceptNew
	StrictNo
)

func (m StrictMode) String() string {
	switch m {
	case StrictAsk:
		return "ask"
	case StrictYes:
		return "yes"
	case StrictAcceptNew:
		return "accept-new"
	case StrictNo:
		return "no"
	}
	return fmt.Sprintf("StrictMode(%d)", int(m))
}

// AuthKind is an SSH user-authentication method (RFC 4252 names).
type AuthKind int

const (
	AuthPublicKey AuthKind = iota + 1
	AuthKeyboardInteractive
	AuthPassword
)

// String returns the protocol name ("publickey", "keyboard-interactive", "password").
func (k AuthKind) String() string {
	switch k {
	case AuthPublicKey:
		return "publickey"
	case AuthKeyboardInteractive:
		return "keyboard-interactive"
	case AuthPassword:
		return "password"
	}
	return fmt.Sprintf("AuthKind(%d)", int(k))
}

// DefaultAuthOrder is OpenSSH's PreferredAuthentications order for the
// methods Porthole implements.
var DefaultAuthOrder = []AuthKind{AuthPublicKey, AuthKeyboardInteractive, AuthPassword}

// PasswordKind says what a PasswordPrompt asks for.
type PasswordKind int

const (
	PasswordLogin         PasswordKind = iota + 1 // the account password (password authentication)
	PasswordKeyPassphrase                         // the passphrase of an encrypted identity file
)

func (k PasswordKind) String() string {
	switch k {
	case PasswordLogin:
		return "password"
	case PasswordKeyPassphrase:
		return "key passphrase"
	}
	return fmt.Sprintf("PasswordKind(%d)", int(k))
}

// HostKeyDecision is the user's answer about an unknown host key. The zero
// value is Reject, so a forgotten answer never trusts a key.
type HostKeyDecision int

const (
	Reject        HostKeyDecision = iota // do not connect
	AcceptOnce                           // connect this time, remember nothing
	AcceptAndSave                        // connect and append the key to known_hosts
)

func (d HostKeyDecision) String() string {
	switch d {
	case Reject:
		return "reject"
	case AcceptOnce:
		return "accept once"
	case AcceptAndSave:
		return "accept and save"
	}
	return fmt.Sprintf("HostKeyDecision(%d)", int(d))
}
