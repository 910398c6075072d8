package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// loginRunner is one connected server login. Today it runs in-process
// (inProcessLogin); the sandbox moves each login into its own `porthole
// agent` process behind the same interface.
type loginRunner interface {
	// Connect makes sure the login is connected now, asking the user what
	// it must through the prompt broker. It returns the reason it could not
	// connect (an sshconn error, a prompt error or ctx's error).
	Connect(ctx context.Context) error
	// State is the connection's current state.
	State() forwarder.StateInfo
	// Close disconnects and stops everything the login started.
	Close() error
}

// sshBase is what every login's ssh_config resolution and dial share.
type sshBase struct {
	HomeDir          string // "" = the user's home
	ConfigPath       string // "" = ~/.ssh/config; "none" = no user config
	SystemConfigPath string // "" = /etc/ssh/ssh_config (when ConfigPath is ""); "none" = none
	AgentSocket      string // "" = $SSH_AUTH_SOCK / IdentityAgent; "none" = no agent
	KnownHostsFiles  []string
}

// loginEnv is what a login needs from the app.
type loginEnv struct {
	log      *slog.Logger // writes to the server's log (and the app log)
	broker   *promptBroker
	secrets  profiles.SecretStore // may be nil: nothing is remembered
	keyring  func() KeyringStatus // whether remembering can work now
	ssh      sshBase
	onStep   func(step sshconn.Step, detail string)
	onEvent  func(forwarder.Event)
	timeouts loginTimeouts
}

type loginTimeouts struct {
	// connect bounds one connection attempt including every question asked.
	connect time.Duration
	// prompt is the broker's timeout, for the words of error messages.
	prompt time.Duration
}

// newLoginFunc makes the runner of one login (a seam for tests and for the sandbox).
type newLoginFunc func(p profiles.Profile, env loginEnv) loginRunner

// inProcessLogin runs a forwarder.Session in this process.
type inProcessLogin struct {
	p   profiles.Profile
	env loginEnv

	session       *forwarder.Session
	everConnected atomic.Bool
	interactive   atomic.Int32 // Connect calls in progress (a user waits)

	mu      sync.Mutex
	lastErr error // why the last dial failed (nil after a success)
}

func newInProcessLogin(p profiles.Profile, env loginEnv) loginRunner {
	l := &inProcessLogin{p: p, env: env}
	idle := p.Options.IdleTimeout.D()
	if idle <= 0 {
		idle = -1 // stay connected until the user disconnects
	}
	l.session = forwarder.NewSession(forwarder.ConnectorFunc(l.dial), forwarder.SessionOptions{
		Name:              p.Name,
		Logger:            env.log,
		Publisher:         forwarder.PublisherFunc(func(e forwarder.Event) { env.onEvent(e) }),
		IdleTimeout:       idle,
		PingIdleThreshold: p.Options.PingThreshold.D(),
		ConnectTimeout:    env.timeouts.connect,
		Pool:              forwarder.PoolOptions{MaxPerTarget: p.Options.PoolSize},
	})
	return l
}

func (l *inProcessLogin) State() forwarder.StateInfo { return l.session.State() }

func (l *inProcessLogin) Close() error { return l.session.Close() }

func (l *inProcessLogin) Connect(ctx context.Context) error {
	l.interactive.Add(1)
	defer l.interactive.Add(-1)
	err := l.session.Connect(ctx)
	if err == nil {
		return nil
	}
	l.mu.Lock()
	cause := l.lastErr
	l.mu.Unlock()
	if cause != nil && ctx.Err() == nil {
		return cause // the dial's own error, without the Session's wrapping
	}
	return err
}

// dial is the Session's Connector: resolve the profile again (so ssh_config
// edits apply), then dial with the prompt broker as Prompter.
func (l *inProcessLogin) dial(ctx context.Context) (forwarder.SSHClient, error) {
	c, err := l.dialOnce(ctx)
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
	if err != nil {
		// While a user waits, or before the first success, every failure is
		// final: the user sees it at once instead of retries in the dark.
		// Later (background reconnects) only the hopeless ones are.
		if l.interactive.Load() > 0 || !l.everConnected.Load() || isFinalDialError(err) {
			return nil, fmt.Errorf("%w: %w", forwarder.ErrPermanent, err)
		}
		return nil, err
	}
	l.everConnected.Store(true)
	return c, nil
}

