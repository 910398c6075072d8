package sshconn

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Options are the explicit settings of one connection, like ssh's flags.
// They override the ssh_config files. They apply to the destination only,
// not to its jump hosts (as with ssh, whose -o options do not reach the
// ProxyJump hops).
type Options struct {
	User          string   // like ssh -l; "" = from the destination or the config
	Port          int      // like ssh -p; 0 = from the destination or the config
	IdentityFiles []string // like ssh -i; tried before the config's IdentityFile entries
	ProxyJump     string   // like ssh -J; "" = from the config, "none" = no jump hosts

	// ConfigOverrides are "-o Key=Value" options (see ParseOption); keys are
	// case-insensitive. An option Porthole does not implement is an error
	// wrapping ErrUnsupported.
	ConfigOverrides map[string]string

	// ConfigPath is the user config file, like ssh -F. "" = HomeDir/.ssh/config
	// (a missing default file is fine; a missing explicit file is an error).
	// "none" reads no user config. As with ssh -F, giving ConfigPath also
	// skips the system-wide file unless SystemConfigPath is set.
	ConfigPath string
	// SystemConfigPath is the system-wide file. "" = /etc/ssh/ssh_config when
	// ConfigPath is "", none otherwise; "none" = none.
	SystemConfigPath string
	// HomeDir replaces the user's home directory for ~ and %d and the default
	// files (~/.ssh/config, ~/.ssh/id_*, ~/.ssh/known_hosts). "" = os.UserHomeDir().
	//
	// Limitation of github.com/kevinburke/ssh_config: a relative Include
	// directive ("Include conf.d/*") is resolved against the real home
	// directory, not HomeDir. Absolute Include paths work everywhere.
	HomeDir string
}

// Config is one fully resolved SSH destination.
type Config struct {
	Alias    string // the name given by the user, matched against Host patterns
	HostName string // the name or address actually dialed
	User     string
	Port     int

	IdentityFiles  []string // absolute paths, in the order tried; missing files are skipped
	IdentitiesOnly bool     // only offer agent keys that match IdentityFiles
	IdentityAgent  string   // agent socket: "" = $SSH_AUTH_SOCK, "none" = no agent

	// Jumps are the ProxyJump hops in connection order (Jumps[0] is dialed
	// first). They are flat: a hop's own Jumps is always empty.
	Jumps []*Config

	ConnectTimeout time.Duration // TCP connect and SSH handshake; 0 = DefaultConnectTimeout
	AliveInterval  time.Duration // ServerAliveInterval: how often a user of the connection should Ping; 0 = never
	AliveCountMax  int           // ServerAliveCountMax: missed pings before giving up; 0 means 3

	KnownHostsFiles       []string   // UserKnownHostsFile; new keys are written to the first one
	GlobalKnownHostsFiles []string   // GlobalKnownHostsFile; read only
	StrictHostKeyChecking StrictMode // see StrictMode for what Porthole does with each value
	HashKnownHosts        bool       // hash host names of entries Porthole adds
	// ExitOnForwardFailure: a forward that cannot be set up ends the
	// command (ssh's ExitOnForwardFailure); false = log it, keep the others.
	ExitOnForwardFailure bool
	HostKeyAlias         string   // name to look up in known_hosts instead of HostName
	Ciphers              []string // Ciphers (like ssh -c); nil = x/crypto's defaults

	AuthMethods             []AuthKind // in the order tried; nil = DefaultAuthOrder, empty = none
	NumberOfPasswordPrompts int        // password / passphrase attempts; 0 means 3

	HomeDir string // for shortening paths in messages ("~/.ssh/id_ed25519")
}

// DefaultConnectTimeout is used when ConnectTimeout is not set.
const DefaultConnectTimeout = 30 * time.Second

// Addr is HostName:Port.
func (c *Config) Addr() string { return net.JoinHostPort(c.HostName, strconv.Itoa(c.Port)) }

// String is "user@host:port".
func (c *Config) String() string { return c.User + "@" + c.Addr() }

// PingDefaults are the keepalive settings from ServerAliveInterval and
// ServerAliveCountMax: ping every interval (0 = the config asks for no
// periodic pings), and give up after timeout = interval × count (OpenSSH
// declares the server dead after that many unanswered keepalives), or
// DefaultPingTimeout when no interval is set.
func (c *Config) PingDefaults() (interval, timeout time.Duration) {
	if c.AliveInterval <= 0 {
		return 0, DefaultPingTimeout
	}
	n := c.AliveCountMax
	if n <= 0 {
		n = 3
	}
	return c.AliveInterval, c.AliveInterval * time.Duration(n)
}

