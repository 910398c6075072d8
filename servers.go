package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/porthole-app/porthole/backend/agent"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/backend/webui"
)

// Event topics of server logins.
const (
	// TopicServers carries ServerList: the profiles with their connection
	// state, and the profiles file's load error; in every snapshot.
	TopicServers = "servers"
	// TopicServerProgress carries ServerProgress, one per step of a connection.
	TopicServerProgress = "server.progress"
	// TopicServerLog carries ServerLogLine, one per line of a server's log.
	TopicServerLog = "server.log"
	// TopicKeyring carries KeyringStatus when it is learned or changes.
	TopicKeyring = "keyring"
)

// ServerState is where a server login stands, as the sidebar shows it.
type ServerState int

const (
	ServerDisconnected ServerState = iota // not connected (never, or the user disconnected)
	ServerConnecting                      // connecting; the user may be asked questions
	ServerConnected                       // logged in
	ServerReconnecting                    // the connection was lost; Porthole is redialing
	ServerIdle                            // logged in earlier; the connection closed while unused and is redialed when needed
	ServerFailed                          // the last connection attempt failed (see LastError)
)

var serverStateNames = [...]string{
	ServerDisconnected: "disconnected",
	ServerConnecting:   "connecting",
	ServerConnected:    "connected",
	ServerReconnecting: "reconnecting",
	ServerIdle:         "idle",
	ServerFailed:       "failed",
}

func (s ServerState) String() string {
	if s >= 0 && int(s) < len(serverStateNames) {
		return serverStateNames[s]
	}
	return fmt.Sprintf("ServerState(%d)", int(s))
}