func (l *inProcessLogin) dialOnce(ctx context.Context) (forwarder.SSHClient, error) {
	cfg, err := resolveProfile(l.p, l.env.ssh)
	if err != nil {
		return nil, err
	}
	lp := newLoginPrompter(l.p, l.env)
	d := &sshconn.Dialer{
		Config:          cfg,
		Prompter:        lp,
		Logger:          l.env.log,
		OnStep:          l.env.onStep,
		AgentSocket:     l.env.ssh.AgentSocket,
		KnownHostsFiles: l.env.ssh.KnownHostsFiles,
	}
	if !usesAgent(l.p) {
		d.AgentSocket = "none"
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	lp.commit()
	return c, nil
}

// isFinalDialError: errors that retrying cannot fix.
func isFinalDialError(err error) bool {
	for _, e := range []error{
		sshconn.ErrAuthFailed, sshconn.ErrHostKeyMismatch, sshconn.ErrHostKeyRejected,
		sshconn.ErrHostKeyUnknown, sshconn.ErrHostKeyRevoked, sshconn.ErrConfig,
		sshconn.ErrUnsupported, sshconn.ErrWrongPassphrase, sshconn.ErrBadKey,
		errPromptCanceled, errPromptTimeout,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func usesAgent(p profiles.Profile) bool {
	for _, m := range p.AuthOrder() {
		if m == profiles.AuthAgent {
			return true
		}
	}
	return false
}

// resolveProfile turns a profile into an sshconn.Config. A profile linked to
// an ~/.ssh/config alias is resolved from the alias alone, so edits to the
// config apply at every connection. Otherwise the profile's fields are
// explicit options (like ssh -p/-l/-i/-J) over whatever ssh_config says for
// the host, as `ssh host` would do.
func resolveProfile(p profiles.Profile, base sshBase) (*sshconn.Config, error) {
	opts := sshconn.Options{HomeDir: base.HomeDir, ConfigPath: base.ConfigPath, SystemConfigPath: base.SystemConfigPath}
	if p.SSHConfigAlias != "" {
		return sshconn.Resolve(p.SSHConfigAlias, opts)
	}
	opts.User = p.User
	opts.Port = p.Port
	if p.KeyPath != "" {
		opts.IdentityFiles = []string{p.KeyPath}
	}
	if len(p.JumpHosts) > 0 {
		opts.ProxyJump = strings.Join(p.JumpHosts, ",")
	}
	if len(p.Auth) > 0 {
		opts.ConfigOverrides = map[string]string{"PreferredAuthentications": preferredAuth(p.Auth)}
	}
	host := p.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	return sshconn.Resolve(host, opts)
}

// preferredAuth maps the profile's methods to PreferredAuthentications.
func preferredAuth(methods []profiles.AuthMethod) string {
	var out []string
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, m := range methods {
		switch m {
		case profiles.AuthAgent, profiles.AuthKey:
			add("publickey")
		case profiles.AuthPassword:
			add("password")
		case profiles.AuthKeyboardInteractive:
			add("keyboard-interactive")
		}
	}
	return strings.Join(out, ",")
}

// loginPrompter is the sshconn.Prompter of one connection attempt. It tries
// a secret saved in the keyring first without asking, asks through the
// broker otherwise (saying when the saved one was rejected), and remembers
// what the user typed so that commit can save it once the login succeeded.
type loginPrompter struct {
	p   profiles.Profile
	env loginEnv

	mu          sync.Mutex
	triedSaved  map[profiles.SecretKind]bool
	savedExists map[profiles.SecretKind]bool
	asked       map[profiles.SecretKind]int
	typed       map[profiles.SecretKind]typedSecret
	used        map[profiles.SecretKind]string // the last secret of each kind handed to the server
	keyringErr  error                          // the keyring failed during this attempt
}

type typedSecret struct {
	value    string
	remember bool
}

var _ sshconn.Prompter = (*loginPrompter)(nil)

func newLoginPrompter(p profiles.Profile, env loginEnv) *loginPrompter {
	return &loginPrompter{
		p: p, env: env,
		triedSaved:  map[profiles.SecretKind]bool{},
		savedExists: map[profiles.SecretKind]bool{},
		asked:       map[profiles.SecretKind]int{},
		typed:       map[profiles.SecretKind]typedSecret{},
		used:        map[profiles.SecretKind]string{},
	}
}

// usedSecrets returns the secrets the last answers gave, by kind. After a
// successful login they are the ones that worked.
func (lp *loginPrompter) usedSecrets() (password, passphrase string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.used[profiles.SecretPassword], lp.used[profiles.SecretKeyPassphrase]
}

func (lp *loginPrompter) base(kind PromptKind, user, host, hop string) Prompt {
	pr := Prompt{ServerID: lp.p.ID, ServerName: lp.p.Name, Kind: kind, User: user, Host: host}
	if strings.HasPrefix(hop, "jump host") {
		pr.Hop = hop
	}
	return pr
}

func (lp *loginPrompter) Password(ctx context.Context, req sshconn.PasswordPrompt) (string, error) {
	kind, pk := profiles.SecretPassword, PromptPassword
	if req.Kind == sshconn.PasswordKeyPassphrase {
		kind, pk = profiles.SecretKeyPassphrase, PromptPassphrase
	}
	pr := lp.base(pk, req.User, req.Host, req.Hop)
	pr.Attempt = req.Attempt
	pr.KeyPath = req.KeyPath
	if pk == PromptPassphrase {
		pr.Title = "Passphrase for " + shortHome(req.KeyPath, lp.env.ssh.HomeDir)
		pr.Message = fmt.Sprintf("The key file is encrypted. Enter its passphrase to log in to %s@%s.", req.User, req.Host)
	} else {
		pr.Title = fmt.Sprintf("Password for %s@%s", req.User, req.Host)
	}
	if pr.Hop != "" {
		pr.Message = strings.TrimSpace(pr.Message + " Asked by " + pr.Hop + ".")
	}
	return lp.secret(ctx, kind, pr)
}

// isPasswordRound tells a keyboard-interactive round that only asks for the
// account password (PAM's "Password: ") from real challenges (OTP, 2FA):
// such a round is answered like a password prompt, so the saved password
// works for servers that log in through PAM.
func isPasswordRound(req sshconn.KIPrompt) bool {
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

func (lp *loginPrompter) KeyboardInteractive(ctx context.Context, req sshconn.KIPrompt) ([]string, error) {
	if isPasswordRound(req) {
		pr := lp.base(PromptPassword, req.User, req.Host, req.Hop)
		pr.Title = fmt.Sprintf("Password for %s@%s", req.User, req.Host)
		pr.Message = strings.TrimSpace(req.Instruction)
		s, err := lp.secret(ctx, profiles.SecretPassword, pr)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	pr := lp.base(PromptKeyboardInteractive, req.User, req.Host, req.Hop)
	pr.Title = fmt.Sprintf("%s@%s asks", req.User, req.Host)
	pr.Name = req.Name
	pr.Instruction = req.Instruction
	for _, q := range req.Questions {
		pr.Questions = append(pr.Questions, PromptQuestion{Prompt: q.Prompt, Echo: q.Echo})
	}
	lp.env.log.Info("the server asks questions (keyboard-interactive)", "questions", len(req.Questions))
	a, err := lp.env.broker.ask(ctx, pr)
	if err != nil {
		lp.env.log.Info("keyboard-interactive questions not answered", "reason", err)
		return nil, err
	}
	return a.Answers, nil
}

func (lp *loginPrompter) UnknownHost(ctx context.Context, req sshconn.HostKeyPrompt) (sshconn.HostKeyDecision, error) {
	pr := lp.base(PromptHostKey, "", req.Address, req.Hop)
	pr.Title = "Unknown host key"
	pr.Message = fmt.Sprintf("Porthole has not connected to %s before. Check that this fingerprint is the server's before you trust it.", req.Host)
	pr.HostKey = &HostKeyInfo{
		Host: req.Host, Address: req.Address, KeyType: req.KeyType, Fingerprint: req.Fingerprint,
		KnownHostsFile: req.KnownHostsFile, OtherKnownTypes: req.OtherKnownTypes,
	}
	a, err := lp.env.broker.ask(ctx, pr)
	if err != nil {
		lp.env.log.Info("host key question not answered", "reason", err)
		return sshconn.Reject, err
	}
	lp.env.log.Info("host key answer", "host", req.Host, "type", req.KeyType, "fingerprint", req.Fingerprint, "choice", a.HostKey)
	switch a.HostKey {
	case HostKeyAcceptOnce:
		return sshconn.AcceptOnce, nil
	case HostKeyAcceptAlways:
		return sshconn.AcceptAndSave, nil
	}
	return sshconn.Reject, nil
}

// secret answers a password or passphrase question: the saved secret the
// first time, then the user.
func (lp *loginPrompter) secret(ctx context.Context, kind profiles.SecretKind, pr Prompt) (string, error) {
	what := "password"
	if kind == profiles.SecretKeyPassphrase {
		what = "passphrase"
	}
	lp.mu.Lock()
	tried := lp.triedSaved[kind]
	lp.triedSaved[kind] = true
	lp.mu.Unlock()
	if !tried && lp.env.secrets != nil && lp.p.ID != "" {
		v, err := lp.env.secrets.Get(lp.p.ID, kind)
		switch {
		case err == nil:
			lp.mu.Lock()
			lp.savedExists[kind] = true
			lp.used[kind] = v
			lp.mu.Unlock()
			lp.env.log.Info("using the " + what + " saved in the keyring")
			return v, nil
		case errors.Is(err, profiles.ErrSecretNotFound):
		default:
			lp.mu.Lock()
			lp.keyringErr = err
			lp.mu.Unlock()
			lp.env.log.Warn("cannot read the keyring; asking instead", "err", err)
		}
	}

	lp.mu.Lock()
	saved, asked, kerr := lp.savedExists[kind], lp.asked[kind], lp.keyringErr
	lp.asked[kind]++
	lp.mu.Unlock()
	switch {
	case saved && asked == 0 && kind == profiles.SecretKeyPassphrase:
		pr.Notice = "The passphrase saved in the keychain did not unlock the key."
	case saved && asked == 0:
		pr.Notice = "The password saved in the keychain was not accepted."
	case asked > 0 && kind == profiles.SecretKeyPassphrase:
		pr.Notice = "Wrong passphrase. Try again."
	case asked > 0:
		pr.Notice = "That password was not accepted. Try again."
	}
	pr.Remember = saved
	ks := KeyringStatus{Available: true}
	if lp.env.keyring != nil {
		ks = lp.env.keyring()
	}
	switch {
	case lp.env.secrets == nil:
		pr.KeyringMessage = "Remembering is off: Porthole has no keyring here."
	case (kerr != nil && errors.Is(kerr, profiles.ErrKeyringUnavailable)) || !ks.Available:
		pr.KeyringMessage = keyringOffMessage
	default:
		pr.CanRemember = true
	}
	if !pr.CanRemember {
		pr.Remember = false
	}
	lp.env.log.Info("asking for the "+what, "attempt", asked+1)
	a, err := lp.env.broker.ask(ctx, pr)
	if err != nil {
		lp.env.log.Info("the "+what+" question was not answered", "reason", err)
		return "", err
	}
	lp.mu.Lock()
	lp.typed[kind] = typedSecret{value: a.Secret, remember: a.Remember && pr.CanRemember}
	lp.used[kind] = a.Secret
	lp.mu.Unlock()
	return a.Secret, nil
}

// keyringOffMessage explains a disabled "remember"; KeyringStatus says why.
const keyringOffMessage = "The system keyring is not available, so Porthole cannot remember this: it asks each time and never writes secrets to disk."

// commit runs after a successful login: secrets typed with "remember" go to
// the keyring; a saved secret the user chose not to keep is removed.
func (lp *loginPrompter) commit() {
	if lp.env.secrets == nil || lp.p.ID == "" {
		return
	}
	lp.mu.Lock()
	typed := lp.typed
	saved := lp.savedExists
	lp.typed = map[profiles.SecretKind]typedSecret{}
	lp.mu.Unlock()
	for kind, t := range typed {
		what := kind.String()
		if t.remember {
			if err := lp.env.secrets.Set(lp.p.ID, kind, t.value); err != nil {
				lp.env.log.Warn("could not save the "+what+" in the keyring; Porthole will ask again next time", "err", err)
				continue
			}
			lp.env.log.Info("saved the " + what + " in the keyring")
		} else if saved[kind] {
			if err := lp.env.secrets.Delete(lp.p.ID, kind); err != nil {
				lp.env.log.Warn("could not remove the old "+what+" from the keyring", "err", err)
				continue
			}
			lp.env.log.Info("removed the saved " + what + " from the keyring")
		}
	}
}

// shortHome writes a path under home as ~/….
func shortHome(p, home string) string {
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil || h == "" {
			return p
		}
		home = h
	}
	if rest, ok := strings.CutPrefix(p, strings.TrimSuffix(home, "/")+"/"); ok {
		return "~/" + rest
	}
	return p
}

// hostPort is "host:port" with IPv6 in brackets.
func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
