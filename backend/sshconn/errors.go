package sshconn

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; check them with errors.Is.
var (
	// ErrConfig: the ssh_config file, an option or a destination is invalid.
	ErrConfig = errors.New("invalid ssh configuration")
	// ErrUnsupported: the configuration asks for something Porthole does not do (e.g. ProxyCommand).
	ErrUnsupported = errors.New("not supported by Porthole")
	// ErrUnreachable: no TCP connection (or jump-host channel) to the host.
	ErrUnreachable = errors.New("host unreachable")
	// ErrHandshakeTimeout: TCP connected but the SSH handshake did not finish within ConnectTimeout.
	ErrHandshakeTimeout = errors.New("ssh handshake timed out")
	// ErrAuthFailed: every authentication method failed. The error is an *AuthError.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrBadKey: an identity file is not a usable private key.
	ErrBadKey = errors.New("not a usable private key")
	// ErrWrongPassphrase: the passphrase for an encrypted identity file was wrong.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrHostKeyMismatch: the server's host key differs from known_hosts. The error is a *HostKeyMismatchError.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrHostKeyUnknown: the host is not in known_hosts and could not be asked about (StrictHostKeyChecking yes, or no Prompter).
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyRejected: the user rejected an unknown host key.
	ErrHostKeyRejected = errors.New("host key rejected")
	// ErrHostKeyRevoked: known_hosts marks the server's key @revoked.
	ErrHostKeyRevoked = errors.New("host key revoked")
	// ErrPingTimeout: no reply to a keepalive within the timeout; the client has been closed.
	ErrPingTimeout = errors.New("ping timed out")
	// ErrConnectionLost: the connection failed (e.g. during a ping); the client has been closed.
	ErrConnectionLost = errors.New("connection lost")
)

// KnownKey is a known_hosts entry for a host.
type KnownKey struct {
	Type        string // key type, e.g. "ssh-ed25519"
	Fingerprint string // "SHA256:…"
	File        string // known_hosts file
	Line        int    // 1-based line number in File
}

// HostKeyMismatchError reports a server whose host key differs from the one
// recorded in known_hosts: a possible man-in-the-middle attack, or a
// reinstalled server. Porthole never connects in that case.
type HostKeyMismatchError struct {
	Host        string     // host as known_hosts records it: "example.com" or "[example.com]:2222"
	KeyType     string     // type of the key the server sent
	Fingerprint string     // SHA256 fingerprint of the key the server sent
	Known       []KnownKey // the recorded key(s) of the same type, with file:line to remove
}

func (e *HostKeyMismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: REMOTE HOST IDENTIFICATION HAS CHANGED for %s! ", ErrHostKeyMismatch, e.Host)
	fmt.Fprintf(&b, "The server sent the %s key %s, but known_hosts has ", e.KeyType, e.Fingerprint)
	for i, k := range e.Known {
		if i > 0 {
			b.WriteString(" and ")
		}
		fmt.Fprintf(&b, "%s (%s:%d)", k.Fingerprint, k.File, k.Line)
	}
	b.WriteString(". Someone could be eavesdropping on you (man-in-the-middle attack), or the host key has just been changed. ")
	b.WriteString("If you know the key was changed on purpose, remove the offending line")
	if len(e.Known) > 1 {
		b.WriteString("s")
	}
	b.WriteString(": ")
	for i, k := range e.Known {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s:%d", k.File, k.Line)
	}
	if len(e.Known) > 0 {
		fmt.Fprintf(&b, " (ssh-keygen -R '%s' -f '%s')", e.Host, e.Known[0].File)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrHostKeyMismatch) true.
func (e *HostKeyMismatchError) Is(target error) bool { return target == ErrHostKeyMismatch }

// AuthError reports that every authentication method failed.
type AuthError struct {
	User    string   // remote user
	Addr    string   // host:port
	Tried   []string // what was tried, in order: "publickey (agent, ~/.ssh/id_ed25519)", "keyboard-interactive", "password"
	Allowed []string // methods the server said it accepts
	Causes  []error  // why some keys could not be used (ErrBadKey, ErrWrongPassphrase, …)
}

func (e *AuthError) Error() string {
	var b strings.Builder
	tried := "nothing usable"
	if len(e.Tried) > 0 {
		tried = strings.Join(e.Tried, ", ")
	}
	fmt.Fprintf(&b, "%s for %s@%s (tried: %s)", ErrAuthFailed, e.User, e.Addr, tried)
	for _, c := range e.Causes {
		fmt.Fprintf(&b, "; %v", c)
	}
	if len(e.Allowed) > 0 {
		fmt.Fprintf(&b, "; the server accepts: %s", strings.Join(e.Allowed, ", "))
	}
	return b.String()
}

// Unwrap exposes ErrAuthFailed and the causes to errors.Is/As.
func (e *AuthError) Unwrap() []error {
	return append([]error{ErrAuthFailed}, e.Causes...)
}