// MarshalText writes the name.
func (s ServerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (s *ServerState) UnmarshalText(b []byte) error {
	v, err := parseEnum(string(b), serverStateNames[:], "server state")
	*s = ServerState(v)
	return err
}

// ErrorKind classifies why a connection failed, so the UI can pick its words
// (and, for a changed host key, its red dialog).
type ErrorKind int

const (
	ErrorOther           ErrorKind = iota // anything else; see Detail
	ErrorHostKeyChanged                   // known_hosts has another key: refused (HostKey says which)
	ErrorHostKeyRejected                  // the user rejected an unknown key
	ErrorHostKeyUnknown                   // unknown key and StrictHostKeyChecking yes
	ErrorHostKeyRevoked                   // known_hosts marks the key @revoked
	ErrorAuth                             // every login method failed
	ErrorUnreachable                      // no TCP connection, or no SSH server on the port
	ErrorTimeout                          // the server did not answer in time
	ErrorCanceled                         // the user closed a question or disconnected
	ErrorPromptTimeout                    // nobody answered a question in time
	ErrorConfig                           // the profile or ssh_config cannot be used
	ErrorConnectionLost                   // a working connection broke and could not be redialed
)

var errorKindNames = [...]string{
	ErrorOther:           "other",
	ErrorHostKeyChanged:  "host-key-changed",
	ErrorHostKeyRejected: "host-key-rejected",
	ErrorHostKeyUnknown:  "host-key-unknown",
	ErrorHostKeyRevoked:  "host-key-revoked",
	ErrorAuth:            "auth",
	ErrorUnreachable:     "unreachable",
	ErrorTimeout:         "timeout",
	ErrorCanceled:        "canceled",
	ErrorPromptTimeout:   "prompt-timeout",
	ErrorConfig:          "config",
	ErrorConnectionLost:  "connection-lost",
}

func (k ErrorKind) String() string {
	if k >= 0 && int(k) < len(errorKindNames) {
		return errorKindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// MarshalText writes the name.
func (k ErrorKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (k *ErrorKind) UnmarshalText(b []byte) error {
	v, err := parseEnum(string(b), errorKindNames[:], "error kind")
	*k = ErrorKind(v)
	return err
}

// parseEnum finds s in names (the index is the value).
func parseEnum(s string, names []string, what string) (int, error) {
	for i, n := range names {
		if n != "" && n == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (known: %s)", what, s, strings.Join(slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "" }), ", "))
}

// KnownHostKey is a known_hosts entry that disagrees with the server.
type KnownHostKey struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
	File        string `json:"file"`
	Line        int    `json:"line"`
}

// HostKeyChange describes a refused connection to a server whose host key
// is not the one known_hosts records.
type HostKeyChange struct {
	Host        string         `json:"host"`        // as known_hosts records it
	KeyType     string         `json:"keyType"`     // of the key the server sent
	Fingerprint string         `json:"fingerprint"` // SHA256 of the key the server sent
	Known       []KnownHostKey `json:"known"`       // the recorded key(s): remove these lines if the change is expected
	// RemoveCommand removes the old entry: ssh-keygen -R 'host' -f 'file'.
	RemoveCommand string `json:"removeCommand,omitempty"`
}

// ServerError is why a server is not connected, in plain words.
type ServerError struct {
	Kind    ErrorKind      `json:"kind"`
	Message string         `json:"message"`          // for people
	Detail  string         `json:"detail,omitempty"` // the technical error
	HostKey *HostKeyChange `json:"hostKey,omitempty"`
	Time    time.Time      `json:"time"`
}

// ProgressStep is one step of the current or last connection.
type ProgressStep struct {
	Step      string `json:"step"` // resolving, connecting, host key, authenticating, ready
	Detail    string `json:"detail,omitempty"`
	ElapsedMs int64  `json:"elapsedMs"` // since the connection attempt began
}

// ServerProgress is the `server.progress` event.
type ServerProgress struct {
	ID        string `json:"id"`
	Step      string `json:"step"`
	ElapsedMs int64  `json:"elapsedMs"`
	Detail    string `json:"detail,omitempty"`
}

// ServerSummary is one server login as the sidebar and the server page show it.
type ServerSummary struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Host           string   `json:"host"`
	Port           int      `json:"port"`
	User           string   `json:"user"`
	Color          string   `json:"color,omitempty"`
	Icon           string   `json:"icon,omitempty"`
	SSHConfigAlias string   `json:"sshConfigAlias,omitempty"`
	JumpHosts      []string `json:"jumpHosts,omitempty"`

	State       ServerState `json:"state"`
	StateReason string      `json:"stateReason,omitempty"`
	Since       time.Time   `json:"since,omitzero"`
	// LastError is why the last connection attempt failed (nil after a success).
	LastError *ServerError `json:"lastError,omitempty"`
	// Progress are the steps of the current or last connection attempt.
	Progress []ProgressStep `json:"progress,omitempty"`
}

// ServerList is the `servers` event.
type ServerList struct {
	Servers []ServerSummary `json:"servers"`
	// Path is the profiles file.
	Path string `json:"path"`
	// LoadError: the profiles file could not be read (it is kept as it
	// was); the list is empty and changes are refused until it is fixed
	// and ReloadServers is called.
	LoadError string `json:"loadError,omitempty"`
	ReadOnly  bool   `json:"readOnly"`
}

// ValidationResult is ValidateServer's answer.
type ValidationResult struct {
	Valid  bool                  `json:"valid"`
	Fields []profiles.FieldError `json:"fields"`          // problems; empty when valid
	Notes  []profiles.FieldError `json:"notes,omitempty"` // not problems, e.g. "the key is encrypted"
}

// ImportList is ImportCandidates' answer.
type ImportList struct {
	ConfigPath string               `json:"configPath"`
	Exists     bool                 `json:"exists"`
	Candidates []profiles.Candidate `json:"candidates"`
}

// ImportSkip is an alias ImportServers did not import, and why.
type ImportSkip struct {
	Alias  string `json:"alias"`
	Reason string `json:"reason"`
}

// ImportResult is ImportServers' answer.
type ImportResult struct {
	Added   []profiles.Profile `json:"added"`
	Skipped []ImportSkip       `json:"skipped"`
}

// KeyringStatus says whether secrets can be remembered.
type KeyringStatus struct {
	Available bool   `json:"available"`
	Service   string `json:"service"` // the keyring service name: "porthole"
	Backend   string `json:"backend"` // e.g. "Secret Service"
	// Message says why it is not available. Porthole then asks for secrets
	// at every connection and never writes them anywhere else.
	Message string `json:"message,omitempty"`
}

// serverConfig is what the server logins need; see withServers.
type serverConfig struct {
	store         *profiles.Store      // nil: no profiles (server logins unavailable)
	secrets       profiles.SecretStore // nil: nothing is remembered
	backend       string               // the keyring's name for KeyringStatus
	ssh           sshBase
	promptTimeout time.Duration
	newLogin      newLoginFunc // nil: in-process logins
	closeLogins   func()       // runs at shutdown, after every login closed (stops the Supervisor)
}

// keyringTTL is how long a keyring check is reused.
const keyringTTL = 15 * time.Second

// serverManager holds the server logins: the profiles, their secrets, the
// connected logins, their progress, state and logs.
type serverManager struct {
	log     *slog.Logger
	publish func(topic string, data any)
	cfg     serverConfig
	broker  *promptBroker
	changed func() // the number of servers changed (app.status)
	// connected runs after a Connect succeeded (the app binds its forwards
	// again in a new agent); removed after a server was deleted.
	connected func(id string)
	removed   func(id string)

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
	live   map[string]*serverLive
	gen    uint64

	logMu sync.Mutex // orders log lines and their events
	logs  map[string]*logRing

	keyMu     sync.Mutex
	keyStatus KeyringStatus
	keyAt     time.Time
	keyKnown  bool

	pubMu sync.Mutex // orders `servers` events so the last is current
	wg    sync.WaitGroup
}

// serverLive is the runtime state of one server.
type serverLive struct {
	runner    loginRunner
	gen       uint64 // of runner; events of older runners are ignored
	state     ServerState
	reason    string
	since     time.Time
	lastErr   *ServerError
	progress  []ProgressStep
	dialStart time.Time
	connected bool // runner was connected at least once
}

func newServerManager(log *slog.Logger, publish func(string, any), cfg serverConfig) *serverManager {
	if cfg.newLogin == nil {
		cfg.newLogin = newInProcessLogin
	}
	if cfg.promptTimeout <= 0 {
		cfg.promptTimeout = DefaultPromptTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &serverManager{
		log:     log,
		publish: publish,
		cfg:     cfg,
		broker:  newPromptBroker(cfg.promptTimeout, publish, log.With("component", "prompts")),
		changed: func() {},
		ctx:     ctx,
		cancel:  cancel,
		live:    map[string]*serverLive{},
		logs:    map[string]*logRing{},
	}
}

// start ties the logins to the UI's lifetime and publishes the first state.
func (m *serverManager) start(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.cancel()
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.mu.Unlock()
	context.AfterFunc(ctx, m.shutdown)
	m.publishServers()
	m.broker.publishList()
	if m.cfg.store != nil {
		if err := m.cfg.store.LoadError(); err != nil {
			m.log.Error("the profiles file cannot be used; server logins are read-only until it is fixed", "err", err)
		}
	}
	m.wg.Go(func() { m.keyringStatus(true) })
}

// shutdown disconnects every login and cancels every question; it is
// idempotent and waits for what the manager started.
func (m *serverManager) shutdown() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return
	}
	m.closed = true
	m.cancel()
	var runners []loginRunner
	for id, lv := range m.live {
		if lv.runner != nil {
			runners = append(runners, lv.runner)
			lv.runner = nil
			lv.state, lv.reason = ServerDisconnected, "Porthole is quitting"
		}
		m.broker.cancelServer(id)
	}
	m.mu.Unlock()
	for _, r := range runners {
		_ = r.Close()
	}
	m.wg.Wait()
	if m.cfg.closeLogins != nil {
		m.cfg.closeLogins()
	}
}

var errNoProfiles = webui.WithStatus(errors.New("server logins are not available in this mode"), 503)

func (m *serverManager) store() (*profiles.Store, error) {
	if m.cfg.store == nil {
		return nil, errNoProfiles
	}
	return m.cfg.store, nil
}

// count is the number of saved servers.
func (m *serverManager) count() int {
	if m.cfg.store == nil {
		return 0
	}
	return len(m.cfg.store.List())
}

// --- listing and events ---

func (m *serverManager) summaries() []ServerSummary {
	if m.cfg.store == nil {
		return []ServerSummary{}
	}
	list := m.cfg.store.List()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ServerSummary, 0, len(list))
	for _, p := range list {
		out = append(out, m.summaryLocked(p))
	}
	return out
}

func (m *serverManager) summaryLocked(p profiles.Profile) ServerSummary {
	s := ServerSummary{
		ID: p.ID, Name: p.Name, Host: p.Host, Port: p.Port, User: p.User,
		Color: p.Color, Icon: p.Icon, SSHConfigAlias: p.SSHConfigAlias, JumpHosts: slices.Clone(p.JumpHosts),
	}
	if lv := m.live[p.ID]; lv != nil {
		s.State, s.StateReason, s.Since = lv.state, lv.reason, lv.since
		if lv.lastErr != nil {
			e := *lv.lastErr
			s.LastError = &e
		}
		s.Progress = slices.Clone(lv.progress)
	}
	return s
}

func (m *serverManager) summary(id string) ServerSummary {
	if m.cfg.store == nil {
		return ServerSummary{ID: id}
	}
	p, err := m.cfg.store.Get(id)
	if err != nil {
		return ServerSummary{ID: id}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.summaryLocked(p)
}

func (m *serverManager) serverList() ServerList {
	l := ServerList{Servers: m.summaries()}
	if m.cfg.store != nil {
		l.Path = m.cfg.store.Path()
		if err := m.cfg.store.LoadError(); err != nil {
			l.LoadError = err.Error()
			l.ReadOnly = true
		}
	} else {
		l.LoadError = "server logins are not available in this mode"
		l.ReadOnly = true
	}
	return l
}

func (m *serverManager) publishServers() {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	m.publish(TopicServers, m.serverList())
}

// appendLog adds a line to a server's log and publishes it.
func (m *serverManager) appendLog(id, line string) {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	r := m.logs[id]
	if r == nil {
		r = &logRing{}
		m.logs[id] = r
	}
	seq := r.add(line)
	m.publish(TopicServerLog, ServerLogLine{ID: id, Seq: seq, Line: line})
}

// note writes a line of Porthole's own into a server's log (and the app log).
func (m *serverManager) note(id string, level slog.Level, msg string, args ...any) {
	m.appendLog(id, formatLine(time.Now(), level, msg, args...))
	m.log.Log(context.Background(), level, msg, append([]any{"server", id}, args...)...)
}

func (m *serverManager) serverLog(id string) ServerLogView {
	m.logMu.Lock()
	r := m.logs[id]
	m.logMu.Unlock()
	v := ServerLogView{ID: id, Lines: []string{}}
	if r != nil {
		v.Lines, v.Seq = r.snapshot()
	}
	return v
}

// --- keyring ---

// keyringStatus checks the keyring (at most every keyringTTL unless force)
// and publishes a change.
func (m *serverManager) keyringStatus(force bool) KeyringStatus {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	if !force && m.keyKnown && time.Since(m.keyAt) < keyringTTL {
		return m.keyStatus
	}
	st := KeyringStatus{Service: profiles.KeyringService, Backend: m.cfg.backend}
	var err error
	switch s := m.cfg.secrets.(type) {
	case nil:
		err = errors.New("no keyring is set up")
	case interface{ Available() error }:
		err = s.Available()
	default:
		_, err = s.Get("porthole-keyring-probe", profiles.SecretPassword)
		if !errors.Is(err, profiles.ErrKeyringUnavailable) {
			err = nil
		}
	}
	if err != nil {
		st.Message = err.Error()
	} else {
		st.Available = true
	}
	changed := !m.keyKnown || st != m.keyStatus
	m.keyStatus, m.keyAt, m.keyKnown = st, time.Now(), true
	if changed {
		if !st.Available {
			m.log.Warn("the system keyring is not available; secrets will be asked for each time", "why", err)
		}
		m.publish(TopicKeyring, st)
	}
	return st
}

// --- profiles ---

// storeError gives a store error its HTTP status.
func storeError(err error) error {
	var ve *profiles.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return webui.WithStatus(err, 400)
	case errors.Is(err, profiles.ErrNotFound):
		return webui.WithStatus(err, 404)
	case errors.Is(err, profiles.ErrReadOnly), errors.Is(err, profiles.ErrLocked):
		return webui.WithStatus(err, 409)
	}
	return err
}

// validate checks a profile like the form needs it: every field, and the key file.
func (m *serverManager) validate(p profiles.Profile) ValidationResult {
	res := ValidationResult{Fields: []profiles.FieldError{}}
	var ve *profiles.ValidationError
	if err := p.Validate(); errors.As(err, &ve) {
		res.Fields = append(res.Fields, ve.Fields...)
	}
	if p.KeyPath != "" && p.SSHConfigAlias == "" {
		if _, bad := (&profiles.ValidationError{Fields: res.Fields}).Reason("keyPath"); !bad {
			if reason, note := keyFileReason(p.KeyPath); reason != "" {
				res.Fields = append(res.Fields, profiles.FieldError{Field: "keyPath", Reason: reason})
			} else if note != "" {
				res.Notes = append(res.Notes, profiles.FieldError{Field: "keyPath", Reason: note})
			}
		}
	}
	res.Valid = len(res.Fields) == 0
	return res
}

// keyFileReason returns why path is not a usable key ("" if it is), or a note.
func keyFileReason(path string) (reason, note string) {
	err := profiles.CheckKeyFile(path)
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, profiles.ErrKeyNeedsPassphrase):
		return "", "the key is encrypted: Porthole asks for its passphrase when connecting"
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist; choose an existing private key (e.g. ~/.ssh/id_ed25519)", ""
	case errors.Is(err, fs.ErrPermission):
		return "cannot be read (permission denied); make it readable by your user (chmod 600)", ""
	case errors.Is(err, profiles.ErrNotPrivateKey):
		return strings.TrimPrefix(err.Error(), profiles.ErrNotPrivateKey.Error()+": "), ""
	}
	msg := strings.TrimPrefix(err.Error(), profiles.ErrKeyUnreadable.Error()+" ")
	return "cannot be used: " + msg, ""
}

