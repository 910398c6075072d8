package prompts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// LoginPrompter is the sshconn.Prompter of one connection attempt. It tries
// a secret saved in the keyring first without asking, asks through the
// broker otherwise (saying when the saved one was rejected), and remembers
// what the user typed so that commit can save it once the login succeeded.
//
// Passwords are kept per hop: the profile's saved password
// (profiles.SecretPassword, also what was saved before jump hosts had
// their own) answers the destination only; a jump host gets its own saved
// password (profiles.JumpPassword) or is asked, and a remembered one is
// saved under that hop.
type LoginPrompter struct {
	p   profiles.Profile
	env LoginEnv

	mu          sync.Mutex
	triedSaved  map[slot]bool
	savedExists map[slot]bool
	asked       map[slot]int
	typed       map[slot]typedSecret
	used        map[slot]string // the last secret of each slot handed to the server
	keyringErr  error           // the keyring failed during this attempt
	askErr      error           // why the last question went unanswered
}

// slot is where a secret is saved: a kind, and for a jump host's password
// the hop's sshconn.HopID ("" = the profile's own entry).
type slot struct {
	kind profiles.SecretKind
	hop  string
}

// passwordSlot is the slot of a password asked by hop.
func passwordSlot(hop string, jump bool) slot {
	if jump {
		return slot{kind: profiles.SecretPassword, hop: hop}
	}
	return slot{kind: profiles.SecretPassword}
}

func (s slot) get(st profiles.SecretStore, id string) (string, error) {
	if s.hop != "" {
		return profiles.JumpPassword(st, id, s.hop)
	}
	return st.Get(id, s.kind)
}

func (s slot) set(st profiles.SecretStore, id, v string) error {
	if s.hop != "" {
		return profiles.SetJumpPassword(st, id, s.hop, v)
	}
	return st.Set(id, s.kind, v)
}

func (s slot) delete(st profiles.SecretStore, id string) error {
	if s.hop != "" {
		return profiles.DeleteJumpPassword(st, id, s.hop)
	}
	return st.Delete(id, s.kind)
}

func (s slot) String() string {
	if s.hop != "" {
		return "password of jump host " + s.hop
	}
	return s.kind.String()
}

type typedSecret struct {
	value    string
	remember bool
}

var _ sshconn.Prompter = (*LoginPrompter)(nil)

// LoginEnv is what a LoginPrompter needs from the app.
type LoginEnv struct {
	Log     *slog.Logger // the server's log
	Broker  *Broker
	Secrets profiles.SecretStore // nil: nothing is remembered
	// KeyringAvailable says whether remembering can work now (nil: yes).
	KeyringAvailable func() bool
	HomeDir          string // for ~/… in questions; "" = the user's home
}

// NewLoginPrompter returns the prompter of one connection attempt of p.
func NewLoginPrompter(p profiles.Profile, env LoginEnv) *LoginPrompter {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	return &LoginPrompter{
		p: p, env: env,
		triedSaved:  map[slot]bool{},
		savedExists: map[slot]bool{},
		asked:       map[slot]int{},
		typed:       map[slot]typedSecret{},
		used:        map[slot]string{},
	}
}

// UsedSecrets returns the secrets the last answers gave: the destination's
// password, the key passphrase, and the jump hosts' passwords by
// sshconn.HopID. After a successful login they are the ones that worked.
func (lp *LoginPrompter) UsedSecrets() (password, passphrase string, jumpPasswords map[string]string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for s, v := range lp.used {
		if s.hop == "" || v == "" {
			continue
		}
		if jumpPasswords == nil {
			jumpPasswords = map[string]string{}
		}
		jumpPasswords[s.hop] = v
	}
	return lp.used[slot{kind: profiles.SecretPassword}], lp.used[slot{kind: profiles.SecretKeyPassphrase}], jumpPasswords
}

func (lp *LoginPrompter) base(kind PromptKind, user, host, hop string) Prompt {
	pr := Prompt{ServerID: lp.p.ID, ServerName: lp.p.Name, Kind: kind, User: user, Host: host}
	if strings.HasPrefix(hop, "jump host") {
		pr.Hop = hop
	}
	return pr
}

func (lp *LoginPrompter) Password(ctx context.Context, req sshconn.PasswordPrompt) (string, error) {
	sl, pk := passwordSlot(req.HopID(), req.Jump), PromptPassword
	if req.Kind == sshconn.PasswordKeyPassphrase {
		sl, pk = slot{kind: profiles.SecretKeyPassphrase}, PromptPassphrase
	}
	pr := lp.base(pk, req.User, req.Host, req.Hop)
	pr.Attempt = req.Attempt
	pr.KeyPath = req.KeyPath
	if pk == PromptPassphrase {
		pr.Title = "Passphrase for " + profiles.ShortenHome(req.KeyPath, lp.env.HomeDir)
		pr.Message = fmt.Sprintf("The key file is encrypted. Enter its passphrase to log in to %s@%s.", req.User, req.Host)
	} else {
		pr.Title = fmt.Sprintf("Password for %s@%s", req.User, req.Host)
	}
	if pr.Hop != "" {
		pr.Message = strings.TrimSpace(pr.Message + " Asked by " + pr.Hop + ".")
	}
	return lp.secret(ctx, sl, pr)
}

