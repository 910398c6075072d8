package sshconn

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authenticator drives ssh.ClientConfig.AuthCallback for one hop, in
// OpenSSH's order: agent keys, in-memory keys and identity files
// (publickey), then keyboard-interactive, then password. It remembers what
// it tried, to say so when everything fails.
type authenticator struct {
	ctx      context.Context
	hop      *Config
	label    string
	jump     bool // this hop is a jump host, not the destination
	prompter Prompter
	logger   *slog.Logger
	onStep   func(Step, string)
	wd       *watchdog

	agentSock string       // "" or "none" = no agent
	extra     []ssh.Signer // Dialer.Signers

	mu        sync.Mutex
	started   bool
	stage     int
	stages    []AuthKind
	pkBuilt   bool
	pk        []pkCandidate
	pkNext    int
	pkTried   []string // labels offered, in order, unique
	kiTried   bool
	pwTried   bool
	causes    []error // why keys could not be used
	fatal     error   // a Prompter error: abort everything
	err       error   // the error returned to x/crypto to end authentication
	agentConn net.Conn
}

type pkCandidate struct {
	label  string
	method ssh.AuthMethod
}

func newAuthenticator(ctx context.Context, hop *Config, label string, p Prompter, logger *slog.Logger, onStep func(Step, string), wd *watchdog, agentSock string, extra []ssh.Signer) *authenticator {
	stages := hop.AuthMethods
	if stages == nil {
		stages = DefaultAuthOrder
	}
	return &authenticator{
		ctx: ctx, hop: hop, label: label, prompter: p, logger: logger, onStep: onStep, wd: wd,
		agentSock: agentSock, extra: extra, stages: stages,
	}
}

func (a *authenticator) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.agentConn != nil {
		a.agentConn.Close()
		a.agentConn = nil
	}
}

// next is the ssh.ClientAuthCallback.
func (a *authenticator) next(actx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started {
		a.started = true
		if a.onStep != nil {
			a.onStep(StepAuthenticating, fmt.Sprintf("%s: server accepts %v", a.label, actx.AllowedMethods))
		}
	}
	if a.fatal != nil {
		a.err = a.fatal
		return nil, a.fatal
	}
	for a.stage < len(a.stages) {
		kind := a.stages[a.stage]
		if slices.Contains(actx.AllowedMethods, kind.String()) {
			switch kind {
			case AuthPublicKey:
				if !a.pkBuilt {
					a.pkBuilt = true
					a.buildPublicKeys()
				}
				if a.pkNext < len(a.pk) {
					c := a.pk[a.pkNext]
					a.pkNext++
					if !slices.Contains(a.pkTried, c.label) {
						a.pkTried = append(a.pkTried, c.label)
					}
					a.logger.Debug("offering key", "key", c.label)
					return c.method, nil
				}
			case AuthKeyboardInteractive:
				if a.prompter != nil && !a.kiTried {
					a.kiTried = true
					return ssh.RetryableAuthMethod(ssh.KeyboardInteractive(a.challenge), a.hop.passwordPrompts()), nil
				}
			case AuthPassword:
				if a.prompter != nil && !a.pwTried {
					a.pwTried = true
					attempt := 0
					return ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
						attempt++
						return a.askPassword(PasswordPrompt{Kind: PasswordLogin, Attempt: attempt})
					}), a.hop.passwordPrompts()), nil
				}
			}
		}
		a.stage++
	}
	a.err = a.failure(actx.AllowedMethods)
	return nil, a.err
}

func (a *authenticator) wasStarted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.started
}

// interrupted builds the AuthError for a server that disconnected during authentication.
func (a *authenticator) interrupted(cause error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.causes = append(a.causes, fmt.Errorf("the server closed the connection: %w", cause))
	a.err = a.failure(nil)
	return a.err
}