func invalid(res ValidationResult) error {
	return webui.WithStatus(&profiles.ValidationError{Fields: res.Fields}, 400)
}

func (m *serverManager) get(id string) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	p, err := st.Get(id)
	return p, storeError(err)
}

func (m *serverManager) add(p profiles.Profile) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	p.ID = ""
	if res := m.validate(p); !res.Valid {
		return profiles.Profile{}, invalid(res)
	}
	saved, err := st.Add(p)
	if err != nil {
		return profiles.Profile{}, storeError(err)
	}
	m.note(saved.ID, slog.LevelInfo, "server added", "name", saved.Name, "host", saved.Host, "port", saved.Port)
	m.publishServers()
	m.changed()
	return saved, nil
}

func (m *serverManager) update(p profiles.Profile) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	if _, err := st.Get(p.ID); err != nil {
		return profiles.Profile{}, storeError(err)
	}
	if res := m.validate(p); !res.Valid {
		return profiles.Profile{}, invalid(res)
	}
	if err := st.Update(p); err != nil {
		return profiles.Profile{}, storeError(err)
	}
	m.note(p.ID, slog.LevelInfo, "server changed; a connection in use keeps the old settings until it reconnects")
	m.publishServers()
	saved, err := st.Get(p.ID)
	return saved, storeError(err)
}

