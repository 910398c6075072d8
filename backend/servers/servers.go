// Package servers owns the server logins: the profiles (create, edit,
// delete, import from ~/.ssh/config, validation, keyring status), the
// connect/disconnect state machine with its progress steps, each server's
// log, and the plain-words classification of connection errors. Each
// connected server is one agent.Login, started through Config.StartLogin
// (in the app: a sandboxed `porthole agent` process; in tests: an
// in-process agent.LocalLogin). Other rooms get a server's live login
// through Manager.Login, never through the Manager's state.
package servers

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// Event topics of server logins.
var (
	// TopicServers carries ServerList: the profiles with their connection
	// state, and the profiles file's load error; in every snapshot.
	TopicServers = events.NewTopic[ServerList]("servers")
	// TopicServerProgress carries ServerProgress, one per step of a connection.
	TopicServerProgress = events.NewTopic[ServerProgress]("server.progress")
	// TopicServerLog carries ServerLogLine, one per line of a server's log.
	TopicServerLog = events.NewTopic[ServerLogLine]("server.log")
	// TopicKeyring carries KeyringStatus when it is learned or changes.
	TopicKeyring = events.NewTopic[KeyringStatus]("keyring")
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
	ErrorDropsAfterLogin                  // the server accepts the login and closes the connection at once
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
	ErrorDropsAfterLogin: "drops-after-login",
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

// Config is what the server logins need.
type Config struct {
	Store         *profiles.Store      // nil: no profiles (server logins unavailable)
	Secrets       profiles.SecretStore // nil: nothing is remembered
	Backend       string               // the keyring's name for KeyringStatus
	SSH           SSHBase
	PromptTimeout time.Duration // 0: prompts.DefaultPromptTimeout
	// StartLogin starts a server's login (the app: Supervisor.Start, a
	// sandboxed agent; tests: agent.NewLocalLogin). Required.
	StartLogin StartLoginFunc
	// CloseLogins runs at shutdown, after every login closed (stops the Supervisor).
	CloseLogins func()
}

// keyringTTL is how long a keyring check is reused.
const keyringTTL = 15 * time.Second

// Manager holds the server logins: the profiles, their secrets, the
// connected logins, their progress, state and logs.
type Manager struct {
	log    *slog.Logger
	bus    *events.Bus
	cfg    Config
	broker *prompts.Broker
	// changed: the number of servers changed (app.status)
	changed func()
	// connected runs after a Connect succeeded (the app binds its forwards
	// again in a new agent); removed after a server was deleted.
	connected    func(id string)
	removed      func(id string)
	disconnected func(id string)
	// agentEvent runs for every event of a login's agent process (crashed,
	// restarted, failed…); see OnAgentEvent.
	agentEvent func(id string, e agent.AgentEvent)

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

	userMu       sync.Mutex
	userConnects map[string]int // Connect calls (a person's action) in flight, by server

	now func() time.Time // the clock (tests replace it)
}

// serverLive is the runtime state of one server.
type serverLive struct {
	runner    *runner
	gen       uint64 // of runner; events of older runners are ignored
	state     ServerState
	reason    string
	since     time.Time
	lastErr   *ServerError
	progress  []ProgressStep
	dialStart time.Time
	connected bool // runner was connected at least once

	// The dashboard (ServerStats): when the connection came up, the last
	// RTT, the forwards' summed counters, the last 24 h's reconnects.
	upSince    time.Time
	rtt        time.Duration
	traffic    forwarder.StatsSnapshot
	trafficAt  time.Time
	reconnects reconnectRing
}

// New returns the manager of the server logins; events go to bus.
func New(log *slog.Logger, bus *events.Bus, cfg Config) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.PromptTimeout <= 0 {
		cfg.PromptTimeout = prompts.DefaultPromptTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		log:     log,
		bus:     bus,
		cfg:     cfg,
		broker:  prompts.NewBroker(cfg.PromptTimeout, bus, log.With("component", "prompts")),
		changed: func() {},
		ctx:     ctx,
		cancel:  cancel,
		live:    map[string]*serverLive{},
		logs:    map[string]*logRing{},

		userConnects: map[string]int{},
		now:          time.Now,
	}
}

