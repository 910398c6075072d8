// Package rules keeps each server's saved forward rules (-L, -R, -D; the
// profile's Forwards): it adds, edits and removes them in the profiles
// file, starts them on the server's login when it connects (through the
// login's forward set, beside the apps' forwards), connects at start the
// servers that have a rule asking for it, and reports each rule's state,
// endpoints, counters and last error in plain words (the `rules` event).
// It sees the servers room only as Logins.
package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
)

// TopicRules carries RuleList: one server's rules, whenever their state or
// counters changed (at most about once a second per server: the agent
// batches its stats).
var TopicRules = events.NewTopic[RuleList]("rules")

// forwardTimeout bounds binding a server's rules in its agent.
const forwardTimeout = 20 * time.Second

// RuleState is where a rule stands.
type RuleState int

const (
	// RuleWaiting: the server is not connected; the rule starts when it connects.
	RuleWaiting RuleState = iota + 1
	// RuleStarting: being set up (a -R rule: its request is on its way).
	RuleStarting
	// RuleListening: it listens (for -R: the server listens) and forwards.
	RuleListening
	// RuleRefused: the server refused it (sshd_config); Reason names the setting.
	RuleRefused
	// RuleFailed: it cannot run (e.g. the local port is taken); Reason says why.
	RuleFailed
)

var stateNames = [...]string{RuleWaiting: "waiting", RuleStarting: "starting", RuleListening: "listening", RuleRefused: "refused", RuleFailed: "failed"}

func (s RuleState) String() string {
	if s > 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("RuleState(%d)", int(s))
}

