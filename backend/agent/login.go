package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// Login is one server login: its SSH session, its local forwards, and what
// discovery needs (a command and a probe on the server). app.go sees only
// this interface. LocalLogin runs it in this process; RemoteLogin (from
// Supervisor.Start) runs it in a sandboxed `porthole agent` process. Both
// pass the same contract tests.
//
// Every method that talks to the server takes a context; RemoteLogin also
// bounds each call with a deadline, so a crashed or hung agent never blocks
// the caller for long.
type Login interface {
	// Spec is the login's spec with its current forwards (no secrets).
	Spec() LoginSpec

	// Connect makes sure the login has a live SSH connection now, asking
	// the Prompter what it must. It returns why it could not connect (an
	// sshconn error, the Prompter's error, or ctx's).
	Connect(ctx context.Context) error
	// Disconnect closes the SSH connection. The forwards keep listening;
	// a new connection to one of them connects again (the session is
	// transient, the listener is not). Close ends everything.
	Disconnect(ctx context.Context) error

	// SetForwards replaces the login's forwards with fwds: unchanged ones
	// (same key and spec) keep their listener and connections, removed ones
	// are closed, new ones are bound. It returns one ForwardInfo per
	// forward, and an error wrapping ErrListen for each forward that could
	// not be bound (the others are up). A BindPort of 0 picks a free port;
	// the ForwardInfo says which, and that port is kept from then on.
	SetForwards(ctx context.Context, fwds []ForwardSpec) ([]ForwardInfo, error)
	// SetSecrets replaces the secrets answered before asking the user.
	SetSecrets(ctx context.Context, s Secrets) error

	// OpenLink registers a one-time link on the web forward forwardID (its
	// ForwardSpec.Key()) to target, a path on the forward's own origin with
	// its query and fragment ("/lab?token=…"), and returns the link's code:
	// http://<the forward's address>/.porthole/open/<code>
	// (forwarder.OpenPathPrefix) takes a browser to target once, within
	// forwarder.OpenLinkTTL. The code is 128 random bits made where the
	// forward runs; target may hold a secret, so it crosses only the
	// agent's pipe and is never logged. It fails with ErrNoWebForward when
	// forwardID names no listening web forward, and with
	// forwarder.ErrBadOpenTarget when target is not such a path.
	OpenLink(ctx context.Context, forwardID, target string) (code string, err error)

	// Exec runs cmd on the server (an SSH "exec" session, like `ssh host
	// cmd`) and returns its stdout, at most MaxExecOutput bytes. A command
	// that exits non-zero returns its stdout and an *ExecError.
	Exec(ctx context.Context, cmd string) ([]byte, error)
	// Probe connects to host:port as seen from the server, writes request,
	// and returns what comes back: until the server closes, limit bytes
	// (at most MaxProbeSize), ProbeQuiet without new bytes after the first
	// ones, or ctx ends (then with the bytes read so far and ctx's error).
	// A limit ≤ 0 only checks that the port accepts a connection.
	Probe(ctx context.Context, host string, port int, request []byte, limit int) ([]byte, error)

	// Stats is the session state and every forward's counters.
	Stats(ctx context.Context) (Stats, error)
	// State is the last known session state; it never blocks.
	State() forwarder.StateInfo

	// Subscribe calls f for every Event from now on, in order, from one
	// goroutine; f must not block long. The returned function unsubscribes.
	// A RemoteLogin's subscriptions survive agent restarts.
	Subscribe(f func(Event)) (unsubscribe func())

	// Close disconnects, closes every listener and stops every goroutine
	// (and, for RemoteLogin, the agent process). Later calls fail with
	// ErrClosed. It is idempotent.
	Close() error
}

// Limits of what crosses the pipe.
const (
	// MaxExecOutput caps the stdout Exec returns (ErrOutputTooLarge beyond).
	MaxExecOutput = 8 << 20
	// MaxProbeSize caps Probe's limit.
	MaxProbeSize = 1 << 20
	// ProbeQuiet ends a Probe when no new byte came this long after the first.
	ProbeQuiet = 300 * time.Millisecond
)

// Sentinel errors; check them with errors.Is. Over RPC they keep their
// identity (see the table in errors.go).
var (
	// ErrClosed: the Login was closed.
	ErrClosed = errors.New("login is closed")
	// ErrListen: a forward could not listen on its local address.
	ErrListen = errors.New("cannot listen on the local address")
	// ErrNoPrompter: a password or answer was needed and nobody can be asked.
	ErrNoPrompter = errors.New("a password or answer is needed and there is no one to ask")
	// ErrOutputTooLarge: a command wrote more than MaxExecOutput bytes.
	ErrOutputTooLarge = errors.New("command output too large")
	// ErrExecRefused: the server does not allow running commands (no
	// "session" channels, or the exec request was refused).
	ErrExecRefused = errors.New("the server refused to run a command")
	// ErrNoWebForward: OpenLink named no listening web forward of the login.
	ErrNoWebForward = errors.New("the login has no such web forward listening")
	// ErrProbeConnect: Probe could not connect to the port (nothing was sent).
	ErrProbeConnect = errors.New("could not connect")
)

// ExecError reports a command that ran and failed.
type ExecError struct {
	Status int    // exit status; -1 when killed by a signal
	Signal string // e.g. "KILL"; "" when it exited
	Stderr string // the start of its stderr
}

func (e *ExecError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "the command was killed by signal %s on the server", e.Signal)
	} else {
		fmt.Fprintf(&b, "the command exited with status %d on the server", e.Status)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[:i] + " …"
		}
		b.WriteString(": ")
		b.WriteString(s)
	}
	return b.String()
}