func (m *serverManager) remove(id string) error {
	st, err := m.store()
	if err != nil {
		return err
	}
	if _, err := st.Get(id); err != nil {
		return storeError(err)
	}
	m.disconnect(id, "the server was deleted")
	if err := st.Delete(id); err != nil {
		return storeError(err)
	}
	if m.cfg.secrets != nil {
		if err := m.cfg.secrets.DeleteAll(id); err != nil {
			m.log.Warn("could not delete the server's secrets from the keyring", "server", id, "err", err)
		}
	}
	m.mu.Lock()
	delete(m.live, id)
	m.mu.Unlock()
	m.logMu.Lock()
	delete(m.logs, id)
	m.logMu.Unlock()
	if m.removed != nil {
		m.removed(id)
	}
	m.publishServers()
	m.changed()
	return nil
}

func (m *serverManager) duplicate(id string) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	dup, err := st.Duplicate(id)
	if err != nil {
		return profiles.Profile{}, storeError(err)
	}
	if m.cfg.secrets != nil {
		if err := profiles.CopySecrets(m.cfg.secrets, id, dup.ID); err != nil {
			m.note(dup.ID, slog.LevelWarn, "the saved secrets could not be copied; Porthole will ask for them", "err", err)
		}
	}
	m.note(dup.ID, slog.LevelInfo, "server duplicated", "from", id)
	m.publishServers()
	m.changed()
	return dup, nil
}