func (c *Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (c *Config) passwordPrompts() int {
	if c.NumberOfPasswordPrompts > 0 {
		return c.NumberOfPasswordPrompts
	}
	return 3
}

// knownHostsName is the host:port under which known_hosts records this host.
func (c *Config) knownHostsName() string {
	if c.HostKeyAlias != "" {
		return net.JoinHostPort(c.HostKeyAlias, "22")
	}
	return c.Addr()
}

// shortPath writes paths under HomeDir as ~/…, for messages.
func (c *Config) shortPath(p string) string {
	if c.HomeDir == "" {
		return p
	}
	rel, err := filepath.Rel(c.HomeDir, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return p
	}
	return "~/" + filepath.ToSlash(rel)
}

// supportedOverrides are the ssh_config keywords Porthole implements, in lower case.
var supportedOverrides = []string{
	"connecttimeout", "globalknownhostsfile", "hashknownhosts", "hostkeyalias", "hostname",
	"clearallforwardings", "exitonforwardfailure", "identitiesonly", "identityagent", "identityfile", "kbdinteractiveauthentication",
	"challengeresponseauthentication", "ciphers", "numberofpasswordprompts", "passwordauthentication",
	"port", "preferredauthentications", "proxycommand", "proxyjump", "pubkeyauthentication",
	"serveralivecountmax", "serveraliveinterval", "stricthostkeychecking", "user",
	"userknownhostsfile",
}

// defaultIdentityNames are OpenSSH's default identity files under ~/.ssh.
var defaultIdentityNames = []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"}

const maxJumpDepth = 10

// Resolve resolves hostArg ("host", "user@host", "user@host:port" or
// "ssh://user@host:port") into a Config the way OpenSSH does: explicit
// options first, then the user's ~/.ssh/config, then /etc/ssh/ssh_config,
// first value wins (IdentityFile accumulates). Jump hosts are resolved
// through the config too.
func Resolve(hostArg string, opts Options) (*Config, error) {
	dest, err := ParseDestination(hostArg)
	if err != nil {
		return nil, err
	}
	r, err := newResolver(opts)
	if err != nil {
		return nil, err
	}
	return r.resolve(dest, true, nil)
}

type resolver struct {
	opts      Options
	home      string
	localUser string
	files     []*ssh_config.Config // user config, then system config
	overrides map[string]string    // lower-case key
}

func newResolver(opts Options) (*resolver, error) {
	r := &resolver{opts: opts, home: opts.HomeDir}
	if r.home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("%w: cannot find the home directory (%v); set HomeDir", ErrConfig, err)
		}
		r.home = h
	}
	r.home = filepath.Clean(r.home)
	if u, err := user.Current(); err == nil {
		r.localUser = u.Username
	} else {
		r.localUser = os.Getenv("USER")
	}

	r.overrides = make(map[string]string, len(opts.ConfigOverrides))
	for k, v := range opts.ConfigOverrides {
		lk := strings.ToLower(k)
		if !slices.Contains(supportedOverrides, lk) {
			return nil, fmt.Errorf("%w: option %s=%s (supported: %s)", ErrUnsupported, k, v, strings.Join(supportedOverrides, ", "))
		}
		r.overrides[lk] = v
	}

	userPath, userExplicit := opts.ConfigPath, opts.ConfigPath != ""
	if !userExplicit {
		userPath = filepath.Join(r.home, ".ssh", "config")
	}
	sysPath := opts.SystemConfigPath
	if sysPath == "" && !userExplicit {
		sysPath = "/etc/ssh/ssh_config"
	}
	for _, f := range []struct {
		path     string
		explicit bool
	}{{userPath, userExplicit}, {sysPath, opts.SystemConfigPath != ""}} {
		if f.path == "" || strings.EqualFold(f.path, "none") {
			continue
		}
		c, err := loadConfigFile(expandTilde(f.path, r.home), f.explicit)
		if err != nil {
			return nil, err
		}
		if c != nil {
			r.files = append(r.files, c)
		}
	}
	return r, nil
}