// MarshalText writes the state's name.
func (s RuleState) MarshalText() ([]byte, error) {
	if s <= 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("unknown rule state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses a state's name.
func (s *RuleState) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if i > 0 && n == string(b) {
			*s = RuleState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown rule state %q", b)
}

// RuleStatus is one rule as the server's page shows it.
type RuleStatus struct {
	Rule  profiles.ForwardRule `json:"rule"`
	State RuleState            `json:"state"`
	// Reason says the state in plain words ("waiting for the server", the
	// server's refusal naming the sshd_config setting, …).
	Reason string `json:"reason,omitempty"`
	// Local is this computer's end: where -L and -D listen (the bound
	// address once listening), or the target of -R.
	Local string `json:"local"`
	// Remote is the server's end: the target of -L, where the server
	// listens for -R (with the port it chose); "" for -D.
	Remote string `json:"remote,omitempty"`

	ActiveConns int64  `json:"activeConns"`
	TotalConns  uint64 `json:"totalConns"`
	BytesIn     uint64 `json:"bytesIn"`  // server → local client
	BytesOut    uint64 `json:"bytesOut"` // local client → server
	// At is when the counters were read (the frontend turns successive
	// byte counts into bytes per second).
	At time.Time `json:"at,omitzero"`
	// LastError is the rule's last connection error in plain words.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
}

// RuleList is ListRules' answer and the `rules` event.
type RuleList struct {
	ServerID string       `json:"serverId"`
	Rules    []RuleStatus `json:"rules"`
}

// ValidationResult is ValidateRule's answer.
type ValidationResult struct {
	Valid  bool                  `json:"valid"`
	Fields []profiles.FieldError `json:"fields"`          // problems; empty when valid
	Notes  []profiles.FieldError `json:"notes,omitempty"` // not problems: what to expect
}

// Logins gives the rules a server's profile and live login; the servers
// room implements it (servers.Manager).
type Logins interface {
	Get(id string) (profiles.Profile, error)
	// LoginFor returns owner's view of a connected server's login: its
	// SetForwards replaces only owner's forwards.
	LoginFor(id, owner string) (profiles.Profile, agent.Login, error)
}

// Options are what New needs.
type Options struct {
	Log    *slog.Logger // nil: discard
	Bus    *events.Bus
	Logins Logins
	// Store saves the rules (the servers' profiles file); nil: rules are
	// unavailable (tests of other parts).
	Store *profiles.Store
	// Owner names the rules' forwards in each login's forward set.
	Owner string
}

// Manager keeps the rules of every server and runs those of the
// connected ones.
type Manager struct {
	log    *slog.Logger
	bus    *events.Bus
	logins Logins
	store  *profiles.Store
	owner  string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	live   map[string]*running // by server ID
}

// running is the rules of one connected server.
type running struct {
	login   agent.Login // the view they were set on
	unsub   func()
	applyMu sync.Mutex // one SetForwards at a time
	infos   map[string]agent.ForwardInfo
	at      time.Time
	session forwarder.State
	// refusedAt: for -L and -D, the successful connection count when a
	// server refusal was last seen, by forward ID; the rule shows
	// "refused" until a connection succeeds again.
	refusedAt map[string]uint64
	lastErrAt map[string]time.Time
}

// New returns the rules manager.
func New(o Options) *Manager {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{log: log, bus: o.Bus, logins: o.Logins, store: o.Store, owner: o.Owner, ctx: ctx, cancel: cancel, live: map[string]*running{}}
}

var errNoRules = apperr.Mark(errors.New("saved rules are not available in this mode"), apperr.ErrUnavailable)

// ErrNoRule: the server has no rule with that ID.
var ErrNoRule = apperr.Mark(errors.New("no such rule"), apperr.ErrNotFound)

// forwardID is the rule's forward in the login's set.
func forwardID(r profiles.ForwardRule) string { return "rule:" + r.ID }

// List returns a server's rules and their state.
func (m *Manager) List(id string) (RuleList, error) {
	p, err := m.logins.Get(id)
	if err != nil {
		return RuleList{}, err
	}
	return m.list(p), nil
}

func (m *Manager) list(p profiles.Profile) RuleList {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := RuleList{ServerID: p.ID, Rules: make([]RuleStatus, 0, len(p.Forwards))}
	run := m.live[p.ID]
	for _, r := range p.Forwards {
		out.Rules = append(out.Rules, status(r, run))
	}
	return out
}

func (m *Manager) publish(id string) {
	p, err := m.logins.Get(id)
	if err != nil {
		return
	}
	events.Publish(m.bus, TopicRules, m.list(p))
}

// status is one rule's state; run is nil while the server is not connected.
// Call with m.mu held.
func status(r profiles.ForwardRule, run *running) RuleStatus {
	st := RuleStatus{Rule: r, Local: listenSide(r), Remote: serverSide(r)}
	if r.Kind == profiles.ForwardRemote {
		st.Local = hostPort(r.LocalHost, r.LocalPort, "localhost")
	}
	if _, ok := spec(r); !ok {
		st.State, st.Reason = RuleFailed, "web forwards are opened from the server's apps, not as rules"
		return st
	}
	if run == nil {
		st.State, st.Reason = RuleWaiting, "waiting for the server: the rule starts when it connects"
		return st
	}
	in, ok := run.infos[forwardID(r)]
	if !ok {
		st.State, st.Reason = RuleStarting, "starting"
		return st
	}
	s := in.Stats
	st.ActiveConns, st.TotalConns, st.BytesIn, st.BytesOut, st.At = s.ActiveConns, s.TotalConns, s.BytesIn, s.BytesOut, run.at
	if s.LastError != "" {
		st.LastError, st.LastErrorAt = Explain(r, s.LastError), s.LastErrorAt
	}
	switch {
	case in.Error != "":
		msg, refused := explain(r, in.Error)
		st.State, st.Reason = RuleFailed, msg
		if refused {
			st.State = RuleRefused
		}
	case in.Remote != nil:
		rs := in.Remote
		if in.Addr != "" {
			st.Remote = in.Addr
		}
		switch rs.State {
		case forwarder.RemoteListening:
			st.State, st.Reason = RuleListening, rs.Reason
		case forwarder.RemoteRefused:
			st.State, st.Reason = RuleRefused, Explain(r, rs.Reason)
		case forwarder.RemoteWaitingConn:
			st.State, st.Reason = RuleStarting, "waiting for the connection to the server"
		default:
			st.State, st.Reason = RuleStarting, rs.Reason
		}
	case in.Addr != "":
		st.State, st.Local = RuleListening, in.Addr
		if _, refused := run.refusedAt[in.ID]; refused {
			st.State, st.Reason = RuleRefused, st.LastError
		}
	default:
		st.State, st.Reason = RuleStarting, "starting"
	}
	if st.State == RuleListening && st.Reason == "" {
		switch run.session {
		case forwarder.StateReconnecting, forwarder.StateFailed:
			st.Reason = "listening; the connection to the server is being made again, so new connections wait"
		}
	}
	return st
}

// --- editing ---

// Validate checks a rule of server id as the form is typed: its fields, and
// that no other rule of the server listens on the same local port.
func (m *Manager) Validate(id string, r profiles.ForwardRule) ValidationResult {
	res := ValidationResult{Fields: []profiles.FieldError{}}
	var ve *profiles.ValidationError
	if err := r.Validate(); errors.As(err, &ve) {
		res.Fields = append(res.Fields, ve.Fields...)
	}
	add := func(list *[]profiles.FieldError, field, reason string) {
		*list = append(*list, profiles.FieldError{Field: field, Reason: reason})
	}
	if r.Kind == profiles.ForwardWeb {
		add(&res.Fields, "kind", "web forwards are opened from the server's apps; choose local (-L), remote (-R) or dynamic (-D)")
	}
	listens := r.Kind == profiles.ForwardLocal || r.Kind == profiles.ForwardDynamic
	if p, err := m.logins.Get(id); err == nil && listens && r.LocalPort != 0 {
		for _, o := range p.Forwards {
			if o.ID != r.ID && (o.Kind == profiles.ForwardLocal || o.Kind == profiles.ForwardDynamic) && o.LocalPort == r.LocalPort && sameListenHost(o.LocalHost, r.LocalHost) {
				add(&res.Fields, "localPort", fmt.Sprintf("rule %s already listens on port %d", o.SSHForwardString(), r.LocalPort))
				break
			}
		}
	}
	if listens && r.LocalPort > 0 && r.LocalPort < 1024 {
		add(&res.Notes, "localPort", "ports below 1024 need administrator rights on most systems")
	}
	if listens && r.LocalHost != "" && r.LocalHost != "localhost" && r.LocalHost != "127.0.0.1" && r.LocalHost != "::1" {
		add(&res.Notes, "localHost", "other computers can reach this port; Porthole still lets only your own user's programs through")
	}
	if r.Kind == profiles.ForwardRemote && r.RemoteHost != "" && r.RemoteHost != "localhost" && r.RemoteHost != "127.0.0.1" && r.RemoteHost != "::1" {
		add(&res.Notes, "remoteHost", "other machines reach it only if the server's sshd_config has GatewayPorts yes or clientspecified")
	}
	res.Valid = len(res.Fields) == 0
	return res
}

func sameListenHost(a, b string) bool {
	norm := func(h string) string {
		if h == "" || h == "localhost" {
			return "127.0.0.1"
		}
		return h
	}
	return norm(a) == norm(b) || a == profiles.AllInterfaces || b == profiles.AllInterfaces
}

func (m *Manager) check(id string, r profiles.ForwardRule) error {
	if res := m.Validate(id, r); !res.Valid {
		return &profiles.ValidationError{Fields: res.Fields}
	}
	return nil
}

// Add saves a new rule for server id (its ID is assigned) and starts it if
// the server is connected.
func (m *Manager) Add(id string, r profiles.ForwardRule) (profiles.ForwardRule, error) {
	if m.store == nil {
		return r, errNoRules
	}
	r.ID = profiles.NewID()
	if err := m.check(id, r); err != nil {
		return r, err
	}
	if _, err := m.store.UpdateForwards(id, func(fs []profiles.ForwardRule) ([]profiles.ForwardRule, error) {
		return append(fs, r), nil
	}); err != nil {
		return r, err
	}
	m.log.Info("rule added", "server", id, "rule", r.SSHForwardString())
	m.changed(id)
	return r, nil
}

// Update saves the changes to a rule of server id (found by its ID) and
// restarts it if the server is connected.
func (m *Manager) Update(id string, r profiles.ForwardRule) (profiles.ForwardRule, error) {
	if m.store == nil {
		return r, errNoRules
	}
	if err := m.check(id, r); err != nil {
		return r, err
	}
	if _, err := m.store.UpdateForwards(id, func(fs []profiles.ForwardRule) ([]profiles.ForwardRule, error) {
		i := slices.IndexFunc(fs, func(o profiles.ForwardRule) bool { return o.ID == r.ID })
		if r.ID == "" || i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNoRule, r.ID)
		}
		fs[i] = r
		return fs, nil
	}); err != nil {
		return r, err
	}
	m.log.Info("rule changed", "server", id, "rule", r.SSHForwardString())
	m.changed(id)
	return r, nil
}

