package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// ErrBadLoginSpec means a LoginSpec (or a forward in it) is invalid.
var ErrBadLoginSpec = errors.New("invalid login spec")

// AuthMethod is one way of logging in, in the user's terms (an ssh-agent key
// and a key file are both "publickey" on the wire).
type AuthMethod int

const (
	AuthAgent               AuthMethod = iota + 1 // keys held by ssh-agent ($SSH_AUTH_SOCK)
	AuthKey                                       // identity files
	AuthPassword                                  // the account password
	AuthKeyboardInteractive                       // the server's questions (PAM, OTP)
)

var authNames = [...]string{
	AuthAgent:               "agent",
	AuthKey:                 "key",
	AuthPassword:            "password",
	AuthKeyboardInteractive: "keyboard-interactive",
}

func (m AuthMethod) String() string {
	if m > 0 && int(m) < len(authNames) {
		return authNames[m]
	}
	return fmt.Sprintf("AuthMethod(%d)", int(m))
}

// MarshalText writes the method's name.
func (m AuthMethod) MarshalText() ([]byte, error) {
	if m <= 0 || int(m) >= len(authNames) {
		return nil, fmt.Errorf("unknown auth method %d", int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses a method name.
func (m *AuthMethod) UnmarshalText(b []byte) error {
	for i, n := range authNames {
		if i > 0 && n == string(b) {
			*m = AuthMethod(i)
			return nil
		}
	}
	return fmt.Errorf("unknown auth method %q: want one of agent, key, password, keyboard-interactive", b)
}

// ForwardKind says what a forward does with a connection.
type ForwardKind int

const (
	// ForwardLocal is a raw -L forward: bytes pass through untouched.
	ForwardLocal ForwardKind = iota + 1
	// ForwardWeb is an HTTP-aware forward (forwarder.WebForward): a reverse
	// proxy for a web app shown in a tab.
	ForwardWeb
	// ForwardDynamic is a -D forward (forwarder.DynamicForward): a SOCKS
	// proxy whose targets are resolved on the server.
	ForwardDynamic
	// ForwardRemote is a -R forward (forwarder.RemoteForward): the server
	// listens and connections come back to a target dialed here.
	ForwardRemote
)

var forwardKindNames = [...]string{ForwardLocal: "local", ForwardWeb: "web", ForwardDynamic: "dynamic", ForwardRemote: "remote"}

func (k ForwardKind) String() string {
	if k > 0 && int(k) < len(forwardKindNames) {
		return forwardKindNames[k]
	}
	return fmt.Sprintf("ForwardKind(%d)", int(k))
}

// MarshalText writes the kind's name.
func (k ForwardKind) MarshalText() ([]byte, error) {
	if k <= 0 || int(k) >= len(forwardKindNames) {
		return nil, fmt.Errorf("unknown forward kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses a kind's name.
func (k *ForwardKind) UnmarshalText(b []byte) error {
	for i, n := range forwardKindNames {
		if i > 0 && n == string(b) {
			*k = ForwardKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown forward kind %q: want one of %s", b, strings.Join(forwardKindNames[1:], ", "))
}

// ForwardSpec is one forward of a login, on the local endpoint the app
// assigned to it: a raw local forward (-L, Local) or, when Web is set, an
// HTTP-aware web forward, or, when Dynamic is set, a SOCKS proxy (-D), or,
// when Remote is set, a remote forward (-R); Local is then unused and must
// be zero. At most one of Web, Dynamic and Remote is set.
//
// Unix socket forwards are Local and Remote forwards whose spec has a
// BindPath and/or TargetPath (forwarder.LocalSpec, forwarder.RemoteSpec);
// those fields are omitted from JSON when empty, so older specs read and
// write the same. Their kind stays ForwardLocal or ForwardRemote; their
// ForwardInfo.Addr is the socket path.
type ForwardSpec struct {
	// ID names the forward within its login (stats and results refer to
	// it); "" means Local.String() (or "web:" + Web.String(), or
	// "dynamic:" + Dynamic.String()).
	ID    string              `json:"id,omitempty"`
	Local forwarder.LocalSpec `json:"local,omitzero"`
	// Web, when set, makes this a web forward.
	Web *forwarder.WebSpec `json:"web,omitempty"`
	// Dynamic, when set, makes this a dynamic (SOCKS) forward.
	Dynamic *forwarder.DynamicSpec `json:"dynamic,omitempty"`
	// Remote, when set, makes this a remote forward.
	Remote *forwarder.RemoteSpec `json:"remote,omitempty"`
}

// Kind is ForwardWeb when Web is set, ForwardDynamic when Dynamic is set,
// ForwardRemote when Remote is set, else ForwardLocal.
func (f ForwardSpec) Kind() ForwardKind {
	switch {
	case f.Remote != nil:
		return ForwardRemote
	case f.Web != nil:
		return ForwardWeb
	case f.Dynamic != nil:
		return ForwardDynamic
	}
	return ForwardLocal
}

// Key is the forward's ID, or its spec when the ID is empty.
func (f ForwardSpec) Key() string {
	switch {
	case f.ID != "":
		return f.ID
	case f.Web != nil:
		return "web:" + f.Web.String()
	case f.Dynamic != nil:
		return "dynamic:" + f.Dynamic.String()
	case f.Remote != nil:
		return "remote:" + f.Remote.String()
	}
	return f.Local.String()
}

// Endpoint is the forward's address and target as a LocalSpec (for a web
// forward, the WebSpec's bind address, port and target; for a dynamic
// forward, its bind address and port, with no target; for a remote forward,
// the server's bind address and port (or socket path) and the local target).
func (f ForwardSpec) Endpoint() forwarder.LocalSpec {
	if r := f.Remote; r != nil {
		return forwarder.LocalSpec{BindAddress: r.BindAddress, BindPort: r.BindPort, TargetHost: r.TargetHost, TargetPort: r.TargetPort, BindPath: r.BindPath, TargetPath: r.TargetPath}
	}
	if f.Web != nil {
		w := f.Web
		return forwarder.LocalSpec{BindAddress: w.BindAddress, BindPort: w.BindPort, TargetHost: w.TargetHost, TargetPort: w.TargetPort}
	}
	if f.Dynamic != nil {
		return forwarder.LocalSpec{BindAddress: f.Dynamic.BindAddress, BindPort: f.Dynamic.BindPort}
	}
	return f.Local
}

// BindPort is the local port asked for (0: any free port).
func (f ForwardSpec) BindPort() int { return f.Endpoint().BindPort }

// withBindPort returns a copy of f with its local port set (the WebSpec is
// copied, never shared).
func (f ForwardSpec) withBindPort(port int) ForwardSpec {
	if f.Remote != nil {
		r := *f.Remote
		r.BindPort = port
		f.Remote = &r
		return f
	}
	if f.Web != nil {
		w := *f.Web
		w.BindPort = port
		f.Web = &w
		return f
	}
	if f.Dynamic != nil {
		d := *f.Dynamic
		d.BindPort = port
		f.Dynamic = &d
		return f
	}
	f.Local.BindPort = port
	return f
}

// clone copies f deeply.
func (f ForwardSpec) clone() ForwardSpec {
	if f.Web != nil {
		w := *f.Web
		w.AllowedFrameAncestors = slices.Clone(w.AllowedFrameAncestors)
		f.Web = &w
	}
	if f.Dynamic != nil {
		d := *f.Dynamic
		f.Dynamic = &d
	}
	if f.Remote != nil {
		r := *f.Remote
		f.Remote = &r
	}
	return f
}

// Validate checks the forward's spec.
func (f ForwardSpec) Validate() error {
	if f.Remote != nil {
		if f.Web != nil || f.Dynamic != nil || f.Local != (forwarder.LocalSpec{}) {
			return errors.New("a remote spec is set with a local, web or dynamic spec; a forward is one of them")
		}
		return f.Remote.Validate()
	}
	if f.Web != nil && f.Dynamic != nil {
		return errors.New("both a web and a dynamic spec are set; a forward is one or the other")
	}
	if f.Web != nil {
		if f.Local != (forwarder.LocalSpec{}) {
			return errors.New("both a local and a web spec are set; a forward is one or the other")
		}
		return f.Web.Validate()
	}
	if f.Dynamic != nil {
		if f.Local != (forwarder.LocalSpec{}) {
			return errors.New("both a local and a dynamic spec are set; a forward is one or the other")
		}
		return f.Dynamic.Validate()
	}
	return f.Local.Validate()
}

// sameSpec: a and b ask for the same forward (bind ports compared too).
func sameSpec(a, b ForwardSpec) bool {
	if (a.Web == nil) != (b.Web == nil) || (a.Dynamic == nil) != (b.Dynamic == nil) || (a.Remote == nil) != (b.Remote == nil) {
		return false
	}
	if a.Remote != nil {
		return *a.Remote == *b.Remote
	}
	if a.Dynamic != nil {
		return *a.Dynamic == *b.Dynamic && a.Local == b.Local
	}
	if a.Web == nil {
		return a.Local == b.Local
	}
	wa, wb := *a.Web, *b.Web
	if !slices.Equal(wa.AllowedFrameAncestors, wb.AllowedFrameAncestors) {
		return false
	}
	wa.AllowedFrameAncestors, wb.AllowedFrameAncestors = nil, nil
	return reflect.DeepEqual(wa, wb)
}

// sameButPort: a and b ask for the same forward, apart from the local port.
func sameButPort(a, b ForwardSpec) bool {
	return sameSpec(a.withBindPort(0), b.withBindPort(0))
}

// SessionSettings tune the login's forwarder.Session. Zero values mean the
// forwarder's defaults.
type SessionSettings struct {
	// IdleTimeout closes the SSH connection after this long without
	// channels; negative keeps it open until Disconnect or Close.
	IdleTimeout time.Duration `json:"idleTimeoutNs,omitempty"`
	// PingIdleThreshold: ping before use after this long without a sign of life.
	PingIdleThreshold time.Duration `json:"pingIdleThresholdNs,omitempty"`
	// PingTimeout fixes the keepalive timeout (0 adapts to the RTT).
	PingTimeout time.Duration `json:"pingTimeoutNs,omitempty"`
	// ConnectTimeout bounds one connection attempt, including every
	// question asked through the Prompter; 0 = DefaultConnectTimeout.
	ConnectTimeout time.Duration `json:"connectTimeoutNs,omitempty"`
	// ReconnectWindow: how long a connection in use is re-dialed in the
	// background after it was lost.
	ReconnectWindow time.Duration `json:"reconnectWindowNs,omitempty"`
	// PoolSize caps pre-opened channels per target (0 = default).
	PoolSize int `json:"poolSize,omitempty"`
	// PoolDisabled turns the channel pool off.
	PoolDisabled bool `json:"poolDisabled,omitempty"`
	// KeepaliveInterval: while the login has remote forwards, a quiet
	// connection is pinged this often so that a dead path is noticed and
	// the forwards are requested again on a new connection; 0 = 2 s.
	KeepaliveInterval time.Duration `json:"keepaliveIntervalNs,omitempty"`
	// StatsInterval is how often changed forward stats are published as
	// EventStats; 0 = 1 s; negative = never.
	StatsInterval time.Duration `json:"statsIntervalNs,omitempty"`
}

// DefaultConnectTimeout is used when SessionSettings.ConnectTimeout is 0.
const DefaultConnectTimeout = 20 * time.Second

func (s SessionSettings) connectTimeout() time.Duration {
	if s.ConnectTimeout > 0 {
		return s.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// LoginSpec is everything a login needs except its secrets: where to
// connect, how to authenticate, and the forwards with their local endpoints.
// It is the agent's own type (the app maps its profile to it), sent to the
// agent over the pipe. It never holds a secret.
type LoginSpec struct {
	// ID identifies the login (the app's profile ID); events carry it.
	ID string `json:"id"`
	// Name is for logs and messages, e.g. "alice@gpu1".
	Name string `json:"name,omitempty"`

	// Host, Port, User, IdentityFiles and ProxyJump are like ssh's
	// destination, -p, -l, -i and -J; they override ssh_config.
	Host          string   `json:"host,omitempty"`
	Port          int      `json:"port,omitempty"`
	User          string   `json:"user,omitempty"`
	IdentityFiles []string `json:"identityFiles,omitempty"`
	ProxyJump     string   `json:"proxyJump,omitempty"`
	// AuthMethods is the order to try; empty means OpenSSH's default
	// (agent and keys, keyboard-interactive, password). Without AuthAgent
	// in a non-empty list, ssh-agent is not used.
	AuthMethods []AuthMethod `json:"authMethods,omitempty"`

	// SSHConfigAlias, when set, is resolved through ssh_config at every
	// connection (so edits to ~/.ssh/config apply); Host is then ignored.
	SSHConfigAlias string `json:"sshConfigAlias,omitempty"`
	// SSHConfigPath is the user's ssh_config ("" = ~/.ssh/config, "none").
	SSHConfigPath string `json:"sshConfigPath,omitempty"`
	// SystemConfigPath is the system-wide file ("" = the default, "none").
	SystemConfigPath string `json:"systemConfigPath,omitempty"`
	// HomeDir replaces the home directory for ~ and the default files.
	HomeDir string `json:"homeDir,omitempty"`
	// Options are "-o Key=Value" overrides (e.g. "Ciphers").
	Options map[string]string `json:"options,omitempty"`
	// KnownHostsFiles, if set, replace every hop's known_hosts files.
	KnownHostsFiles []string `json:"knownHostsFiles,omitempty"`
	// AgentSocket overrides the ssh-agent socket ("" = $SSH_AUTH_SOCK or
	// IdentityAgent, "none" = no agent).
	AgentSocket string `json:"agentSocket,omitempty"`

	Session SessionSettings `json:"session"`
	// Forwards are the login's local forwards on their assigned endpoints.
	Forwards []ForwardSpec `json:"forwards,omitempty"`
	// LogLevel is the lowest level published as EventLog (default Info).
	LogLevel slog.Level `json:"logLevel"`
}

// DisplayName is Name, or the destination when Name is empty. It reads
// those fields only (a pointer receiver), so it may run while another
// goroutine replaces Forwards under RemoteLogin's lock.
func (s *LoginSpec) DisplayName() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.SSHConfigAlias != "":
		return s.SSHConfigAlias
	case s.User != "":
		return s.User + "@" + s.Host
	}
	return s.Host
}

// Validate checks the spec: a destination, sane ports and unique, valid
// forwards. Errors wrap ErrBadLoginSpec.
func (s LoginSpec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadLoginSpec, s.DisplayName(), fmt.Sprintf(format, a...))
	}
	if s.Host == "" && s.SSHConfigAlias == "" {
		return bad("no host and no ssh_config alias; give one of them")
	}
	for _, f := range []struct{ what, v string }{
		{"host", s.Host}, {"user", s.User}, {"ssh_config alias", s.SSHConfigAlias}, {"jump hosts", s.ProxyJump},
	} {
		if strings.ContainsAny(f.v, "\x00\r\n") {
			return bad("the %s contains a control character", f.what)
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		return bad("port %d is out of range 0-65535", s.Port)
	}
	for _, m := range s.AuthMethods {
		if m <= 0 || int(m) >= len(authNames) {
			return bad("unknown auth method %d", int(m))
		}
	}
	return validateForwards(s.Forwards)
}

func validateForwards(fwds []ForwardSpec) error {
	seen := make(map[string]bool, len(fwds))
	for _, f := range fwds {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("%w: forward %q: %w", ErrBadLoginSpec, f.Key(), err)
		}
		if seen[f.Key()] {
			return fmt.Errorf("%w: forward %q is listed twice; give each forward its own ID", ErrBadLoginSpec, f.Key())
		}
		seen[f.Key()] = true
	}
	return nil
}

func (s LoginSpec) clone() LoginSpec {
	s.IdentityFiles = slices.Clone(s.IdentityFiles)
	s.AuthMethods = slices.Clone(s.AuthMethods)
	s.Options = maps.Clone(s.Options)
	s.KnownHostsFiles = slices.Clone(s.KnownHostsFiles)
	s.Forwards = cloneForwards(s.Forwards)
	return s
}

func cloneForwards(fwds []ForwardSpec) []ForwardSpec {
	if fwds == nil {
		return nil
	}
	out := make([]ForwardSpec, len(fwds))
	for i, f := range fwds {
		out[i] = f.clone()
	}
	return out
}

// UsesAgent: ssh-agent is tried unless an explicit method list leaves it out.
func (s LoginSpec) UsesAgent() bool {
	return len(s.AuthMethods) == 0 || slices.Contains(s.AuthMethods, AuthAgent)
}

// preferredAuth maps the methods to PreferredAuthentications.
func (s LoginSpec) preferredAuth() string {
	var out []string
	for _, m := range s.AuthMethods {
		name := "publickey"
		switch m {
		case AuthPassword:
			name = "password"
		case AuthKeyboardInteractive:
			name = "keyboard-interactive"
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return strings.Join(out, ",")
}

// Resolve turns the spec into an sshconn.Config, reading ssh_config again:
// the one place connection options are resolved, for every login.
func (s LoginSpec) Resolve() (*sshconn.Config, error) {
	opts := sshconn.Options{
		User:             s.User,
		Port:             s.Port,
		IdentityFiles:    s.IdentityFiles,
		ProxyJump:        s.ProxyJump,
		ConfigPath:       s.SSHConfigPath,
		SystemConfigPath: s.SystemConfigPath,
		HomeDir:          s.HomeDir,
		ConfigOverrides:  maps.Clone(s.Options),
	}
	if len(s.AuthMethods) > 0 {
		if opts.ConfigOverrides == nil {
			opts.ConfigOverrides = map[string]string{}
		}
		opts.ConfigOverrides["PreferredAuthentications"] = s.preferredAuth()
	}
	if s.SSHConfigAlias != "" {
		return sshconn.Resolve(s.SSHConfigAlias, opts)
	}
	host := s.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // IPv6
	}
	return sshconn.Resolve(host, opts)
}

// Secrets are a login's password and key passphrase. They travel only over
// the agent's pipe (never argv or the environment), are answered to the
// server before the user is asked, and never appear in logs: Secrets
// formats as "[redacted]".
//
// Password answers the destination only; a jump host that asks for a
// password gets its own entry of JumpPasswords (keyed by its
// sshconn.HopID, "user@host:port") or the user's answer, never the
// destination's password.
type Secrets struct {
	Password   string `json:"password,omitempty"` // the destination's
	Passphrase string `json:"passphrase,omitempty"`
	// JumpPasswords are the jump hosts' passwords by sshconn.HopID.
	JumpPasswords map[string]string `json:"jumpPasswords,omitempty"`
}

// IsZero reports whether s holds no secret at all.
func (s Secrets) IsZero() bool {
	return s.Password == "" && s.Passphrase == "" && len(s.JumpPasswords) == 0
}

// String hides the values.
func (Secrets) String() string { return "[redacted]" }

// GoString hides the values.
func (Secrets) GoString() string { return "agent.Secrets{[redacted]}" }

// LogValue hides the values from log/slog.
func (Secrets) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Format hides the values from every fmt verb.
func (s Secrets) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(s.String())) }