func (a *authenticator) failure(allowed []string) error {
	e := &AuthError{User: a.hop.User, Addr: a.hop.Addr(), Allowed: slices.Clone(allowed), Causes: a.causes}
	if len(a.pkTried) > 0 {
		e.Tried = append(e.Tried, fmt.Sprintf("publickey (%s)", joinComma(a.pkTried)))
	}
	if a.kiTried {
		e.Tried = append(e.Tried, AuthKeyboardInteractive.String())
	}
	if a.pwTried {
		e.Tried = append(e.Tried, AuthPassword.String())
	}
	return e
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// buildPublicKeys collects the publickey candidates: agent keys, then
// Dialer.Signers, then identity files (keys already offered by the agent
// are skipped; with IdentitiesOnly only agent keys matching a file are used).
func (a *authenticator) buildPublicKeys() {
	type fileKey struct {
		path   string
		pub    ssh.PublicKey // nil if unknown until decrypted
		signer ssh.Signer    // nil if encrypted
		pem    []byte
	}
	var files []fileKey
	for _, p := range a.hop.IdentityFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				a.logger.Debug("identity file does not exist", "file", p)
			} else {
				a.causes = append(a.causes, fmt.Errorf("cannot read identity file %s: %w", a.hop.shortPath(p), err))
			}
			continue
		}
		signer, err := ssh.ParsePrivateKey(b)
		var missing *ssh.PassphraseMissingError
		switch {
		case err == nil:
			files = append(files, fileKey{path: p, pub: signer.PublicKey(), signer: signer})
		case errors.As(err, &missing):
			pub := missing.PublicKey
			if pub == nil {
				pub = readPublicKey(p + ".pub")
			}
			files = append(files, fileKey{path: p, pub: pub, pem: b})
		default:
			a.causes = append(a.causes, badKeyError(a.hop.shortPath(p), b, err))
			a.logger.Warn("identity file is not a usable private key", "file", p, "err", err)
		}
	}

	var offered [][]byte
	seen := func(k ssh.PublicKey) bool {
		m := k.Marshal()
		for _, o := range offered {
			if bytes.Equal(o, m) {
				return true
			}
		}
		return false
	}
	add := func(label string, s ssh.Signer) {
		offered = append(offered, s.PublicKey().Marshal())
		a.pk = append(a.pk, pkCandidate{label: label, method: ssh.PublicKeys(s)})
	}

	// 1. agent: first its keys that match an IdentityFile, in the files'
	// order (the key the user named, e.g. with -i, goes first, as in
	// OpenSSH: each key the server rejects costs a round trip and counts
	// against its MaxAuthTries), then the others unless IdentitiesOnly.
	agentKeys := a.agentSigners()
	isFile := func(s ssh.Signer) bool {
		return slices.ContainsFunc(files, func(f fileKey) bool {
			return f.pub != nil && bytes.Equal(f.pub.Marshal(), s.PublicKey().Marshal())
		})
	}
	for _, f := range files {
		for _, s := range agentKeys {
			if f.pub != nil && bytes.Equal(f.pub.Marshal(), s.PublicKey().Marshal()) && !seen(s.PublicKey()) {
				add("agent", s)
			}
		}
	}
	for _, s := range agentKeys {
		if a.hop.IdentitiesOnly && !isFile(s) {
			continue
		}
		if !seen(s.PublicKey()) {
			add("agent", s)
		}
	}
	// 2. in-memory keys
	for _, s := range a.extra {
		if !seen(s.PublicKey()) {
			add("key "+ssh.FingerprintSHA256(s.PublicKey()), s)
		}
	}
	// 3. identity files
	for _, f := range files {
		label := a.hop.shortPath(f.path)
		switch {
		case f.signer != nil:
			if !seen(f.pub) {
				add(label, f.signer)
			}
		case a.prompter == nil:
			a.causes = append(a.causes, fmt.Errorf("%s needs a passphrase and there is no one to ask", label))
		case f.pub != nil:
			if !seen(f.pub) {
				// Offer the public key; ask the passphrase only if the server accepts it.
				add(label, &lazySigner{a: a, path: f.path, label: label, pub: f.pub, pem: f.pem})
			}
		default:
			// Old PEM-encrypted key without a .pub file: decrypt first, then offer.
			a.pk = append(a.pk, pkCandidate{label: label, method: ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
				s, err := a.decrypt(f.path, label, f.pem, nil)
				if err != nil {
					return nil, err
				}
				return []ssh.Signer{s}, nil
			})})
		}
	}
}

func readPublicKey(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pub
}

func badKeyError(label string, b []byte, err error) error {
	if _, _, _, _, perr := ssh.ParseAuthorizedKey(b); perr == nil {
		return fmt.Errorf("identity file %s is a public key, %w; name the private key (without .pub)", label, ErrBadKey)
	}
	return fmt.Errorf("identity file %s is %w (%v)", label, ErrBadKey, err)
}