// Start ties the logins to the UI's lifetime and publishes the first state.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.cancel()
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.mu.Unlock()
	context.AfterFunc(ctx, m.Shutdown)
	m.publishServers()
	m.broker.PublishList()
	if m.cfg.Store != nil {
		if err := m.cfg.Store.LoadError(); err != nil {
			m.log.Error("the profiles file cannot be used; server logins are read-only until it is fixed", "err", err)
		}
	}
	m.wg.Go(func() { m.KeyringStatus(true) })
}

// Shutdown disconnects every login and cancels every question; it is
// idempotent and waits for what the manager started.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return
	}
	m.closed = true
	m.cancel()
	var runners []*runner
	for id, lv := range m.live {
		if lv.runner != nil {
			runners = append(runners, lv.runner)
			lv.runner = nil
			lv.state, lv.reason = ServerDisconnected, "Porthole is quitting"
		}
		m.broker.CancelServer(id)
	}
	m.mu.Unlock()
	for _, r := range runners {
		_ = r.Close()
	}
	m.wg.Wait()
	if m.cfg.CloseLogins != nil {
		m.cfg.CloseLogins()
	}
}

var errNoProfiles = apperr.Mark(errors.New("server logins are not available in this mode"), apperr.ErrUnavailable)

func (m *Manager) store() (*profiles.Store, error) {
	if m.cfg.Store == nil {
		return nil, errNoProfiles
	}
	return m.cfg.Store, nil
}

// Count is the number of saved servers.
func (m *Manager) Count() int {
	if m.cfg.Store == nil {
		return 0
	}
	return len(m.cfg.Store.List())
}

// --- listing and events ---

func (m *Manager) Summaries() []ServerSummary {
	if m.cfg.Store == nil {
		return []ServerSummary{}
	}
	list := m.cfg.Store.List()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ServerSummary, 0, len(list))
	for _, p := range list {
		out = append(out, m.summaryLocked(p))
	}
	return out
}

func (m *Manager) summaryLocked(p profiles.Profile) ServerSummary {
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

func (m *Manager) Summary(id string) ServerSummary {
	if m.cfg.Store == nil {
		return ServerSummary{ID: id}
	}
	p, err := m.cfg.Store.Get(id)
	if err != nil {
		return ServerSummary{ID: id}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.summaryLocked(p)
}

func (m *Manager) ServerList() ServerList {
	l := ServerList{Servers: m.Summaries()}
	if m.cfg.Store != nil {
		l.Path = m.cfg.Store.Path()
		if err := m.cfg.Store.LoadError(); err != nil {
			l.LoadError = err.Error()
			l.ReadOnly = true
		}
	} else {
		l.LoadError = "server logins are not available in this mode"
		l.ReadOnly = true
	}
	return l
}

func (m *Manager) publishServers() {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	events.Publish(m.bus, TopicServers, m.ServerList())
}

// appendLog adds a line to a server's log and publishes it.
func (m *Manager) appendLog(id, line string) {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	r := m.logs[id]
	if r == nil {
		r = &logRing{}
		m.logs[id] = r
	}
	seq := r.add(line)
	events.Publish(m.bus, TopicServerLog, ServerLogLine{ID: id, Seq: seq, Line: line})
}

// note writes a line of Porthole's own into a server's log (and the app log).
func (m *Manager) note(id string, level slog.Level, msg string, args ...any) {
	m.appendLog(id, formatLine(time.Now(), level, msg, args...))
	m.log.Log(context.Background(), level, msg, append([]any{"server", id}, args...)...)
}

func (m *Manager) ServerLog(id string) ServerLogView {
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

// KeyringStatus checks the keyring (at most every keyringTTL unless force)
// and publishes a change.
func (m *Manager) KeyringStatus(force bool) KeyringStatus {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	if !force && m.keyKnown && time.Since(m.keyAt) < keyringTTL {
		return m.keyStatus
	}
	st := KeyringStatus{Service: profiles.KeyringService, Backend: m.cfg.Backend}
	var err error
	switch s := m.cfg.Secrets.(type) {
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
		events.Publish(m.bus, TopicKeyring, st)
	}
	return st
}

// --- profiles ---

// Validate checks a profile like the form needs it: every field, and the key file.
func (m *Manager) Validate(p profiles.Profile) ValidationResult {
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
	return &profiles.ValidationError{Fields: res.Fields}
}

func (m *Manager) Get(id string) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	p, err := st.Get(id)
	return p, err
}

func (m *Manager) Add(p profiles.Profile) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	p.ID = ""
	if res := m.Validate(p); !res.Valid {
		return profiles.Profile{}, invalid(res)
	}
	saved, err := st.Add(p)
	if err != nil {
		return profiles.Profile{}, err
	}
	m.note(saved.ID, slog.LevelInfo, "server added", "name", saved.Name, "host", saved.Host, "port", saved.Port)
	m.publishServers()
	m.changed()
	return saved, nil
}

func (m *Manager) Update(p profiles.Profile) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	if _, err := st.Get(p.ID); err != nil {
		return profiles.Profile{}, err
	}
	if res := m.Validate(p); !res.Valid {
		return profiles.Profile{}, invalid(res)
	}
	if err := st.Update(p); err != nil {
		return profiles.Profile{}, err
	}
	m.note(p.ID, slog.LevelInfo, "server changed; a connection in use keeps the old settings until it reconnects")
	m.publishServers()
	saved, err := st.Get(p.ID)
	return saved, err
}

