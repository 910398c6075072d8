package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// Errors of a RemoteLogin's agent process.
var (
	// ErrCallTimeout: the agent did not answer a call within its deadline
	// (it may be hung or very busy); the call was abandoned.
	ErrCallTimeout = errors.New("the login's agent did not answer in time")
	// ErrAgentRestarting: the agent crashed and a new one is starting.
	ErrAgentRestarting = errors.New("the login's agent is restarting after a crash")
	// ErrAgentFailed: the agent crashed too often and was stopped.
	ErrAgentFailed = errors.New("the login's agent crashed too often and was stopped")
	// ErrAgentGone: the agent exited during the call.
	ErrAgentGone = errors.New("the login's agent exited")
)

// Errors cross the pipe as their message plus the names of the sentinel
// errors they wrap, so that errors.Is keeps working in the app. The table is
// fixed: every sentinel that crosses lives in a package below agent (the
// Prompter's errors in sshconn, with the interface).
var (
	registry = []registered{
		{"ssh.config", sshconn.ErrConfig},
		{"ssh.unsupported", sshconn.ErrUnsupported},
		{"ssh.unreachable", sshconn.ErrUnreachable},
		{"ssh.handshake_timeout", sshconn.ErrHandshakeTimeout},
		{"ssh.auth_failed", sshconn.ErrAuthFailed},
		{"ssh.bad_key", sshconn.ErrBadKey},
		{"ssh.wrong_passphrase", sshconn.ErrWrongPassphrase},
		{"ssh.host_key_mismatch", sshconn.ErrHostKeyMismatch},
		{"ssh.host_key_unknown", sshconn.ErrHostKeyUnknown},
		{"ssh.host_key_rejected", sshconn.ErrHostKeyRejected},
		{"ssh.host_key_revoked", sshconn.ErrHostKeyRevoked},
		{"ssh.ping_timeout", sshconn.ErrPingTimeout},
		{"ssh.connection_lost", sshconn.ErrConnectionLost},
		{"ssh.prompt_canceled", sshconn.ErrPromptCanceled},
		{"ssh.prompt_timeout", sshconn.ErrPromptTimeout},
		{"forwarder.permanent", forwarder.ErrPermanent},
		{"forwarder.unavailable", forwarder.ErrUnavailable},
		{"forwarder.session_closed", forwarder.ErrSessionClosed},
		{"forwarder.channel_refused", forwarder.ErrChannelRefused},
		{"forwarder.bad_target", forwarder.ErrBadTarget},
		{"forwarder.bad_spec", forwarder.ErrBadSpec},
		{"forwarder.ping_timeout", forwarder.ErrPingTimeout},
		{"forwarder.bad_open_target", forwarder.ErrBadOpenTarget},
		{"forwarder.drops_after_login", forwarder.ErrDropsAfterLogin},
		{"agent.closed", ErrClosed},
		{"agent.bad_spec", ErrBadLoginSpec},
		{"agent.listen", ErrListen},
		{"agent.no_prompter", ErrNoPrompter},
		{"agent.output_too_large", ErrOutputTooLarge},
		{"agent.exec_refused", ErrExecRefused},
		{"agent.no_web_forward", ErrNoWebForward},
		{"agent.protocol", ErrProtocol},
		{"context.canceled", context.Canceled},
		{"context.deadline", context.DeadlineExceeded},
	}
)

type registered struct {
	kind string
	err  error
}

// errorKinds names the registered errors err wraps.
func errorKinds(err error) []string {
	var kinds []string
	for _, r := range registry {
		if errors.Is(err, r.err) {
			kinds = append(kinds, r.kind)
		}
	}
	return kinds
}

func errorOfKind(kind string) error {
	for _, r := range registry {
		if r.kind == kind {
			return r.err
		}
	}
	return nil
}

// wireError is an error as it crosses the pipe.
type wireError struct {
	Message string   `json:"message"`
	Kinds   []string `json:"kinds,omitempty"`
	Exec    *execErr `json:"exec,omitempty"`
	// The structured sshconn errors the UI shows in detail (both host key
	// fingerprints, the auth methods tried) cross the pipe as data.
	HostKey *sshconn.HostKeyMismatchError `json:"hostKey,omitempty"`
	Auth    *wireAuth                     `json:"auth,omitempty"`
}

