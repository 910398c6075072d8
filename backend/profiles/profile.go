package profiles

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// DefaultPort is the SSH port used when an imported entry names none.
const DefaultPort = 22

// Profile is one server login as the user saved it. It holds no secret:
// passwords and key passphrases live in a SecretStore under the profile's ID.
type Profile struct {
	// ID is random, assigned by Store.Add, and never changes. It is the key
	// of the profile's secrets in the SecretStore.
	ID   string `json:"id"`
	Name string `json:"name"`

	Host string `json:"host"`
	Port int    `json:"port"`
	// User is the login name; "" means the ssh_config User or the local user.
	User string `json:"user,omitempty"`

	// Auth is the ordered list of methods to try; empty means DefaultAuthOrder.
	Auth []AuthMethod `json:"auth,omitempty"`
	// KeyPath is the private key file for AuthKey ("~/" is the home
	// directory); "" means the agent and the default/ssh_config identities.
	KeyPath string `json:"keyPath,omitempty"`

	// JumpHosts are the ProxyJump hops in connection order, each
	// "[user@]host[:port]" like ssh -J (a host may be an ssh_config alias).
	JumpHosts []string `json:"jumpHosts,omitempty"`

	// Forwards are the saved forward rules: they start when the server
	// connects (backend/rules), and a rule with ConnectAtStart connects the
	// server when Porthole starts.
	Forwards []ForwardRule `json:"forwards,omitempty"`

	Options Options `json:"options"`

	// Color is "" or a CSS hex colour ("#3b82f6" or "#38f").
	Color string `json:"color,omitempty"`
	// Icon is "" or the name of one of the UI's icons.
	Icon string `json:"icon,omitempty"`

	// SSHConfigAlias, when set, links the profile to a Host entry of
	// ~/.ssh/config: at connect time the alias is resolved again, so edits to
	// the config apply; Host, Port, User, KeyPath and JumpHosts are then the
	// values seen when the profile was imported, shown in the UI.
	SSHConfigAlias string `json:"sshConfigAlias,omitempty"`
}

// Options tune the connection of one login. Zero values mean "Porthole's
// default" (chosen by the forwarder, not here).
type Options struct {
	// PingThreshold: a session idle longer than this is pinged before use.
	PingThreshold Duration `json:"pingThreshold,omitempty"`
	// PoolSize is the number of pre-opened channels kept per hot target.
	PoolSize int `json:"poolSize,omitempty"`
	// IdleTimeout: an SSH session unused this long is closed (redialed on demand).
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
}

// Limits checked by Validate.
const (
	MaxPoolSize    = 32
	MaxNameLen     = 200
	MaxIconLen     = 64
	MaxLabelLen    = 200
	MaxDurationOpt = 7 * 24 * time.Hour
)

// Clone returns a deep copy of p (the slices are not shared).
func (p Profile) Clone() Profile {
	p.Auth = slices.Clone(p.Auth)
	p.JumpHosts = slices.Clone(p.JumpHosts)
	p.Forwards = slices.Clone(p.Forwards)
	return p
}

// AuthOrder is p.Auth, or DefaultAuthOrder when p.Auth is empty.
func (p Profile) AuthOrder() []AuthMethod {
	if len(p.Auth) == 0 {
		return slices.Clone(DefaultAuthOrder)
	}
	return slices.Clone(p.Auth)
}

// NewID returns a new random profile ID (26 characters of base32, 130 bits).
func NewID() string { return strings.ToLower(rand.Text()) }

// AuthMethod is one way to log in.
type AuthMethod int

const (
	AuthAgent               AuthMethod = iota + 1 // keys held by the SSH agent
	AuthKey                                       // the private key file Profile.KeyPath
	AuthPassword                                  // a password (kept in the SecretStore or asked for)
	AuthKeyboardInteractive                       // server-driven prompts (OTP, 2FA)
)

// DefaultAuthOrder is tried when a profile names no methods, like OpenSSH:
// keys first, then the interactive methods.
var DefaultAuthOrder = []AuthMethod{AuthAgent, AuthKey, AuthKeyboardInteractive, AuthPassword}

// AllAuthMethods lists every AuthMethod.
var AllAuthMethods = []AuthMethod{AuthAgent, AuthKey, AuthPassword, AuthKeyboardInteractive}

// String is the name used in the file: "agent", "key", "password", "keyboard-interactive".
func (m AuthMethod) String() string {
	switch m {
	case AuthAgent:
		return "agent"
	case AuthKey:
		return "key"
	case AuthPassword:
		return "password"
	case AuthKeyboardInteractive:
		return "keyboard-interactive"
	}
	return fmt.Sprintf("AuthMethod(%d)", int(m))
}