func loadConfigFile(path string, explicit bool) (*ssh_config.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: reading %s: %v", ErrConfig, path, err)
	}
	c, err := ssh_config.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (fix the file; it was not changed)", ErrConfig, path, err)
	}
	return c, nil
}

// get returns the first value of key for alias: overrides (when useOverrides), then the files.
func (r *resolver) get(alias, key string, useOverrides bool) (string, error) {
	if useOverrides {
		if v, ok := r.overrides[strings.ToLower(key)]; ok {
			return v, nil
		}
	}
	for _, f := range r.files {
		v, err := f.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("%w: %s for %s: %v", ErrConfig, key, alias, err)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

// getAll returns every value of key for alias: overrides first, then each file.
func (r *resolver) getAll(alias, key string, useOverrides bool) ([]string, error) {
	var all []string
	if useOverrides {
		if v, ok := r.overrides[strings.ToLower(key)]; ok {
			all = append(all, v)
		}
	}
	for _, f := range r.files {
		vs, err := f.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s for %s: %v", ErrConfig, key, alias, err)
		}
		all = append(all, vs...)
	}
	return all, nil
}

func parseYesNo(key, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s %q: want yes or no", ErrConfig, key, v)
}

func parseSeconds(key, v string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<31/int(time.Second/time.Millisecond) {
		return 0, fmt.Errorf("%w: %s %q: want a number of seconds", ErrConfig, key, v)
	}
	return time.Duration(n) * time.Second, nil
}

// ParseStrictMode parses a StrictHostKeyChecking value.
func ParseStrictMode(v string) (StrictMode, error) {
	switch strings.ToLower(v) {
	case "ask", "":
		return StrictAsk, nil
	case "yes", "true":
		return StrictYes, nil
	case "accept-new":
		return StrictAcceptNew, nil
	case "no", "off", "false":
		return StrictNo, nil
	}
	return StrictAsk, fmt.Errorf("%w: StrictHostKeyChecking %q: want yes, accept-new, no or ask", ErrConfig, v)
}

// resolve resolves one destination. top is true for the user's destination
// (Options apply); chain holds the aliases of the enclosing first hops, to
// detect ProxyJump loops.
func (r *resolver) resolve(dest Destination, top bool, chain []string) (*Config, error) {
	alias := dest.Host
	if len(chain) > maxJumpDepth {
		return nil, fmt.Errorf("%w: ProxyJump chain deeper than %d hops (%s)", ErrConfig, maxJumpDepth, strings.Join(chain, " → "))
	}
	get := func(key string) (string, error) { return r.get(alias, key, top) }
	c := &Config{Alias: alias, HomeDir: r.home}

	// HostName
	hn, err := get("HostName")
	if err != nil {
		return nil, err
	}
	if hn == "" {
		c.HostName = alias
	} else if c.HostName, err = expandTokens(hn, map[byte]string{'h': alias}); err != nil {
		return nil, fmt.Errorf("HostName for %s: %w", alias, err)
	}

	// User: -l, then -o User, then user@ in the destination, then the config, then the local user.
	cfgUser, err := get("User")
	if err != nil {
		return nil, err
	}
	_, userOverridden := r.overrides["user"]
	switch {
	case top && r.opts.User != "":
		c.User = r.opts.User
	case top && userOverridden:
		c.User = cfgUser
	case dest.User != "":
		c.User = dest.User
	case cfgUser != "":
		c.User = cfgUser
	default:
		c.User = r.localUser
	}

	// Port: -p, then -o Port, then :port in the destination, then the config, then 22.
	cfgPort, err := get("Port")
	if err != nil {
		return nil, err
	}
	_, portOverridden := r.overrides["port"]
	portStr := ""
	switch {
	case top && r.opts.Port != 0:
		if r.opts.Port < 1 || r.opts.Port > 65535 {
			return nil, fmt.Errorf("%w: port %d is out of range 1-65535", ErrConfig, r.opts.Port)
		}
		c.Port = r.opts.Port
	case top && portOverridden:
		portStr = cfgPort
	case dest.Port != 0:
		c.Port = dest.Port
	case cfgPort != "":
		portStr = cfgPort
	default:
		c.Port = 22
	}
	if portStr != "" {
		if c.Port, err = parsePort(portStr); err != nil {
			return nil, fmt.Errorf("%w: Port for %s: %v", ErrConfig, alias, err)
		}
	}

	if v, err := get("HostKeyAlias"); err != nil {
		return nil, err
	} else {
		c.HostKeyAlias = v
	}
	if v, err := get("Ciphers"); err != nil {
		return nil, err
	} else if v != "" {
		if c.Ciphers, err = parseCiphers(v); err != nil {
			return nil, fmt.Errorf("%w: Ciphers for %s: %v", ErrConfig, alias, err)
		}
	}

	uid := strconv.Itoa(os.Getuid())
	fqdn, _ := os.Hostname()
	short, _, _ := strings.Cut(fqdn, ".")
	keyAlias := c.HostKeyAlias
	if keyAlias == "" {
		keyAlias = alias
	}
	tokens := map[byte]string{
		'd': r.home, 'h': c.HostName, 'p': strconv.Itoa(c.Port), 'r': c.User, 'u': r.localUser,
		'n': alias, 'l': fqdn, 'L': short, 'i': uid, 'k': keyAlias,
	}
	expandPath := func(key, p string) (string, error) {
		e, err := expandTokens(p, tokens)
		if err != nil {
			return "", fmt.Errorf("%s for %s: %w", key, alias, err)
		}
		return expandTilde(e, r.home), nil
	}

	// IdentityFile accumulates: -i, -o, then every matching config line.
	var ids []string
	if top {
		ids = append(ids, r.opts.IdentityFiles...)
	}
	cfgIDs, err := r.getAll(alias, "IdentityFile", top)
	if err != nil {
		return nil, err
	}
	ids = append(ids, cfgIDs...)
	for _, id := range ids {
		if strings.EqualFold(id, "none") {
			continue
		}
		p, err := expandPath("IdentityFile", id)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(c.IdentityFiles, p) {
			c.IdentityFiles = append(c.IdentityFiles, p)
		}
	}
	if len(ids) == 0 {
		for _, n := range defaultIdentityNames {
			c.IdentityFiles = append(c.IdentityFiles, filepath.Join(r.home, ".ssh", n))
		}
	}

	if v, err := get("IdentitiesOnly"); err != nil {
		return nil, err
	} else if v != "" {
		if c.IdentitiesOnly, err = parseYesNo("IdentitiesOnly", v); err != nil {
			return nil, err
		}
	}
	if v, err := get("IdentityAgent"); err != nil {
		return nil, err
	} else if v != "" && v != "SSH_AUTH_SOCK" {
		if strings.EqualFold(v, "none") {
			c.IdentityAgent = "none"
		} else if strings.HasPrefix(v, "$") {
			c.IdentityAgent = os.Getenv(strings.TrimPrefix(v, "$"))
		} else if c.IdentityAgent, err = expandPath("IdentityAgent", v); err != nil {
			return nil, err
		}
	}

	if v, err := get("ConnectTimeout"); err != nil {
		return nil, err
	} else if v != "" && !strings.EqualFold(v, "none") {
		if c.ConnectTimeout, err = parseSeconds("ConnectTimeout", v); err != nil {
			return nil, err
		}
	}
	if v, err := get("ServerAliveInterval"); err != nil {
		return nil, err
	} else if v != "" {
		if c.AliveInterval, err = parseSeconds("ServerAliveInterval", v); err != nil {
			return nil, err
		}
	}
	c.AliveCountMax = 3
	if v, err := get("ServerAliveCountMax"); err != nil {
		return nil, err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: ServerAliveCountMax %q: want a number", ErrConfig, v)
		}
		c.AliveCountMax = n
	}

	// known_hosts
	knownFiles := func(key string, defaults []string) ([]string, error) {
		v, err := get(key)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return defaults, nil
		}
		if strings.EqualFold(v, "none") {
			return nil, nil
		}
		var out []string
		for _, f := range strings.Fields(v) {
			p, err := expandPath(key, f)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	if c.KnownHostsFiles, err = knownFiles("UserKnownHostsFile", []string{
		filepath.Join(r.home, ".ssh", "known_hosts"), filepath.Join(r.home, ".ssh", "known_hosts2"),
	}); err != nil {
		return nil, err
	}
	if c.GlobalKnownHostsFiles, err = knownFiles("GlobalKnownHostsFile", []string{
		"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2",
	}); err != nil {
		return nil, err
	}
	if v, err := get("StrictHostKeyChecking"); err != nil {
		return nil, err
	} else if c.StrictHostKeyChecking, err = ParseStrictMode(v); err != nil {
		return nil, err
	}
	if v, err := get("HashKnownHosts"); err != nil {
		return nil, err
	} else if v != "" {
		if c.HashKnownHosts, err = parseYesNo("HashKnownHosts", v); err != nil {
			return nil, err
		}
	}
	if v, err := get("ExitOnForwardFailure"); err != nil {
		return nil, err
	} else if v != "" {
		if c.ExitOnForwardFailure, err = parseYesNo("ExitOnForwardFailure", v); err != nil {
			return nil, err
		}
	}

	// Authentication methods.
	if c.AuthMethods, err = r.authMethods(get); err != nil {
		return nil, err
	}
	if v, err := get("NumberOfPasswordPrompts"); err != nil {
		return nil, err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: NumberOfPasswordPrompts %q: want a positive number", ErrConfig, v)
		}
		c.NumberOfPasswordPrompts = n
	}

	// ProxyJump. For the destination: -J, then -o/config. For the first hop of
	// a chain: its own config (so "bastion" may itself need a jump). Later
	// hops ignore their own ProxyJump, as with OpenSSH.
	jump := ""
	if top && r.opts.ProxyJump != "" {
		jump = r.opts.ProxyJump
	} else if top || chain != nil {
		if jump, err = get("ProxyJump"); err != nil {
			return nil, err
		}
	}
	proxyCmd, err := get("ProxyCommand")
	if err != nil {
		return nil, err
	}
	if (jump == "" || strings.EqualFold(jump, "none")) && proxyCmd != "" && !strings.EqualFold(proxyCmd, "none") {
		return nil, fmt.Errorf("%w: ProxyCommand for %s (Porthole never runs commands); use ProxyJump instead", ErrUnsupported, alias)
	}
	// A loop can only come from following ProxyJump entries; a hop that
	// merely shares an alias with the destination (127.0.0.1 on another
	// port, say) and has no ProxyJump of its own is fine.
	if jump != "" && !strings.EqualFold(jump, "none") && slices.Contains(chain, alias) {
		return nil, fmt.Errorf("%w: ProxyJump loop: %s → %s", ErrConfig, strings.Join(chain, " → "), alias)
	}
	if jump != "" {
		hops, err := ParseProxyJump(jump)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump for %s: %w", alias, err)
		}
		for i, h := range hops {
			var sub []string
			if i == 0 {
				sub = append(slices.Clone(chain), alias)
			}
			hc, err := r.resolve(h, false, sub)
			if err != nil {
				return nil, fmt.Errorf("jump host %s: %w", h, err)
			}
			c.Jumps = append(c.Jumps, hc.Jumps...)
			hc.Jumps = nil
			c.Jumps = append(c.Jumps, hc)
		}
	}
	return c, nil
}