func (m *serverManager) reload() (ServerList, error) {
	st, err := m.store()
	if err != nil {
		return ServerList{}, err
	}
	err = st.Reload()
	m.publishServers()
	m.changed()
	if err != nil {
		return m.serverList(), webui.WithStatus(err, 409)
	}
	return m.serverList(), nil
}

// --- ~/.ssh/config import ---

func (m *serverManager) sshConfigPath() (string, error) {
	if c := m.cfg.ssh.ConfigPath; c != "" && !strings.EqualFold(c, "none") {
		return c, nil
	}
	home := m.cfg.ssh.HomeDir
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find your home directory: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".ssh", "config"), nil
}

// sshResolver resolves aliases for the import through sshconn.
type sshResolver struct{ base sshBase }

func (r sshResolver) Resolve(alias string) (profiles.Resolved, error) {
	cfg, err := sshconn.Resolve(alias, sshconn.Options{HomeDir: r.base.HomeDir, ConfigPath: r.base.ConfigPath, SystemConfigPath: r.base.SystemConfigPath})
	if err != nil {
		return profiles.Resolved{}, err
	}
	res := profiles.Resolved{HostName: cfg.HostName, User: cfg.User, Port: cfg.Port}
	if !isDefaultIdentities(cfg.IdentityFiles, cfg.HomeDir) {
		for _, f := range cfg.IdentityFiles {
			res.IdentityFiles = append(res.IdentityFiles, shortHome(f, cfg.HomeDir))
		}
	}
	var hops []string
	for _, j := range cfg.Jumps {
		h := j.Alias
		if j.Port != 22 {
			h = net.JoinHostPort(j.Alias, strconv.Itoa(j.Port))
		}
		if j.User != "" {
			h = j.User + "@" + h
		}
		hops = append(hops, h)
	}
	res.ProxyJump = strings.Join(hops, ",")
	return res, nil
}

// isDefaultIdentities: sshconn lists OpenSSH's default identity files when
// the config names none; an import leaves those out.
func isDefaultIdentities(files []string, home string) bool {
	defaults := []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"}
	if len(files) != len(defaults) {
		return false
	}
	for i, n := range defaults {
		if files[i] != filepath.Join(home, ".ssh", n) {
			return false
		}
	}
	return true
}

func (m *serverManager) importCandidates() (ImportList, error) {
	path, err := m.sshConfigPath()
	if err != nil {
		return ImportList{}, err
	}
	l := ImportList{ConfigPath: path, Candidates: []profiles.Candidate{}}
	cands, err := profiles.ImportCandidates(path, sshResolver{base: m.cfg.ssh})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return l, nil
	case err != nil:
		return l, fmt.Errorf("reading %s: %w", path, err)
	}
	l.Exists = true
	if m.cfg.store != nil {
		profiles.MarkImported(cands, m.cfg.store.List())
	}
	l.Candidates = cands
	return l, nil
}

func (m *serverManager) importServers(aliases []string, link bool) (ImportResult, error) {
	st, err := m.store()
	if err != nil {
		return ImportResult{}, err
	}
	if len(aliases) == 0 {
		return ImportResult{}, &badInputError{msg: "choose at least one host to import"}
	}
	l, err := m.importCandidates()
	if err != nil {
		return ImportResult{}, err
	}
	byAlias := map[string]profiles.Candidate{}
	for _, c := range l.Candidates {
		byAlias[c.Alias] = c
	}
	res := ImportResult{Added: []profiles.Profile{}, Skipped: []ImportSkip{}}
	for _, a := range aliases {
		c, ok := byAlias[a]
		switch {
		case !ok:
			res.Skipped = append(res.Skipped, ImportSkip{Alias: a, Reason: "not a Host entry of " + l.ConfigPath})
			continue
		case c.ResolveError != "":
			res.Skipped = append(res.Skipped, ImportSkip{Alias: a, Reason: c.ResolveError})
			continue
		}
		saved, err := st.Add(c.ToProfile(link))
		if err != nil {
			if errors.Is(err, profiles.ErrReadOnly) || errors.Is(err, profiles.ErrLocked) {
				return res, storeError(err)
			}
			res.Skipped = append(res.Skipped, ImportSkip{Alias: a, Reason: err.Error()})
			continue
		}
		res.Added = append(res.Added, saved)
		m.note(saved.ID, slog.LevelInfo, "imported from "+l.ConfigPath, "alias", a, "linked", link)
	}
	if len(res.Added) > 0 {
		m.publishServers()
		m.changed()
	}
	return res, nil
}

// --- connections ---

func (m *serverManager) liveLocked(id string) *serverLive {
	lv := m.live[id]
	if lv == nil {
		lv = &serverLive{}
		m.live[id] = lv
	}
	return lv
}