// ParseAuthMethod is the inverse of String.
func ParseAuthMethod(s string) (AuthMethod, error) {
	for _, m := range AllAuthMethods {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown auth method %q (known: agent, key, password, keyboard-interactive)", s)
}

// MarshalText writes the name; an unknown value is an error.
func (m AuthMethod) MarshalText() ([]byte, error) {
	if _, err := ParseAuthMethod(m.String()); err != nil {
		return nil, err
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads a name written by MarshalText.
func (m *AuthMethod) UnmarshalText(b []byte) error {
	v, err := ParseAuthMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ForwardKind is the type of a forward rule.
type ForwardKind int

const (
	ForwardLocal   ForwardKind = iota + 1 // ssh -L: raw TCP from a local port to a port reachable from the server
	ForwardWeb                            // like Local, through Porthole's HTTP-aware proxy (tabs)
	ForwardRemote                         // ssh -R: the server listens; connections come back to a local target
	ForwardDynamic                        // ssh -D: a local SOCKS5 proxy
)

// AllForwardKinds lists every ForwardKind.
var AllForwardKinds = []ForwardKind{ForwardLocal, ForwardWeb, ForwardRemote, ForwardDynamic}

// String is the name used in the file: "local", "web", "remote", "dynamic".
func (k ForwardKind) String() string {
	switch k {
	case ForwardLocal:
		return "local"
	case ForwardWeb:
		return "web"
	case ForwardRemote:
		return "remote"
	case ForwardDynamic:
		return "dynamic"
	}
	return fmt.Sprintf("ForwardKind(%d)", int(k))
}

// ParseForwardKind is the inverse of String.
func ParseForwardKind(s string) (ForwardKind, error) {
	for _, k := range AllForwardKinds {
		if s == k.String() {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown forward kind %q (known: local, web, remote, dynamic)", s)
}

// MarshalText writes the name; an unknown value is an error.
func (k ForwardKind) MarshalText() ([]byte, error) {
	if _, err := ParseForwardKind(k.String()); err != nil {
		return nil, err
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a name written by MarshalText.
func (k *ForwardKind) UnmarshalText(b []byte) error {
	v, err := ParseForwardKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ForwardRule is a saved forward. What "local" and "remote" mean depends on
// the kind:
//
//   - ForwardLocal, ForwardWeb: LocalHost:LocalPort is the listener on this
//     machine (both optional: "" and 0 let Porthole choose a stable endpoint),
//     RemoteHost:RemotePort is the target as seen from the server (port
//     required; host "" means localhost).
//   - ForwardDynamic: LocalHost:LocalPort is the SOCKS listener (optional);
//     Remote* must be empty.
//   - ForwardRemote: RemoteHost:RemotePort is the listener on the server
//     (host "" means the server's loopback; port 0 lets the server choose),
//     LocalHost:LocalPort is the target on this machine (port required; host
//     "" means localhost).
//
// The model leaves room for more kinds (Unix sockets: a path instead of a
// host and port) without changing the existing fields.
type ForwardRule struct {
	// ID is random, assigned when the rule is added (rules.Manager.Add),
	// and never changes; "" in rules written by hand or by older versions
	// (they get one when the server's rules are next saved).
	ID         string      `json:"id,omitempty"`
	Kind       ForwardKind `json:"kind"`
	Label      string      `json:"label,omitempty"`
	LocalHost  string      `json:"localHost,omitempty"`
	LocalPort  int         `json:"localPort,omitempty"`
	RemoteHost string      `json:"remoteHost,omitempty"`
	RemotePort int         `json:"remotePort,omitempty"`
	// ConnectAtStart connects the server when Porthole starts, so that the
	// rule is up without a click.
	ConnectAtStart bool `json:"connectAtStart,omitempty"`
}

// Duration is a time.Duration that is written to JSON as a Go duration
// string ("30s") and read from such a string or from a number of seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is time.Duration's String.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "1m30s" or a number of seconds (90, 0.5).
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("duration %q: write it like \"30s\", \"5m\" or \"1h30m\": %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration %s: want a string like \"30s\" or a number of seconds", b)
	}
	ns := secs * float64(time.Second)
	if math.IsNaN(ns) || ns >= math.MaxInt64 || ns < math.MinInt64 {
		return fmt.Errorf("duration %s seconds is out of range", b)
	}
	*d = Duration(ns)
	return nil
}