// Remove deletes a rule of server id and stops it.
func (m *Manager) Remove(id, ruleID string) error {
	if m.store == nil {
		return errNoRules
	}
	if _, err := m.store.UpdateForwards(id, func(fs []profiles.ForwardRule) ([]profiles.ForwardRule, error) {
		i := slices.IndexFunc(fs, func(o profiles.ForwardRule) bool { return o.ID == ruleID })
		if ruleID == "" || i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNoRule, ruleID)
		}
		return slices.Delete(fs, i, i+1), nil
	}); err != nil {
		return err
	}
	m.log.Info("rule removed", "server", id, "rule", ruleID)
	m.changed(id)
	return nil
}

// changed applies server id's rules again if it is connected, and publishes.
func (m *Manager) changed(id string) {
	m.mu.Lock()
	_, connected := m.live[id]
	m.mu.Unlock()
	if connected {
		m.Start(m.ctx, id)
		return
	}
	m.publish(id)
}

// --- running ---

// Start starts server id's rules on its live login (after a Connect; again
// after an edit). Rules saved without an ID get one first.
func (m *Manager) Start(ctx context.Context, id string) {
	p, l, err := m.logins.LoginFor(id, m.owner)
	if err != nil {
		m.publish(id)
		return
	}
	if slices.ContainsFunc(p.Forwards, func(r profiles.ForwardRule) bool { return r.ID == "" }) && m.store != nil {
		if saved, err := m.store.UpdateForwards(id, func(fs []profiles.ForwardRule) ([]profiles.ForwardRule, error) {
			for i := range fs {
				if fs[i].ID == "" {
					fs[i].ID = profiles.NewID()
				}
			}
			return fs, nil
		}); err == nil {
			p = saved
		} else {
			m.log.Warn("could not give the server's rules their ids; those without one do not start", "server", id, "err", err)
		}
	}
	run := m.attach(id, l)
	if run == nil {
		return
	}
	run.applyMu.Lock()
	defer run.applyMu.Unlock()
	var specs []agent.ForwardSpec
	for _, r := range p.Forwards {
		if r.ID == "" {
			continue
		}
		if s, ok := spec(r); ok {
			specs = append(specs, s)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	infos, err := l.SetForwards(fctx, specs)
	if err != nil && !errors.Is(err, agent.ErrListen) {
		m.log.Warn("the server's rules could not be started", "server", id, "err", err)
	}
	m.mu.Lock()
	if m.live[id] == run {
		for _, in := range infos {
			run.infos[in.ID] = in
		}
		keep := map[string]bool{}
		for _, s := range specs {
			keep[s.Key()] = true
		}
		for k := range run.infos {
			if !keep[k] {
				delete(run.infos, k)
			}
		}
		run.at = time.Now()
	}
	m.mu.Unlock()
	if len(specs) > 0 {
		m.log.Info("rules started", "server", id, "rules", len(specs))
	}
	m.publish(id)
}

// attach makes l the login of server id's rules and listens to its events
// (a new login replaces the old one's subscription).
func (m *Manager) attach(id string, l agent.Login) *running {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	run := m.live[id]
	if run != nil && run.login == l {
		m.mu.Unlock()
		return run
	}
	old := run
	run = &running{login: l, infos: map[string]agent.ForwardInfo{}, refusedAt: map[string]uint64{}, lastErrAt: map[string]time.Time{}}
	m.live[id] = run
	m.mu.Unlock()
	if old != nil && old.unsub != nil {
		old.unsub()
	}
	unsub := l.Subscribe(func(e agent.Event) { m.onEvent(id, run, e) })
	m.mu.Lock()
	if m.live[id] == run {
		run.unsub = unsub
		unsub = nil
	}
	m.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	return run
}

// onEvent takes the agent's batched stats and session states.
func (m *Manager) onEvent(id string, run *running, e agent.Event) {
	m.mu.Lock()
	if m.live[id] != run {
		m.mu.Unlock()
		return
	}
	switch {
	case e.Stats != nil:
		mine := false
		for _, in := range e.Stats.Forwards {
			if _, ok := run.infos[in.ID]; !ok {
				continue
			}
			mine = true
			run.infos[in.ID] = in
			noteRefusal(run, in)
		}
		run.session = e.Stats.Session.State
		run.at = time.Now()
		m.mu.Unlock()
		if mine {
			m.publish(id)
		}
		return
	case e.State != nil:
		changed := run.session != e.State.State
		run.session = e.State.State
		m.mu.Unlock()
		if changed {
			m.publish(id)
		}
		return
	}
	m.mu.Unlock()
}

// noteRefusal records a new server refusal of a -L or -D forward's
// connection, and forgets it once a connection went through again.
func noteRefusal(run *running, in agent.ForwardInfo) {
	s := in.Stats
	ok := s.TotalConns - min(s.FailedConns, s.TotalConns)
	if s.LastError != "" && s.LastErrorAt.After(run.lastErrAt[in.ID]) {
		run.lastErrAt[in.ID] = s.LastErrorAt
		if _, refused := explain(profiles.ForwardRule{}, s.LastError); refused {
			run.refusedAt[in.ID] = ok
			return
		}
	}
	if at, refused := run.refusedAt[in.ID]; refused && ok > at {
		delete(run.refusedAt, in.ID)
	}
}

// Stopped forgets the login of server id (it was disconnected): its rules
// wait for the next connection.
func (m *Manager) Stopped(id string) {
	m.mu.Lock()
	run := m.live[id]
	delete(m.live, id)
	m.mu.Unlock()
	if run != nil && run.unsub != nil {
		run.unsub()
	}
	m.publish(id)
}

// ConnectAtStart connects, in the background, every server with a rule
// that asks for it (connect is servers.Manager.Connect); its rules then
// start like on any connection. Close waits for the attempts.
func (m *Manager) ConnectAtStart(connect func(id string) error) {
	if m.store == nil {
		return
	}
	for _, p := range m.store.List() {
		if !slices.ContainsFunc(p.Forwards, func(r profiles.ForwardRule) bool { return r.ConnectAtStart }) {
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			m.log.Info("connecting at start for its rules", "server", p.ID, "name", p.Name)
			if err := connect(p.ID); err != nil {
				m.log.Warn("could not connect at start; its rules wait for a connection", "server", p.ID, "err", err)
			}
		}()
	}
}

// Close stops listening to the logins (the servers room closes them) and
// waits for the connections ConnectAtStart began.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	runs := m.live
	m.live = map[string]*running{}
	m.mu.Unlock()
	m.cancel()
	for _, run := range runs {
		if run.unsub != nil {
			run.unsub()
		}
	}
	m.wg.Wait()
}

// spec is the agent's forward for a rule (web rules are the apps' and are
// not started here).
func spec(r profiles.ForwardRule) (agent.ForwardSpec, bool) {
	s := agent.ForwardSpec{ID: forwardID(r)}
	target := func(h string) string {
		if h == "" {
			return "localhost"
		}
		return h
	}
	switch r.Kind {
	case profiles.ForwardLocal:
		s.Local = forwarder.LocalSpec{BindAddress: r.LocalHost, BindPort: r.LocalPort, TargetHost: target(r.RemoteHost), TargetPort: r.RemotePort}
	case profiles.ForwardDynamic:
		s.Dynamic = &forwarder.DynamicSpec{BindAddress: r.LocalHost, BindPort: r.LocalPort}
	case profiles.ForwardRemote:
		s.Remote = &forwarder.RemoteSpec{BindAddress: r.RemoteHost, BindPort: r.RemotePort, TargetHost: target(r.LocalHost), TargetPort: r.LocalPort}
	default:
		return s, false
	}
	return s, true
}