type wireAuth struct {
	User    string   `json:"user"`
	Addr    string   `json:"addr"`
	Tried   []string `json:"tried,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
}

type execErr struct {
	Status int    `json:"status"`
	Signal string `json:"signal,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Message: err.Error(), Kinds: errorKinds(err)}
	var ee *ExecError
	if errors.As(err, &ee) {
		w.Exec = &execErr{Status: ee.Status, Signal: ee.Signal, Stderr: ee.Stderr}
	}
	var mm *sshconn.HostKeyMismatchError
	if errors.As(err, &mm) {
		w.HostKey = mm
	}
	var ae *sshconn.AuthError
	if errors.As(err, &ae) {
		w.Auth = &wireAuth{User: ae.User, Addr: ae.Addr, Tried: ae.Tried, Allowed: ae.Allowed}
	}
	return w
}

func (w *wireError) toError() error {
	if w == nil {
		return nil
	}
	e := &RemoteError{Message: w.Message, Kinds: slices.Clone(w.Kinds)}
	if w.Exec != nil {
		e.Exec = &ExecError{Status: w.Exec.Status, Signal: w.Exec.Signal, Stderr: w.Exec.Stderr}
	}
	e.HostKey = w.HostKey
	if w.Auth != nil {
		e.Auth = &sshconn.AuthError{User: w.Auth.User, Addr: w.Auth.Addr, Tried: w.Auth.Tried, Allowed: w.Auth.Allowed}
	}
	return e
}

// RemoteError is an error that happened in a login's agent process. Its
// message is the original's; errors.Is matches the registered sentinel
// errors the original wrapped (sshconn.ErrAuthFailed, ErrListen, …) and
// errors.As finds an *ExecError.
type RemoteError struct {
	Message string
	Kinds   []string
	Exec    *ExecError
	HostKey *sshconn.HostKeyMismatchError // set when the agent refused a changed host key
	Auth    *sshconn.AuthError            // set when authentication failed (Causes are not carried)
}

// As finds the structured sshconn errors the agent sent along.
func (e *RemoteError) As(target any) bool {
	switch t := target.(type) {
	case **sshconn.HostKeyMismatchError:
		if e.HostKey != nil {
			*t = e.HostKey
			return true
		}
	case **sshconn.AuthError:
		if e.Auth != nil {
			*t = e.Auth
			return true
		}
	}
	return false
}

func (e *RemoteError) Error() string { return e.Message }

// Is matches the sentinel errors the original error wrapped.
func (e *RemoteError) Is(target error) bool {
	for _, k := range e.Kinds {
		if s := errorOfKind(k); s != nil && s == target {
			return true
		}
	}
	return false
}

// Unwrap exposes the *ExecError, if any.
func (e *RemoteError) Unwrap() error {
	if e.Exec != nil {
		return e.Exec
	}
	return nil
}

// toRPCError makes the JSON-RPC error for a failed operation.
func toRPCError(err error) *jsonrpc2.Error {
	e := &jsonrpc2.Error{Code: codeFailed, Message: err.Error()}
	e.SetError(toWire(err))
	return e
}

// fromRPCError turns the answer to a failed call back into an error.
func fromRPCError(method string, err error) error {
	var re *jsonrpc2.Error
	if !errors.As(err, &re) {
		return err
	}
	switch re.Code {
	case codeFailed:
		var w wireError
		if re.Data != nil && json.Unmarshal(*re.Data, &w) == nil && w.Message != "" {
			return w.toError()
		}
		return &RemoteError{Message: re.Message}
	case codeProtocolMismatch:
		return fmt.Errorf("%w: %s", ErrProtocolMismatch, re.Message)
	}
	return fmt.Errorf("%w: the agent refused %s: %s (code %d)", ErrProtocol, method, re.Message, re.Code)
}

// IsPermanent: retrying cannot fix err (authentication, host key, config,
// no way to ask the user); ssh exits on these too. `porthole forward` ends on them.
func IsPermanent(err error) bool {
	for _, e := range []error{
		forwarder.ErrPermanent, sshconn.ErrUnreachable, sshconn.ErrAuthFailed, sshconn.ErrHostKeyMismatch,
		sshconn.ErrHostKeyUnknown, sshconn.ErrHostKeyRejected, sshconn.ErrHostKeyRevoked, sshconn.ErrConfig,
		sshconn.ErrUnsupported, sshconn.ErrBadKey, sshconn.ErrWrongPassphrase, ErrNoPrompter,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