func (a *authenticator) agentSigners() []ssh.Signer {
	if a.agentSock == "" || a.agentSock == "none" {
		return nil
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(a.ctx, "unix", a.agentSock)
	if err != nil {
		a.logger.Warn("cannot connect to ssh-agent", "socket", a.agentSock, "err", err)
		return nil
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		a.logger.Warn("cannot list ssh-agent keys", "socket", a.agentSock, "err", err)
		return nil
	}
	a.agentConn = conn
	return signers
}

// askPassword prompts (pausing the handshake watchdog); a Prompter error is fatal.
func (a *authenticator) askPassword(req PasswordPrompt) (string, error) {
	req.User, req.Host, req.Hop, req.Jump = a.hop.User, a.hop.Addr(), a.label, a.jump
	a.wd.pause()
	pw, err := a.prompter.Password(a.ctx, req)
	a.wd.resume()
	if err != nil {
		err = fmt.Errorf("%s prompt for %s: %w", req.Kind, a.hop, err)
		a.setFatal(err)
		return "", err
	}
	return pw, nil
}

func (a *authenticator) setFatal(err error) {
	// Called from inside x/crypto's auth methods, which run while next() is
	// not holding the lock.
	a.mu.Lock()
	if a.fatal == nil {
		a.fatal = err
	}
	a.mu.Unlock()
}

func (a *authenticator) addCause(err error) {
	a.mu.Lock()
	a.causes = append(a.causes, err)
	a.mu.Unlock()
}

// decrypt asks for the passphrase of an encrypted key up to
// NumberOfPasswordPrompts times. want, if set, is the public key the
// decrypted key must match.
func (a *authenticator) decrypt(path, label string, pem []byte, want ssh.PublicKey) (ssh.Signer, error) {
	// Prompting and the key derivation (bcrypt, slow on purpose) are local
	// work: they do not count against the handshake timeout.
	a.wd.pause()
	defer a.wd.resume()
	n := a.hop.passwordPrompts()
	for attempt := 1; attempt <= n; attempt++ {
		pass, err := a.askPassword(PasswordPrompt{Kind: PasswordKeyPassphrase, KeyPath: path, Attempt: attempt})
		if err != nil {
			return nil, err
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
		if errors.Is(err, x509.IncorrectPasswordError) {
			a.logger.Info("wrong passphrase", "file", path, "attempt", attempt)
			continue
		}
		if err != nil {
			err = badKeyError(label, pem, err)
			a.addCause(err)
			return nil, err
		}
		if want != nil && !bytes.Equal(s.PublicKey().Marshal(), want.Marshal()) {
			err := fmt.Errorf("identity file %s does not match %s.pub: %w", label, label, ErrBadKey)
			a.addCause(err)
			return nil, err
		}
		return s, nil
	}
	err := fmt.Errorf("%w for %s (%d attempts)", ErrWrongPassphrase, label, n)
	a.addCause(err)
	return nil, err
}

// lazySigner offers an encrypted key's public half and asks for the
// passphrase only when the server has accepted it, like OpenSSH.
type lazySigner struct {
	a     *authenticator
	path  string
	label string
	pub   ssh.PublicKey
	pem   []byte

	once   sync.Once
	signer ssh.Signer
	err    error
}

var _ ssh.MultiAlgorithmSigner = (*lazySigner)(nil)

func (s *lazySigner) PublicKey() ssh.PublicKey { return s.pub }

func (s *lazySigner) Algorithms() []string {
	if s.pub.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{s.pub.Type()}
}

func (s *lazySigner) load() (ssh.Signer, error) {
	s.once.Do(func() { s.signer, s.err = s.a.decrypt(s.path, s.label, s.pem, s.pub) })
	return s.signer, s.err
}

func (s *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	signer, err := s.load()
	if err != nil {
		return nil, err
	}
	return signer.Sign(rand, data)
}

func (s *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	signer, err := s.load()
	if err != nil {
		return nil, err
	}
	if as, ok := signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	if algorithm != "" && algorithm != s.pub.Type() {
		return nil, fmt.Errorf("key %s cannot sign with %s", s.label, algorithm)
	}
	return signer.Sign(rand, data)
}

// challenge answers keyboard-interactive rounds through the Prompter.
func (a *authenticator) challenge(name, instruction string, questions []string, echos []bool) ([]string, error) {
	if len(questions) == 0 {
		return []string{}, nil
	}
	req := KIPrompt{User: a.hop.User, Host: a.hop.Addr(), Name: name, Instruction: instruction, Hop: a.label, Jump: a.jump}
	for i, q := range questions {
		req.Questions = append(req.Questions, KIQuestion{Prompt: q, Echo: i < len(echos) && echos[i]})
	}
	a.wd.pause()
	answers, err := a.prompter.KeyboardInteractive(a.ctx, req)
	a.wd.resume()
	if err != nil {
		err = fmt.Errorf("keyboard-interactive prompt for %s: %w", a.hop, err)
		a.setFatal(err)
		return nil, err
	}
	if len(answers) != len(questions) {
		err := fmt.Errorf("keyboard-interactive: %d answers for %d questions", len(answers), len(questions))
		a.setFatal(err)
		return nil, err
	}
	return answers, nil
}