// Stats is a login's state and counters.
type Stats struct {
	Session  forwarder.StateInfo `json:"session"`
	Forwards []ForwardInfo       `json:"forwards"`
}

// ForwardInfo is one forward: where it listens (or why not) and its counters.
type ForwardInfo struct {
	ID   string      `json:"id"`
	Kind ForwardKind `json:"kind,omitzero"` // zero only in hand-made values
	// Spec is the forward's address and target (ForwardSpec.Endpoint).
	Spec forwarder.LocalSpec `json:"spec"`
	// Web is a web forward's spec; nil for a local forward.
	Web *forwarder.WebSpec `json:"web,omitempty"`
	// Remote is a remote forward's state: where the server listens (the
	// allocated port), or why not in plain words; nil for other kinds.
	Remote *forwarder.RemoteStatus `json:"remote,omitempty"`
	// Addr is the bound local address ("127.0.0.1:8080"); "" when not
	// listening. For a remote forward it is the server-side address
	// ("localhost:8080", with the allocated port), "" until it listens.
	Addr string `json:"addr,omitempty"`
	// Error says why it is not listening.
	Error string                  `json:"error,omitempty"`
	Stats forwarder.StatsSnapshot `json:"stats"`
}

// EventKind says what an Event carries.
type EventKind int

const (
	// EventState: the session state changed (Event.State).
	EventState EventKind = iota + 1
	// EventStats: forward counters changed (Event.Stats), at most every
	// SessionSettings.StatsInterval.
	EventStats
	// EventLog: a log line of the login (Event.Log).
	EventLog
	// EventStep: connection progress (Event.Step), e.g. "authenticating".
	EventStep
	// EventAgent: the agent process started, crashed, was restarted, was
	// stopped for crashing too often, or exited (Event.Agent). RemoteLogin only.
	EventAgent
)

var eventKindNames = [...]string{
	EventState: "state",
	EventStats: "stats",
	EventLog:   "log",
	EventStep:  "step",
	EventAgent: "agent",
}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// MarshalText writes the kind's name.
func (k EventKind) MarshalText() ([]byte, error) {
	if k <= 0 || int(k) >= len(eventKindNames) {
		return nil, fmt.Errorf("unknown event kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses a kind's name.
func (k *EventKind) UnmarshalText(b []byte) error {
	for i, n := range eventKindNames {
		if i > 0 && n == string(b) {
			*k = EventKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown event kind %q", b)
}

// Event is something that happened to a login. Exactly the field named by
// Kind is set.
type Event struct {
	Kind  EventKind        `json:"kind"`
	Login string           `json:"login,omitempty"` // LoginSpec.ID
	Time  time.Time        `json:"time"`
	State *forwarder.Event `json:"state,omitempty"`
	Stats *Stats           `json:"stats,omitempty"`
	Log   *LogLine         `json:"log,omitempty"`
	Step  *StepEvent       `json:"step,omitempty"`
	Agent *AgentEvent      `json:"agent,omitempty"`
}

func (e Event) String() string {
	switch {
	case e.State != nil:
		return "state: " + e.State.String()
	case e.Log != nil:
		return "log: " + e.Log.Level.String() + " " + e.Log.Message
	case e.Step != nil:
		return "step: " + e.Step.Name + " " + e.Step.Detail
	case e.Agent != nil:
		return "agent: " + e.Agent.Kind.String() + " " + e.Agent.Message
	case e.Stats != nil:
		return fmt.Sprintf("stats: %d forwards", len(e.Stats.Forwards))
	}
	return e.Kind.String()
}

// LogLine is one log record of a login.
type LogLine struct {
	Time    time.Time  `json:"time"`
	Level   slog.Level `json:"level"`
	Message string     `json:"msg"`
	Attrs   []LogAttr  `json:"attrs,omitempty"`
}

// LogAttr is a log attribute, its value formatted.
type LogAttr struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// StepEvent is a stage of connecting (sshconn.Dialer's OnStep).
type StepEvent struct {
	Step   sshconn.Step `json:"step"`
	Name   string       `json:"name"` // Step.String()
	Detail string       `json:"detail,omitempty"`
}

// AgentEventKind is what happened to an agent process.
type AgentEventKind int

const (
	AgentStarted   AgentEventKind = iota + 1 // the first start
	AgentCrashed                             // it exited without being asked to (or broke the protocol)
	AgentRestarted                           // a new process took over after a crash
	AgentFailed                              // it crashed too often and was stopped
	AgentStopped                             // Close stopped it
)

var agentEventNames = [...]string{
	AgentStarted:   "started",
	AgentCrashed:   "crashed",
	AgentRestarted: "restarted",
	AgentFailed:    "failed",
	AgentStopped:   "stopped",
}

func (k AgentEventKind) String() string {
	if k > 0 && int(k) < len(agentEventNames) {
		return agentEventNames[k]
	}
	return fmt.Sprintf("AgentEventKind(%d)", int(k))
}

// MarshalText writes the kind's name.
func (k AgentEventKind) MarshalText() ([]byte, error) {
	if k <= 0 || int(k) >= len(agentEventNames) {
		return nil, fmt.Errorf("unknown agent event kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses a kind's name.
func (k *AgentEventKind) UnmarshalText(b []byte) error {
	for i, n := range agentEventNames {
		if i > 0 && n == string(b) {
			*k = AgentEventKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown agent event kind %q", b)
}

// AgentEvent describes an agent process event.
type AgentEvent struct {
	Kind     AgentEventKind `json:"kind"`
	PID      int            `json:"pid,omitempty"`
	Message  string         `json:"message,omitempty"`
	Restarts int            `json:"restarts"` // restarts after crashes so far
}