func (m *Manager) Remove(id string) error {
	st, err := m.store()
	if err != nil {
		return err
	}
	if _, err := st.Get(id); err != nil {
		return err
	}
	m.Disconnect(id, "the server was deleted")
	if err := st.Delete(id); err != nil {
		return err
	}
	if m.cfg.Secrets != nil {
		if err := m.cfg.Secrets.DeleteAll(id); err != nil {
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

func (m *Manager) Duplicate(id string) (profiles.Profile, error) {
	st, err := m.store()
	if err != nil {
		return profiles.Profile{}, err
	}
	dup, err := st.Duplicate(id)
	if err != nil {
		return profiles.Profile{}, err
	}
	if m.cfg.Secrets != nil {
		if err := profiles.CopySecrets(m.cfg.Secrets, id, dup.ID); err != nil {
			m.note(dup.ID, slog.LevelWarn, "the saved secrets could not be copied; Porthole will ask for them", "err", err)
		}
	}
	m.note(dup.ID, slog.LevelInfo, "server duplicated", "from", id)
	m.publishServers()
	m.changed()
	return dup, nil
}

func (m *Manager) Reload() (ServerList, error) {
	st, err := m.store()
	if err != nil {
		return ServerList{}, err
	}
	err = st.Reload()
	m.publishServers()
	m.changed()
	if err != nil {
		return m.ServerList(), apperr.Mark(err, apperr.ErrConflict)
	}
	return m.ServerList(), nil
}

// --- ~/.ssh/config import ---

func (m *Manager) sshConfigPath() (string, error) {
	if c := m.cfg.SSH.ConfigPath; c != "" && !strings.EqualFold(c, "none") {
		return c, nil
	}
	home := m.cfg.SSH.HomeDir
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
type sshResolver struct{ base SSHBase }

func (r sshResolver) Resolve(alias string) (profiles.Resolved, error) {
	cfg, err := sshconn.Resolve(alias, sshconn.Options{HomeDir: r.base.HomeDir, ConfigPath: r.base.ConfigPath, SystemConfigPath: r.base.SystemConfigPath})
	if err != nil {
		return profiles.Resolved{}, err
	}
	res := profiles.Resolved{HostName: cfg.HostName, User: cfg.User, Port: cfg.Port}
	if !isDefaultIdentities(cfg.IdentityFiles, cfg.HomeDir) {
		for _, f := range cfg.IdentityFiles {
			res.IdentityFiles = append(res.IdentityFiles, profiles.ShortenHome(f, cfg.HomeDir))
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
	fl, err := sshconn.ConfigForwards(alias, sshconn.Options{HomeDir: r.base.HomeDir, ConfigPath: r.base.ConfigPath, SystemConfigPath: r.base.SystemConfigPath})
	if err != nil {
		return profiles.Resolved{}, err
	}
	res.LocalForwards, res.RemoteForwards, res.DynamicForwards = fl.Local, fl.Remote, fl.Dynamic
	return res, nil
}

// ResolveHost resolves a host name or alias through ~/.ssh/config the way
// the import does (the leaked-tunnel finder makes a profile for a tunnel's
// destination with it).
func (m *Manager) ResolveHost(host string) (profiles.Resolved, error) {
	return sshResolver{base: m.cfg.SSH}.Resolve(host)
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

func (m *Manager) ImportCandidates() (ImportList, error) {
	path, err := m.sshConfigPath()
	if err != nil {
		return ImportList{}, err
	}
	l := ImportList{ConfigPath: path, Candidates: []profiles.Candidate{}}
	cands, err := profiles.ImportCandidates(path, sshResolver{base: m.cfg.SSH})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return l, nil
	case err != nil:
		return l, fmt.Errorf("reading %s: %w", path, err)
	}
	l.Exists = true
	if m.cfg.Store != nil {
		profiles.MarkImported(cands, m.cfg.Store.List())
	}
	l.Candidates = cands
	return l, nil
}

func (m *Manager) ImportServers(aliases []string, link bool) (ImportResult, error) {
	st, err := m.store()
	if err != nil {
		return ImportResult{}, err
	}
	if len(aliases) == 0 {
		return ImportResult{}, apperr.BadInput("choose at least one host to import")
	}
	l, err := m.ImportCandidates()
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
				return res, err
			}
			res.Skipped = append(res.Skipped, ImportSkip{Alias: a, Reason: err.Error()})
			continue
		}
		res.Added = append(res.Added, saved)
		m.note(saved.ID, slog.LevelInfo, "imported from "+l.ConfigPath, "alias", a, "linked", link, "rules", len(saved.Forwards))
		if _, skipped := c.Resolved.ForwardRules(); len(skipped) > 0 {
			m.note(saved.ID, slog.LevelWarn, "forward lines not imported as rules: "+strings.Join(skipped, "; "))
		}
	}
	if len(res.Added) > 0 {
		m.publishServers()
		m.changed()
	}
	return res, nil
}

// --- connections ---

func (m *Manager) liveLocked(id string) *serverLive {
	lv := m.live[id]
	if lv == nil {
		lv = &serverLive{}
		m.live[id] = lv
	}
	return lv
}

func (m *Manager) Connect(id string) (ServerSummary, error) {
	p, err := m.Get(id)
	if err != nil {
		return ServerSummary{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ServerSummary{}, apperr.Mark(errors.New("Porthole is quitting"), apperr.ErrUnavailable)
	}
	ctx := m.ctx
	lv := m.liveLocked(id)
	r := lv.runner
	if r == nil {
		m.gen++
		gen := m.gen
		r = newRunner(p, m.envFor(p, gen), m.cfg.StartLogin)
		lv.runner, lv.gen, lv.connected = r, gen, false
	}
	if lv.state != ServerConnected {
		lv.state, lv.reason, lv.since = ServerConnecting, "connecting", time.Now()
		lv.lastErr = nil
	}
	m.mu.Unlock()
	m.userMu.Lock()
	m.userConnects[id]++
	m.userMu.Unlock()
	defer func() {
		m.userMu.Lock()
		if m.userConnects[id]--; m.userConnects[id] <= 0 {
			delete(m.userConnects, id)
		}
		m.userMu.Unlock()
	}()
	m.note(id, slog.LevelInfo, "connecting", "to", userHost(p))
	m.publishServers()

	err = r.Connect(ctx)

	m.mu.Lock()
	current := lv.runner == r && m.live[id] == lv
	if err == nil {
		var ready *ServerProgress
		if current && (lv.state == ServerConnecting || lv.state == ServerConnected) {
			// Only over "connecting": an event that arrived meanwhile (the
			// connection was lost again) tells the later truth.
			lv.connected = true
			lv.state, lv.lastErr = ServerConnected, nil
			lv.reason, lv.since = "connected", time.Now()
			if lv.upSince.IsZero() {
				lv.upSince = lv.since
			}
			// The login's step events travel on their own (a hub, or the
			// agent's pipe) and may arrive after Connect returned: the
			// reply always ends with the ready step.
			if n := len(lv.progress); n > 0 && lv.progress[n-1].Step != sshconn.StepReady.String() {
				ps := ProgressStep{Step: sshconn.StepReady.String(), ElapsedMs: time.Since(lv.dialStart).Milliseconds()}
				lv.progress = append(lv.progress, ps)
				ready = &ServerProgress{ID: id, Step: ps.Step, ElapsedMs: ps.ElapsedMs}
			}
		}
		m.mu.Unlock()
		if ready != nil {
			events.Publish(m.bus, TopicServerProgress, *ready)
		}
		m.note(id, slog.LevelInfo, "connected")
		m.publishServers()
		m.publishStats(id)
		if m.connected != nil {
			m.connected(id)
		}
		return m.Summary(id), nil
	}
	se := ClassifyConnectError(err, m.cfg.PromptTimeout)
	if current {
		lv.runner = nil
		if se.Kind == ErrorCanceled {
			lv.state, lv.reason, lv.lastErr = ServerDisconnected, "canceled", nil
		} else {
			lv.state, lv.reason, lv.lastErr = ServerFailed, se.Message, se
		}
		lv.since = time.Now()
		lv.clearTraffic()
	}
	m.mu.Unlock()
	if current {
		m.broker.CancelServer(id)
		_ = r.Close()
		if m.disconnected != nil {
			m.disconnected(id)
		}
	}
	if se.Kind == ErrorCanceled {
		m.note(id, slog.LevelInfo, "connection canceled")
	} else {
		m.note(id, slog.LevelWarn, "connection failed: "+se.Message, "err", se.Detail)
	}
	m.publishServers()
	return m.Summary(id), &ConnectError{Server: se, Err: err}
}

// Prewarm dials server id's SSH connection in the background when the user
// is about to use it (its page opened, an Open button hovered, a saved tab
// restored) and the login has no connection now (it closed when unused).
// Only a server the user connected: a disconnected or failed one stays so.
// It never asks the user anything, returns at once, and is cheap to call
// often (at most one such dial runs per login).
func (m *Manager) Prewarm(id string) error {
	m.mu.Lock()
	lv, ctx := m.live[id], m.ctx
	var r *runner
	if lv != nil && lv.connected && (lv.state == ServerIdle || lv.state == ServerConnected) && !m.closed {
		r = lv.runner
	}
	m.mu.Unlock()
	if r == nil || ctx == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, prewarmTimeout)
	defer cancel()
	if err := r.prewarm(ctx); err != nil {
		m.log.Debug("prewarm", "server", id, "err", err)
	}
	return nil
}

// prewarmTimeout bounds the call to the login (it only starts the dial).
const prewarmTimeout = 2 * time.Second

func (m *Manager) Disconnect(id, why string) {
	m.mu.Lock()
	lv := m.live[id]
	var r *runner
	if lv != nil {
		r = lv.runner
		lv.runner = nil
		if r != nil {
			lv.state, lv.reason, lv.since, lv.lastErr = ServerDisconnected, why, time.Now(), nil
			lv.clearTraffic()
		}
	}
	m.mu.Unlock()
	m.broker.CancelServer(id)
	if r != nil {
		_ = r.Close()
		m.publishStats(id)
		m.note(id, slog.LevelInfo, "disconnected", "why", why)
		if m.disconnected != nil {
			m.disconnected(id)
		}
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
func (m *Manager) envFor(p profiles.Profile, gen uint64) runnerEnv {
	id := p.ID
	log := serverLogger(m.log, p.Name, func(line string) { m.appendLog(id, line) })
	return runnerEnv{
		log: log,
		prompter: prompts.LoginEnv{
			Log: log, Broker: m.broker, Secrets: m.cfg.Secrets, HomeDir: m.cfg.SSH.HomeDir,
			KeyringAvailable: func() bool { return m.KeyringStatus(false).Available },
		},
		ssh:     m.cfg.SSH,
		onStep:  func(step sshconn.Step, detail string) { m.onStep(id, gen, step, detail) },
		onEvent: func(e forwarder.Event) { m.onEvent(id, gen, e) },
		onStats: func(st agent.Stats) { m.onStats(id, gen, st) },
		onAgent: func(e agent.AgentEvent) {
			if m.agentEvent != nil {
				m.agentEvent(id, e)
			}
		},
		// Room for a host-key question and every password attempt.
		connectTimeout: 10*m.cfg.PromptTimeout + time.Minute,
	}
}

func (m *Manager) onStep(id string, gen uint64, step sshconn.Step, detail string) {
	m.mu.Lock()
	lv := m.live[id]
	if lv == nil || lv.gen != gen || lv.runner == nil {
		m.mu.Unlock()
		return
	}
	if n := len(lv.progress); step == sshconn.StepReady && n > 0 && lv.progress[n-1].Step == step.String() {
		m.mu.Unlock()
		return // Connect already added it
	}
	now := time.Now()
	if step == sshconn.StepResolving || lv.dialStart.IsZero() {
		// Resolving is the first step of every dial (jump hosts repeat the others).
		lv.progress, lv.dialStart = nil, now
	}
	ps := ProgressStep{Step: step.String(), Detail: detail, ElapsedMs: now.Sub(lv.dialStart).Milliseconds()}
	lv.progress = append(lv.progress, ps)
	m.mu.Unlock()
	events.Publish(m.bus, TopicServerProgress, ServerProgress{ID: id, Step: ps.Step, ElapsedMs: ps.ElapsedMs, Detail: detail})
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

func (m *Manager) onEvent(id string, gen uint64, e forwarder.Event) {
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
	m.noteStateLocked(lv, e)
	switch e.State {
	case forwarder.StateReady:
		lv.lastErr = nil
	case forwarder.StateFailed:
		if e.Err != nil {
			lv.lastErr = ClassifyConnectError(e.Err, m.cfg.PromptTimeout)
		}
	case forwarder.StateIdle, forwarder.StateReconnecting:
		if e.Err != nil && lv.connected {
			lv.lastErr = &ServerError{Kind: ErrorConnectionLost, Message: "The connection was lost: " + plainCause(e.Err), Detail: e.Err.Error(), Time: time.Now()}
		}
	}
	m.mu.Unlock()
	m.publishServers()
	m.publishStats(id)
}

// plainCause is an error's text without Porthole's internal wrapping.
func plainCause(err error) string {
	s := err.Error()
	for _, p := range []string{forwarder.ErrUnavailable.Error() + ": ", forwarder.ErrPermanent.Error() + ": "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// ConnectError is what Connect returns: the plain-words message, with the
// technical error underneath (errors.Is/As).
type ConnectError struct {
	Server *ServerError
	Err    error
}

func (e *ConnectError) Error() string { return e.Server.Message }
func (e *ConnectError) Unwrap() error { return e.Err }

// ClassifyConnectError says in plain words why a connection failed.
func ClassifyConnectError(err error, promptTimeout time.Duration) *ServerError {
	se := &ServerError{Kind: ErrorOther, Detail: plainCause(err), Time: time.Now().UTC()}
	var mm *sshconn.HostKeyMismatchError
	var ae *sshconn.AuthError
	switch {
	case errors.As(err, &mm):
		se.Kind = ErrorHostKeyChanged
		hk := &HostKeyChange{Host: mm.Host, KeyType: mm.KeyType, Fingerprint: mm.Fingerprint}
		var lines, known []string
		for _, k := range mm.Known {
			hk.Known = append(hk.Known, KnownHostKey{Type: k.Type, Fingerprint: k.Fingerprint, File: k.File, Line: k.Line})
			lines = append(lines, fmt.Sprintf("line %d of %s", k.Line, k.File))
			known = append(known, fmt.Sprintf("%s %s", k.Type, k.Fingerprint))
		}
		if len(mm.Known) > 0 {
			hk.RemoveCommand = fmt.Sprintf("ssh-keygen -R '%s' -f '%s'", mm.Host, mm.Known[0].File)
		}
		se.HostKey = hk
		recorded := "the recorded key"
		if len(known) > 0 {
			recorded = strings.Join(known, " and ")
		}
		se.Message = fmt.Sprintf("Porthole refused to connect: the host key of %s has changed. known_hosts has %s, but the server sent %s %s. Someone may be intercepting the connection, or the server was reinstalled. If you know the key changed on purpose, remove the old key (%s) and connect again.",
			mm.Host, recorded, mm.KeyType, mm.Fingerprint, strings.Join(lines, ", "))
	case errors.Is(err, sshconn.ErrHostKeyRejected):
		se.Kind = ErrorHostKeyRejected
		se.Message = "You rejected the server's host key, so Porthole did not connect."
	case errors.Is(err, sshconn.ErrHostKeyUnknown):
		se.Kind = ErrorHostKeyUnknown
		se.Message = "The server's host key is not in known_hosts and your ssh config (StrictHostKeyChecking yes) does not allow asking; add its key to known_hosts first."
	case errors.Is(err, sshconn.ErrHostKeyRevoked):
		se.Kind = ErrorHostKeyRevoked
		se.Message = "The server presented a host key that known_hosts marks as revoked. Do not connect; ask the server's administrator."
	case errors.Is(err, sshconn.ErrPromptCanceled), errors.Is(err, context.Canceled), errors.Is(err, forwarder.ErrSessionClosed),
		errors.Is(err, agent.ErrClosed), errors.Is(err, errLoginClosed):
		se.Kind = ErrorCanceled
		se.Message = "Connection canceled."
	case errors.Is(err, forwarder.ErrDropsAfterLogin):
		se.Kind = ErrorDropsAfterLogin
		se.Message = fmt.Sprintf("The server accepts the login and then closes the connection at once (%d times in a row), so Porthole stopped trying. Its sshd_config may have a ChrootDirectory or ForceCommand problem: the server's log says which (look for \"safely_chroot\" or \"fatal\"). Connect again once it is fixed.", forwarder.EarlyDeathLimit)
	case errors.Is(err, sshconn.ErrPromptTimeout):
		se.Kind = ErrorPromptTimeout
		what := "a question"
		var pt *prompts.TimeoutError
		if errors.As(err, &pt) {
			what = "the " + pt.Kind.String() + " question"
			promptTimeout = pt.After
		}
		se.Message = fmt.Sprintf("Nobody answered %s within %s, so Porthole gave up. Connect again when you are ready.", what, prompts.FmtWait(promptTimeout))
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

// KeyringBackendName names the OS keyring, for KeyringStatus.
func KeyringBackendName() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS Keychain"
	case "windows":
		return "Windows Credential Manager"
	}
	return "Secret Service"
}

// Prompts is the broker of the logins' questions.
func (m *Manager) Prompts() *prompts.Broker { return m.broker }

// OnChange sets what runs when the number of servers changed (app.status).
// Call it before Start.
func (m *Manager) OnChange(f func()) { m.changed = f }

// OnConnected sets what runs after Connect succeeded (the apps bind their
// forwards again in the new login); OnRemoved what runs after a server was
// deleted. Call them before Start.
func (m *Manager) OnConnected(f func(id string)) { m.connected = f }

// OnRemoved: see OnConnected.
func (m *Manager) OnRemoved(f func(id string)) { m.removed = f }

// OnAgentEvent sets what runs for every event of a server login's agent
// process (started, crashed, restarted, failed, stopped), from the login's
// event goroutine: f must not block. Call it before Start.
func (m *Manager) OnAgentEvent(f func(id string, e agent.AgentEvent)) { m.agentEvent = f }

// UserConnecting reports whether a Connect call (a person's action) is in
// flight for the server: a question asked meanwhile is one they wait for; a
// question asked otherwise comes from a background reconnect.
// It takes a lock of its own, so that it may be called from any event.
func (m *Manager) UserConnecting(id string) bool {
	m.userMu.Lock()
	defer m.userMu.Unlock()
	return m.userConnects[id] > 0
}

// OnDisconnected sets what runs after a server's login was closed
// (Disconnect, a deletion, or a failed Connect): its forwards are gone.
// Call it before Start.
func (m *Manager) OnDisconnected(f func(id string)) { m.disconnected = f }

// ErrNotConnected: the server has no live login; connect it first.
var ErrNotConnected = errors.New("the server is not connected")

// Login returns the profile and the live login of a connected server, as
// the apps see it: LoginFor(id, OwnerApps).
func (m *Manager) Login(id string) (profiles.Profile, agent.Login, error) {
	return m.LoginFor(id, OwnerApps)
}

// LoginFor returns the profile and owner's view of the live login of a
// connected server: its SetForwards replaces only owner's forwards (the
// other owners' stay), its Close does nothing, and it is the same value
// until the server's login changes. The error wraps ErrNotConnected (and
// apperr.ErrConflict) when it is not connected, profiles.ErrNotFound when
// there is no such server.
func (m *Manager) LoginFor(id, owner string) (profiles.Profile, agent.Login, error) {
	p, err := m.Get(id)
	if err != nil {
		return p, nil, err
	}
	m.mu.Lock()
	var r *runner
	if lv := m.live[id]; lv != nil {
		r = lv.runner
	}
	m.mu.Unlock()
	if l := r.login(owner); l != nil {
		return p, l, nil
	}
	return p, nil, apperr.Mark(apperr.Mark(fmt.Errorf("Connect to %s first: its apps are listed and opened through its connection", p.Name), ErrNotConnected), apperr.ErrConflict)
}