func (m *serverManager) connect(id string) (ServerSummary, error) {
	p, err := m.get(id)
	if err != nil {
		return ServerSummary{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ServerSummary{}, webui.WithStatus(errors.New("Porthole is quitting"), 503)
	}
	ctx := m.ctx
	lv := m.liveLocked(id)
	r := lv.runner
	if r == nil {
		m.gen++
		gen := m.gen
		r = m.cfg.newLogin(p, m.envFor(p, gen))
		lv.runner, lv.gen, lv.connected = r, gen, false
	}
	if lv.state != ServerConnected {
		lv.state, lv.reason, lv.since = ServerConnecting, "connecting", time.Now()
		lv.lastErr = nil
	}
	m.mu.Unlock()
	m.note(id, slog.LevelInfo, "connecting", "to", userHost(p))
	m.publishServers()

	err = r.Connect(ctx)

	m.mu.Lock()
	current := lv.runner == r && m.live[id] == lv
	if err == nil {
		if current {
			lv.connected = true
			lv.state, lv.lastErr = ServerConnected, nil
			lv.reason, lv.since = "connected", time.Now()
		}
		m.mu.Unlock()
		m.note(id, slog.LevelInfo, "connected")
		m.publishServers()
		if m.connected != nil {
			m.connected(id)
		}
		return m.summary(id), nil
	}
	se := classifyConnectError(err, m.cfg.promptTimeout)
	if current {
		lv.runner = nil
		if se.Kind == ErrorCanceled {
			lv.state, lv.reason, lv.lastErr = ServerDisconnected, "canceled", nil
		} else {
			lv.state, lv.reason, lv.lastErr = ServerFailed, se.Message, se
		}
		lv.since = time.Now()
	}
	m.mu.Unlock()
	if current {
		m.broker.cancelServer(id)
		_ = r.Close()
	}
	if se.Kind == ErrorCanceled {
		m.note(id, slog.LevelInfo, "connection canceled")
	} else {
		m.note(id, slog.LevelWarn, "connection failed: "+se.Message, "err", se.Detail)
	}
	m.publishServers()
	return m.summary(id), &connectError{se: se, err: err}
}

func (m *serverManager) disconnect(id, why string) {
	m.mu.Lock()
	lv := m.live[id]
	var r loginRunner
	if lv != nil {
		r = lv.runner
		lv.runner = nil
		if r != nil {
			lv.state, lv.reason, lv.since, lv.lastErr = ServerDisconnected, why, time.Now(), nil
		}
	}
	m.mu.Unlock()
	m.broker.cancelServer(id)
	if r != nil {
		_ = r.Close()
		m.note(id, slog.LevelInfo, "disconnected", "why", why)
	}
	m.publishServers()
}

func userHost(p profiles.Profile) string {
	if p.SSHConfigAlias != "" {
		return p.SSHConfigAlias + " (from ~/.ssh/config)"
	}
	s := hostPort(p.Host, p.Port)
	if p.User != "" {
		s = p.User + "@" + s
	}
	return s
}

// envFor builds what a login of p (runner generation gen) needs.
func (m *serverManager) envFor(p profiles.Profile, gen uint64) loginEnv {
	id := p.ID
	return loginEnv{
		log:     serverLogger(m.log, p.Name, func(line string) { m.appendLog(id, line) }),
		broker:  m.broker,
		secrets: m.cfg.secrets,
		keyring: func() KeyringStatus { return m.keyringStatus(false) },
		ssh:     m.cfg.ssh,
		onStep:  func(step sshconn.Step, detail string) { m.onStep(id, gen, step, detail) },
		onEvent: func(e forwarder.Event) { m.onEvent(id, gen, e) },
		timeouts: loginTimeouts{
			// Room for a host-key question and every password attempt.
			connect: 10*m.cfg.promptTimeout + time.Minute,
			prompt:  m.cfg.promptTimeout,
		},
	}
}

func (m *serverManager) onStep(id string, gen uint64, step sshconn.Step, detail string) {
	m.mu.Lock()
	lv := m.live[id]
	if lv == nil || lv.gen != gen || lv.runner == nil {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	if step == sshconn.StepResolving || lv.dialStart.IsZero() {
		// Resolving is the first step of every dial (jump hosts repeat the others).
		lv.progress, lv.dialStart = nil, now
	}
	ps := ProgressStep{Step: step.String(), Detail: detail, ElapsedMs: now.Sub(lv.dialStart).Milliseconds()}
	lv.progress = append(lv.progress, ps)
	m.mu.Unlock()
	m.publish(TopicServerProgress, ServerProgress{ID: id, Step: ps.Step, ElapsedMs: ps.ElapsedMs, Detail: detail})
	m.publishServers()
}

// mapSessionState maps a Session state to the server's.
func mapSessionState(s forwarder.State, everConnected bool) ServerState {
	switch s {
	case forwarder.StateConnecting:
		return ServerConnecting
	case forwarder.StateReady, forwarder.StateSuspect:
		return ServerConnected
	case forwarder.StateReconnecting:
		return ServerReconnecting
	case forwarder.StateFailed:
		return ServerFailed
	case forwarder.StateIdle:
		if everConnected {
			return ServerIdle
		}
		return ServerConnecting
	}
	return ServerDisconnected
}

func (m *serverManager) onEvent(id string, gen uint64, e forwarder.Event) {
	m.mu.Lock()
	lv := m.live[id]
	if lv == nil || lv.gen != gen || lv.runner == nil {
		m.mu.Unlock()
		return
	}
	if e.State == forwarder.StateReady {
		lv.connected = true
	}
	lv.state = mapSessionState(e.State, lv.connected)
	lv.reason, lv.since = e.Reason, e.Time
	switch e.State {
	case forwarder.StateReady:
		lv.lastErr = nil
	case forwarder.StateFailed:
		if e.Err != nil {
			lv.lastErr = classifyConnectError(e.Err, m.cfg.promptTimeout)
		}
	case forwarder.StateIdle, forwarder.StateReconnecting:
		if e.Err != nil && lv.connected {
			lv.lastErr = &ServerError{Kind: ErrorConnectionLost, Message: "The connection was lost: " + plainCause(e.Err), Detail: e.Err.Error(), Time: time.Now()}
		}
	}
	m.mu.Unlock()
	m.publishServers()
}

// plainCause is an error's text without Porthole's internal wrapping.
func plainCause(err error) string {
	s := err.Error()
	for _, p := range []string{forwarder.ErrUnavailable.Error() + ": ", forwarder.ErrPermanent.Error() + ": "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// connectError is what Connect returns: the plain-words message, with the
// technical error underneath (errors.Is/As).
type connectError struct {
	se  *ServerError
	err error
}

func (e *connectError) Error() string { return e.se.Message }
func (e *connectError) Unwrap() error { return e.err }

// HTTPStatus: 502 when the server could not be reached, 400 for an unusable
// configuration, 409 for everything the user can answer differently
// (password, host key, canceled).
func (e *connectError) HTTPStatus() int {
	switch e.se.Kind {
	case ErrorUnreachable, ErrorTimeout, ErrorConnectionLost, ErrorOther:
		return 502
	case ErrorConfig:
		return 400
	}
	return 409
}

// classifyConnectError says in plain words why a connection failed.
func classifyConnectError(err error, promptTimeout time.Duration) *ServerError {
	se := &ServerError{Kind: ErrorOther, Detail: plainCause(err), Time: time.Now().UTC()}
	var mm *sshconn.HostKeyMismatchError
	var ae *sshconn.AuthError
	switch {
	case errors.As(err, &mm):
		se.Kind = ErrorHostKeyChanged
		hk := &HostKeyChange{Host: mm.Host, KeyType: mm.KeyType, Fingerprint: mm.Fingerprint}
		var lines []string
		for _, k := range mm.Known {
			hk.Known = append(hk.Known, KnownHostKey{Type: k.Type, Fingerprint: k.Fingerprint, File: k.File, Line: k.Line})
			lines = append(lines, fmt.Sprintf("line %d of %s", k.Line, k.File))
		}
		if len(mm.Known) > 0 {
			hk.RemoveCommand = fmt.Sprintf("ssh-keygen -R '%s' -f '%s'", mm.Host, mm.Known[0].File)
		}
		se.HostKey = hk
		se.Message = fmt.Sprintf("Porthole refused to connect: the host key of %s has changed. Someone may be intercepting the connection, or the server was reinstalled. If you know the key changed on purpose, remove the old key (%s) and connect again.",
			mm.Host, strings.Join(lines, ", "))
	case errors.Is(err, sshconn.ErrHostKeyRejected):
		se.Kind = ErrorHostKeyRejected
		se.Message = "You rejected the server's host key, so Porthole did not connect."
	case errors.Is(err, sshconn.ErrHostKeyUnknown):
		se.Kind = ErrorHostKeyUnknown
		se.Message = "The server's host key is not in known_hosts and your ssh config (StrictHostKeyChecking yes) does not allow asking; add its key to known_hosts first."
	case errors.Is(err, sshconn.ErrHostKeyRevoked):
		se.Kind = ErrorHostKeyRevoked
		se.Message = "The server presented a host key that known_hosts marks as revoked. Do not connect; ask the server's administrator."
	case errors.Is(err, errPromptCanceled), errors.Is(err, context.Canceled), errors.Is(err, forwarder.ErrSessionClosed):
		se.Kind = ErrorCanceled
		se.Message = "Connection canceled."
	case errors.Is(err, errPromptTimeout):
		se.Kind = ErrorPromptTimeout
		what := "a question"
		var pt *promptTimeoutError
		if errors.As(err, &pt) {
			what = "the " + pt.kind.String() + " question"
			promptTimeout = pt.after
		}
		se.Message = fmt.Sprintf("Nobody answered %s within %s, so Porthole gave up. Connect again when you are ready.", what, fmtWait(promptTimeout))
	case errors.As(err, &ae):
		se.Kind = ErrorAuth
		tried := "nothing usable"
		if len(ae.Tried) > 0 {
			tried = strings.Join(ae.Tried, ", ")
		}
		se.Message = fmt.Sprintf("The server did not accept the login of %s at %s (tried: %s).", ae.User, ae.Addr, tried)
		switch {
		case errors.Is(err, sshconn.ErrWrongPassphrase):
			se.Message += " The key's passphrase was wrong."
		case errors.Is(err, sshconn.ErrBadKey):
			se.Message += " The key file is not a usable private key."
		}
		se.Message += " Check the user name and password or key, then connect again."
	case errors.Is(err, sshconn.ErrWrongPassphrase):
		se.Kind = ErrorAuth
		se.Message = "The key's passphrase was wrong."
	case errors.Is(err, sshconn.ErrBadKey):
		se.Kind = ErrorConfig
		se.Message = "The key file is not a usable private key: " + plainCause(err)
	case errors.Is(err, sshconn.ErrUnreachable):
		se.Kind = ErrorUnreachable
		se.Message = "Porthole cannot reach the server: " + strings.TrimPrefix(plainCause(err), sshconn.ErrUnreachable.Error()+": ")
	case errors.Is(err, sshconn.ErrHandshakeTimeout), errors.Is(err, context.DeadlineExceeded):
		se.Kind = ErrorTimeout
		se.Message = "The server did not answer in time. Check that an SSH server listens on that port and that the network works."
	case errors.Is(err, sshconn.ErrConfig), errors.Is(err, sshconn.ErrUnsupported):
		se.Kind = ErrorConfig
		se.Message = "The SSH settings for this server cannot be used: " + plainCause(err)
	default:
		se.Message = "Could not connect: " + plainCause(err)
	}
	return se
}

// withServers gives the App its server logins.
func withServers(cfg serverConfig) appOption {
	return func(a *App) {
		a.servers = newServerManager(a.log, a.events.Publish, cfg)
	}
}

// openServerConfig opens the profiles file at profiles.DefaultPath() and the
// OS keyring. A broken file is reported (and kept): the app still starts and
// shows the error.
func openServerConfig(log *slog.Logger) serverConfig {
	store, err := profiles.Open("", log.With("component", "profiles"))
	if err != nil {
		log.Error("the profiles file cannot be used; server logins are read-only until it is fixed", "err", err)
	}
	// Each connected server runs in its own sandboxed `porthole agent` process.
	sup := agent.NewSupervisor(agent.SupervisorOptions{Exe: agentExecutable(), Logger: log.With("component", "agents")})
	return serverConfig{
		store:       store,
		secrets:     profiles.NewKeyring(log.With("component", "keyring")),
		backend:     keyringBackendName(),
		newLogin:    newAgentLoginFunc(sup),
		closeLogins: func() { _ = sup.Close() },
	}
}

func keyringBackendName() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS Keychain"
	case "windows":
		return "Windows Credential Manager"
	}
	return "Secret Service"
}

// --- App methods (docs/API.md) ---

// ListServers lists the server logins with their connection state.
func (a *App) ListServers() []ServerSummary { return a.servers.summaries() }

// ReloadServers reads profiles.json again (e.g. after fixing it by hand).
func (a *App) ReloadServers() (ServerList, error) { return a.servers.reload() }

// GetServer returns the saved profile of a server (no secrets).
func (a *App) GetServer(id string) (profiles.Profile, error) { return a.servers.get(id) }

// ValidateServer checks a profile as the form is typed: every field and the
// key file. It never saves anything.
func (a *App) ValidateServer(p profiles.Profile) ValidationResult { return a.servers.validate(p) }

// AddServer saves a new server (its id is assigned) and returns it.
func (a *App) AddServer(p profiles.Profile) (profiles.Profile, error) { return a.servers.add(p) }

// UpdateServer saves the changes to a server.
func (a *App) UpdateServer(p profiles.Profile) (profiles.Profile, error) { return a.servers.update(p) }

// DeleteServer disconnects a server, deletes it and its saved secrets.
func (a *App) DeleteServer(id string) error { return a.servers.remove(id) }

// DuplicateServer saves a copy of a server, with its saved secrets.
func (a *App) DuplicateServer(id string) (profiles.Profile, error) { return a.servers.duplicate(id) }

// ImportCandidates lists the hosts of ~/.ssh/config that can be imported.
func (a *App) ImportCandidates() (ImportList, error) { return a.servers.importCandidates() }

// ImportServers imports the named ~/.ssh/config hosts; with link, each stays
// linked to its alias (resolved again at every connection).
func (a *App) ImportServers(aliases []string, link bool) (ImportResult, error) {
	return a.servers.importServers(aliases, link)
}

// Connect connects a server and returns once it is connected or has failed;
// progress, questions and state changes arrive as events meanwhile.
func (a *App) Connect(id string) (ServerSummary, error) { return a.servers.connect(id) }

// Disconnect disconnects a server (and cancels its open questions).
func (a *App) Disconnect(id string) (ServerSummary, error) {
	if _, err := a.servers.get(id); err != nil {
		return ServerSummary{}, err
	}
	a.servers.disconnect(id, "disconnected by you")
	return a.servers.summary(id), nil
}

// Prompts returns the open questions (as the `prompts` event does).
func (a *App) Prompts() []Prompt { return a.servers.broker.list() }

// AnswerPrompt answers an open question.
func (a *App) AnswerPrompt(promptID string, answer PromptAnswer) error {
	return a.servers.broker.answer(promptID, answer)
}

// CancelPrompt cancels an open question; its connection attempt stops.
func (a *App) CancelPrompt(promptID string) error { return a.servers.broker.cancel(promptID) }

// ServerLog returns the last 1000 lines of a server's log.
func (a *App) ServerLog(id string) (ServerLogView, error) {
	if _, err := a.servers.get(id); err != nil {
		return ServerLogView{}, err
	}
	return a.servers.serverLog(id), nil
}

// KeyringStatus checks whether secrets can be kept in the OS keyring.
func (a *App) KeyringStatus() KeyringStatus { return a.servers.keyringStatus(true) }