func (lp *LoginPrompter) KeyboardInteractive(ctx context.Context, req sshconn.KIPrompt) ([]string, error) {
	if req.IsPasswordRound() {
		pr := lp.base(PromptPassword, req.User, req.Host, req.Hop)
		pr.Title = fmt.Sprintf("Password for %s@%s", req.User, req.Host)
		pr.Message = strings.TrimSpace(req.Instruction)
		s, err := lp.secret(ctx, passwordSlot(req.HopID(), req.Jump), pr)
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
	lp.env.Log.Info("the server asks questions (keyboard-interactive)", "questions", len(req.Questions))
	a, err := lp.ask(ctx, pr)
	if err != nil {
		lp.env.Log.Info("keyboard-interactive questions not answered", "reason", err)
		return nil, err
	}
	return a.Answers, nil
}

func (lp *LoginPrompter) UnknownHost(ctx context.Context, req sshconn.HostKeyPrompt) (sshconn.HostKeyDecision, error) {
	pr := lp.base(PromptHostKey, "", req.Address, req.Hop)
	pr.Title = "Unknown host key"
	pr.Message = fmt.Sprintf("Porthole has not connected to %s before. Check that this fingerprint is the server's before you trust it.", req.Host)
	pr.HostKey = &HostKeyInfo{
		Host: req.Host, Address: req.Address, KeyType: req.KeyType, Fingerprint: req.Fingerprint,
		KnownHostsFile: req.KnownHostsFile, OtherKnownTypes: req.OtherKnownTypes,
	}
	a, err := lp.ask(ctx, pr)
	if err != nil {
		lp.env.Log.Info("host key question not answered", "reason", err)
		return sshconn.Reject, err
	}
	lp.env.Log.Info("host key answer", "host", req.Host, "type", req.KeyType, "fingerprint", req.Fingerprint, "choice", a.HostKey)
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
func (lp *LoginPrompter) secret(ctx context.Context, sl slot, pr Prompt) (string, error) {
	kind := sl.kind
	what := "password"
	if kind == profiles.SecretKeyPassphrase {
		what = "passphrase"
	}
	lp.mu.Lock()
	tried := lp.triedSaved[sl]
	lp.triedSaved[sl] = true
	lp.mu.Unlock()
	if !tried && lp.env.Secrets != nil && lp.p.ID != "" {
		v, err := sl.get(lp.env.Secrets, lp.p.ID)
		switch {
		case err == nil:
			lp.mu.Lock()
			lp.savedExists[sl] = true
			lp.used[sl] = v
			lp.mu.Unlock()
			lp.env.Log.Info("using the "+what+" saved in the keyring", "for", sl.String())
			return v, nil
		case errors.Is(err, profiles.ErrSecretNotFound):
		default:
			lp.mu.Lock()
			lp.keyringErr = err
			lp.mu.Unlock()
			lp.env.Log.Warn("cannot read the keyring; asking instead", "err", err)
		}
	}

	lp.mu.Lock()
	saved, asked, kerr := lp.savedExists[sl], lp.asked[sl], lp.keyringErr
	lp.asked[sl]++
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
	keyringOK := lp.env.KeyringAvailable == nil || lp.env.KeyringAvailable()
	switch {
	case lp.env.Secrets == nil:
		pr.KeyringMessage = "Remembering is off: Porthole has no keyring here."
	case (kerr != nil && errors.Is(kerr, profiles.ErrKeyringUnavailable)) || !keyringOK:
		pr.KeyringMessage = KeyringOffMessage
	default:
		pr.CanRemember = true
	}
	if !pr.CanRemember {
		pr.Remember = false
	}
	lp.env.Log.Info("asking for the "+what, "attempt", asked+1)
	a, err := lp.ask(ctx, pr)
	if err != nil {
		lp.env.Log.Info("the "+what+" question was not answered", "reason", err)
		return "", err
	}
	lp.mu.Lock()
	lp.typed[sl] = typedSecret{value: a.Secret, remember: a.Remember && pr.CanRemember}
	lp.used[sl] = a.Secret
	lp.mu.Unlock()
	return a.Secret, nil
}

// KeyringOffMessage explains a disabled "remember"; KeyringStatus says why.
const KeyringOffMessage = "The system keyring is not available, so Porthole cannot remember this: it asks each time and never writes secrets to disk."

// Commit runs after a successful login: secrets typed with "remember" go to
// the keyring; a saved secret the user chose not to keep is removed.
func (lp *LoginPrompter) Commit() {
	if lp.env.Secrets == nil || lp.p.ID == "" {
		return
	}
	lp.mu.Lock()
	typed := lp.typed
	saved := lp.savedExists
	lp.typed = map[slot]typedSecret{}
	lp.mu.Unlock()
	for sl, t := range typed {
		what := sl.String()
		if t.remember {
			if err := sl.set(lp.env.Secrets, lp.p.ID, t.value); err != nil {
				lp.env.Log.Warn("could not save the "+what+" in the keyring; Porthole will ask again next time", "err", err)
				continue
			}
			lp.env.Log.Info("saved the " + what + " in the keyring")
		} else if saved[sl] {
			if err := sl.delete(lp.env.Secrets, lp.p.ID); err != nil {
				lp.env.Log.Warn("could not remove the old "+what+" from the keyring", "err", err)
				continue
			}
			lp.env.Log.Info("removed the saved " + what + " from the keyring")
		}
	}
}

// ask asks through the broker and remembers why a question went unanswered.
func (lp *LoginPrompter) ask(ctx context.Context, pr Prompt) (PromptAnswer, error) {
	a, err := lp.env.Broker.Ask(ctx, pr)
	if err != nil {
		lp.mu.Lock()
		lp.askErr = err
		lp.mu.Unlock()
	}
	return a, err
}

// AskError is why the last question of this attempt went unanswered (a
// *TimeoutError, sshconn.ErrPromptCanceled, ctx's error), or nil. A login
// in an agent process carries only the sentinel back over its pipe; this
// keeps the details (which question, how long) on the app's side.
func (lp *LoginPrompter) AskError() error {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.askErr
}