// authMethods computes the method order from PreferredAuthentications and
// the *Authentication yes/no switches.
func (r *resolver) authMethods(get func(string) (string, error)) ([]AuthKind, error) {
	order := DefaultAuthOrder
	if v, err := get("PreferredAuthentications"); err != nil {
		return nil, err
	} else if v != "" {
		order = nil
		for _, m := range strings.Split(v, ",") {
			switch strings.TrimSpace(strings.ToLower(m)) {
			case "publickey":
				order = append(order, AuthPublicKey)
			case "keyboard-interactive":
				order = append(order, AuthKeyboardInteractive)
			case "password":
				order = append(order, AuthPassword)
			}
		}
	}
	disabled := map[AuthKind][]string{
		AuthPublicKey:           {"PubkeyAuthentication"},
		AuthKeyboardInteractive: {"KbdInteractiveAuthentication", "ChallengeResponseAuthentication"},
		AuthPassword:            {"PasswordAuthentication"},
	}
	var out []AuthKind
	for _, k := range order {
		on := true
		for _, key := range disabled[k] {
			v, err := get(key)
			if err != nil {
				return nil, err
			}
			if v == "" {
				continue
			}
			b, err := parseYesNo(key, v)
			if err != nil {
				// PubkeyAuthentication also takes "unbound"/"host-bound".
				if k == AuthPublicKey && (strings.EqualFold(v, "unbound") || strings.EqualFold(v, "host-bound")) {
					b = true
				} else {
					return nil, err
				}
			}
			on = b
			break
		}
		if on && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if out == nil {
		out = []AuthKind{} // every method disabled: not the same as nil (the default order)
	}
	return out, nil
}
