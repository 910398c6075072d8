// Package notify tells the person what happened while they looked
// elsewhere: a server unreachable for more than 30 s (and back again), a
// background reconnect that waits for their password, code or host key, a
// server's agent process that keeps crashing, and a new web app on a
// connected server. Notifications go to the desktop through the freedesktop
// Notifications D-Bus API (DBus), else to the window as in-app toasts
// (TopicToast). The same notification is never repeated within a minute,
// and each kind can be switched off in the settings.
//
// The Notifier learns what happens from the event bus (servers, prompts,
// apps) and from the servers' agent events; while nobody looks at a
// connected server's apps it lists them itself, at most every 30 s.
package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/backend/settings"
)

// Event topics of notifications.
var (
	// TopicToast carries a Notification the desktop did not show: the
	// window shows it as a toast.
	TopicToast = events.NewTopic[Notification]("notify.toast")
	// TopicOpen carries an OpenRequest: the window opens an app in a tab (or
	// shows a server's page).
	TopicOpen = events.NewTopic[OpenRequest]("notify.open")
)

// Kind is what a notification is about.
type Kind int

const (
	KindUnreachable    Kind = iota + 1 // a server has been unreachable for a while
	KindBack                           // and is back
	KindNeedsYou                       // a background reconnect waits for an answer
	KindAgentCrashLoop                 // a server's agent process keeps crashing
	KindNewApp                         // a new web app appeared on a connected server
	KindBackground                     // the window was closed the first time: Porthole keeps running
)

var kindNames = [...]string{
	KindUnreachable:    "server-unreachable",
	KindBack:           "server-back",
	KindNeedsYou:       "needs-you",
	KindAgentCrashLoop: "agent-crash-loop",
	KindNewApp:         "new-app",
	KindBackground:     "running-in-background",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText writes the name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Setting is the settings switch that turns k off (0: none; always sent).
func (k Kind) Setting() settings.NotifyKind {
	switch k {
	case KindUnreachable, KindBack:
		return settings.NotifyServerDown
	case KindNeedsYou:
		return settings.NotifyNeedsYou
	case KindAgentCrashLoop:
		return settings.NotifyAgentCrash
	case KindNewApp:
		return settings.NotifyNewApp
	}
	return 0
}

// Notification is one message for the person.
type Notification struct {
	ID       uint64 `json:"id"`
	Kind     Kind   `json:"kind"`
	ServerID string `json:"serverId"`
	// Port and Path: the app a new-app notification opens.
	Port  int    `json:"port,omitempty"`
	Path  string `json:"path,omitempty"`
	Title string `json:"title"`
	Body  string `json:"body"`
	// Action is the button's label ("Open", "Show"); "" for none.
	Action string    `json:"action,omitempty"`
	Time   time.Time `json:"time"`
}

// OpenRequest asks the window to open an app in a tab, or (Port 0) to show
// a server's page.
type OpenRequest struct {
	ID       uint64 `json:"id"`
	ServerID string `json:"serverId"`
	Port     int    `json:"port,omitempty"`
	Path     string `json:"path,omitempty"`
	// Show: the person clicked a notification, so the window should come
	// to the front; false for a tab opened by a port's rule.
	Show bool      `json:"show"`
	Time time.Time `json:"time"`
}

// Sender shows notifications on the desktop.
type Sender interface {
	// Send shows n; onAction runs when the person clicks its action (or
	// the notification). An error means it was not shown.
	Send(ctx context.Context, n Notification, onAction func()) error
}

// Servers is what the Notifier needs of the server logins (servers.Manager).
type Servers interface {
	// UserConnecting: a Connect (a person's action) is in flight.
	UserConnecting(id string) bool
}

// Apps is what the Notifier needs of the apps (apps.Manager).
type Apps interface {
	ListApps(ctx context.Context, id string) (apps.AppList, error)
	ScannedAt(id string) time.Time
}

// Defaults of Options.
const (
	DefaultUnreachableAfter = 30 * time.Second
	DefaultPollEvery        = 30 * time.Second
	DefaultRepeatAfter      = time.Minute
	DefaultCrashWindow      = 5 * time.Minute
	DefaultCrashRestarts    = 3
	sendTimeout             = 10 * time.Second
)

// Config is what the app's wiring chooses (ui.Options.Notify).
type Config struct {
	// Sender shows notifications on the desktop (nil: in-app toasts only);
	// the Notifier closes it if it is an io.Closer.
	Sender Sender
	Rules  *RulesFile // nil: in memory

	UnreachableAfter time.Duration // default 30 s
	PollEvery        time.Duration // default 30 s: list a server nobody looked at for this long
}

// Desktop is the app's Config: the session bus's notification service and
// app-rules.json in Porthole's config directory.
func Desktop(log *slog.Logger) Config {
	return Config{Sender: NewDBus(log, ""), Rules: OpenRulesLogged(log)}
}

// Options configure a Notifier.
type Options struct {
	Config
	Log      *slog.Logger   // nil: discard
	Bus      *events.Bus    // required
	Settings *settings.File // nil: defaults (every kind on)
	Servers  Servers        // nil: every question counts as a background one
	Apps     Apps           // nil: no listing of its own
	Now      func() time.Time

	RepeatAfter   time.Duration // default 1 min: the same notification is not repeated sooner
	CrashWindow   time.Duration // default 5 min
	CrashRestarts int           // default 3 restarts within CrashWindow
}

// Notifier decides what to tell and tells it.
type Notifier struct {
	o     Options
	log   *slog.Logger
	rules *RulesFile

	mu      sync.Mutex
	servers map[string]*track
	prompts map[string]bool // open questions seen
	limit   *limiter
	seq     uint64
	pending []outItem
	started bool

	kick   chan struct{}
	cancel context.CancelFunc
	unsubs []func()
	wg     sync.WaitGroup
}

// track is what the Notifier knows of one server.
type track struct {
	name  string
	state servers.ServerState
	// up: connected since the person's last Connect (not disconnected since).
	up bool
	// downSince: when the connection was lost (zero: not lost).
	downSince time.Time
	failing   bool // a redial failed during this outage
	downSent  bool // "unreachable" went out for this outage
	keySent   bool // "host key" went out for this outage
	lastMsg   string

	baseline map[int]bool // ports of the last listing; nil: none since connect
	polledAt time.Time
	restarts []time.Time
}

type outItem struct {
	note *Notification
	open *OpenRequest
}

// New returns a Notifier; Start connects it to the bus.
func New(o Options) *Notifier {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UnreachableAfter <= 0 {
		o.UnreachableAfter = DefaultUnreachableAfter
	}
	if o.PollEvery <= 0 {
		o.PollEvery = DefaultPollEvery
	}
	if o.RepeatAfter <= 0 {
		o.RepeatAfter = DefaultRepeatAfter
	}
	if o.CrashWindow <= 0 {
		o.CrashWindow = DefaultCrashWindow
	}
	if o.CrashRestarts <= 0 {
		o.CrashRestarts = DefaultCrashRestarts
	}
	rules := o.Rules
	if rules == nil {
		rules, _ = OpenRules("")
	}
	return &Notifier{
		o: o, log: o.Log.With("component", "notify"), rules: rules,
		servers: map[string]*track{}, prompts: map[string]bool{},
		limit: newLimiter(o.RepeatAfter), kick: make(chan struct{}, 1),
	}
}

// Start subscribes to the servers, questions and apps and runs until ctx
// ends or Close.
func (n *Notifier) Start(ctx context.Context) {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return
	}
	n.started = true
	ctx, n.cancel = context.WithCancel(ctx)
	n.mu.Unlock()
	// Subscribe calls back at once with the latest value: not under n.mu.
	unsubs := []func(){
		events.Subscribe(n.o.Bus, servers.TopicServers, n.onServers),
		events.Subscribe(n.o.Bus, prompts.TopicPrompts, n.onPrompts),
		events.Subscribe(n.o.Bus, apps.TopicApps, n.onApps),
	}
	n.mu.Lock()
	n.unsubs = unsubs
	n.mu.Unlock()
	n.wg.Go(func() { n.sendLoop(ctx) })
	n.wg.Go(func() { n.tickLoop(ctx) })
	if n.o.Apps != nil {
		n.wg.Go(func() { n.pollLoop(ctx) })
	}
}

// Close stops the Notifier and waits for what it started.
func (n *Notifier) Close() {
	n.mu.Lock()
	cancel, unsubs := n.cancel, n.unsubs
	n.unsubs = nil
	n.mu.Unlock()
	for _, u := range unsubs {
		u()
	}
	if cancel != nil {
		cancel()
	}
	n.wg.Wait()
	if c, ok := n.o.Sender.(io.Closer); ok {
		if err := c.Close(); err != nil {
			n.log.Debug("closing the notification sender", "err", err)
		}
	}
}

// tickEvery is how often the timers are checked.
func (n *Notifier) tickEvery() time.Duration {
	return min(time.Second, n.o.UnreachableAfter/5, n.o.PollEvery/5)
}

func (n *Notifier) tickLoop(ctx context.Context) {
	t := time.NewTicker(n.tickEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.tick()
		}
	}
}

// tick sends what the clock decides: servers down for long enough.
func (n *Notifier) tick() {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.o.Now()
	for id, t := range n.servers {
		n.checkDownLocked(id, t, now)
	}
}

// --- servers: unreachable and back ---

func (n *Notifier) onServers(list servers.ServerList) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.o.Now()
	seen := make(map[string]bool, len(list.Servers))
	for _, s := range list.Servers {
		seen[s.ID] = true
		t := n.trackLocked(s.ID)
		t.name = s.Name
		n.serverLocked(s, t, now)
	}
	for id := range n.servers {
		if !seen[id] {
			delete(n.servers, id)
		}
	}
}

func (n *Notifier) trackLocked(id string) *track {
	t := n.servers[id]
	if t == nil {
		t = &track{name: id}
		n.servers[id] = t
	}
	return t
}

func (n *Notifier) serverLocked(s servers.ServerSummary, t *track, now time.Time) {
	t.state = s.State
	if s.LastError != nil {
		t.lastMsg = s.LastError.Message
	}
	switch s.State {
	case servers.ServerConnected:
		if t.downSent {
			n.queueLocked(Notification{Kind: KindBack, ServerID: s.ID, Title: s.Name + " is back",
				Body: fmt.Sprintf("Porthole reconnected to %s after %s.", s.Name, fmtAgo(now.Sub(t.downSince)))}, now)
		}
		t.up = true
		t.downSince, t.failing, t.downSent, t.keySent = time.Time{}, false, false, false
	case servers.ServerDisconnected:
		*t = track{name: t.name, state: s.State, restarts: t.restarts}
	case servers.ServerReconnecting, servers.ServerFailed:
		if !t.up {
			t.baseline = nil // a first connection that failed
			break
		}
		if t.downSince.IsZero() {
			t.downSince = now
		}
		t.failing = true
		if e := s.LastError; s.State == servers.ServerFailed && e != nil && !t.keySent &&
			(e.Kind == servers.ErrorHostKeyChanged || e.Kind == servers.ErrorHostKeyRevoked) {
			t.keySent = true
			n.queueLocked(Notification{Kind: KindNeedsYou, ServerID: s.ID, Action: "Show",
				Title: s.Name + " needs you", Body: s.Name + "'s host key changed, so Porthole stopped reconnecting; check the key before you connect again."}, now)
		}
	case servers.ServerIdle:
		// Lost while unused: an outage only once a redial fails.
		if t.up && t.downSince.IsZero() && s.LastError != nil && s.LastError.Kind == servers.ErrorConnectionLost {
			t.downSince = now
		}
	}
	n.checkDownLocked(s.ID, t, now)
}

func (n *Notifier) checkDownLocked(id string, t *track, now time.Time) {
	if !t.up || !t.failing || t.downSent || t.downSince.IsZero() || now.Sub(t.downSince) < n.o.UnreachableAfter {
		return
	}
	if t.state != servers.ServerReconnecting && t.state != servers.ServerFailed && t.state != servers.ServerConnecting {
		return
	}
	t.downSent = true
	body := fmt.Sprintf("Porthole lost %s %s ago and keeps trying to reconnect; its tabs wait until it is back.", t.name, fmtAgo(now.Sub(t.downSince)))
	if t.lastMsg != "" {
		body += " " + t.lastMsg
	}
	n.queueLocked(Notification{Kind: KindUnreachable, ServerID: id, Title: t.name + " is unreachable", Body: body, Action: "Show"}, now)
}

// fmtAgo writes a duration as people say it: "35 s", "2 min 5 s".
func fmtAgo(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d/time.Second))
	}
	if s := int(d%time.Minute) / int(time.Second); s != 0 {
		return fmt.Sprintf("%d min %d s", int(d/time.Minute), s)
	}
	return fmt.Sprintf("%d min", int(d/time.Minute))
}

// --- questions: a reconnect that needs a person ---

func (n *Notifier) onPrompts(list []prompts.Prompt) {
	var fresh []prompts.Prompt
	n.mu.Lock()
	cur := make(map[string]bool, len(list))
	for _, p := range list {
		cur[p.ID] = true
		if !n.prompts[p.ID] {
			fresh = append(fresh, p)
		}
	}
	n.prompts = cur
	n.mu.Unlock()
	for _, p := range fresh {
		// A question asked while the person's Connect runs is one they wait for.
		if n.o.Servers != nil && n.o.Servers.UserConnecting(p.ServerID) {
			continue
		}
		name := p.ServerName
		if name == "" {
			name = p.ServerID
		}
		n.mu.Lock()
		n.queueLocked(Notification{Kind: KindNeedsYou, ServerID: p.ServerID, Action: "Show",
			Title: name + " needs you", Body: fmt.Sprintf("%s needs %s to reconnect.", name, whatPromptNeeds(p))}, n.o.Now())
		n.mu.Unlock()
	}
}

func whatPromptNeeds(p prompts.Prompt) string {
	switch p.Kind {
	case prompts.PromptPassword:
		return "your password"
	case prompts.PromptPassphrase:
		return "your key's passphrase"
	case prompts.PromptKeyboardInteractive:
		return "your one-time code"
	case prompts.PromptHostKey:
		return "you to check its host key"
	}
	return "an answer"
}

// --- agents: crash loops ---

// AgentEvent takes an event of a server login's agent process
// (servers.Manager.OnAgentEvent).
func (n *Notifier) AgentEvent(id string, e agent.AgentEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.o.Now()
	t := n.trackLocked(id)
	switch e.Kind {
	case agent.AgentFailed:
		n.queueLocked(Notification{Kind: KindAgentCrashLoop, ServerID: id, Action: "Show",
			Title: t.name + ": Porthole stopped restarting its connection",
			Body:  fmt.Sprintf("The background process of %s kept crashing (%s); connect again to retry, and see the server's log.", t.name, e.Message)}, now)
	case agent.AgentRestarted:
		t.restarts = append(slices.DeleteFunc(t.restarts, func(at time.Time) bool { return now.Sub(at) > n.o.CrashWindow }), now)
		if len(t.restarts) >= n.o.CrashRestarts {
			n.queueLocked(Notification{Kind: KindAgentCrashLoop, ServerID: id, Action: "Show",
				Title: t.name + ": the connection's process keeps crashing",
				Body:  fmt.Sprintf("The background process of %s crashed %d times in %s; Porthole restarts it each time. See the server's log.", t.name, len(t.restarts), fmtAgo(n.o.CrashWindow))}, now)
		}
	}
}

// --- apps: new ones ---

func (n *Notifier) onApps(list apps.AppList) {
	if list.ServerID == apps.LocalServerID || list.Error != "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.servers[list.ServerID]
	if t == nil || !t.up {
		return
	}
	now := n.o.Now()
	cur := make(map[int]bool, len(list.Services))
	for _, s := range list.Services {
		cur[s.Port] = true
	}
	prev := t.baseline
	t.baseline = cur
	if prev == nil {
		return // the first listing since connect: what was there already
	}
	rules := n.rules.Server(list.ServerID)
	for _, s := range list.Services {
		if prev[s.Port] || !s.IsWeb {
			continue
		}
		switch rules.Decide(s.Port) {
		case OnAppearIgnore:
		case OnAppearOpenTab:
			if n.limit.allow("open-tab|"+list.ServerID+"|"+fmt.Sprint(s.Port), now) {
				n.seq++
				n.pushLocked(outItem{open: &OpenRequest{ID: n.seq, ServerID: list.ServerID, Port: s.Port, Path: s.OpenPath, Time: now}})
			}
		default:
			name := rules.Ports[s.Port].Label
			if name == "" {
				name = s.Title
			}
			if name == "" {
				name = s.KindName
			}
			n.queueLocked(Notification{Kind: KindNewApp, ServerID: list.ServerID, Port: s.Port, Path: s.OpenPath, Action: "Open",
				Title: "New app on " + t.name, Body: fmt.Sprintf("%s appeared on %s (port %d)", name, t.name, s.Port)}, now)
		}
	}
}

// pollLoop lists the apps of every connected server nobody listed for
// PollEvery (the window lists those on screen every few seconds), and at
// once after a connect, for the baseline. A listing runs the socket
// listing on the server and probes only new listeners.
func (n *Notifier) pollLoop(ctx context.Context) {
	t := time.NewTicker(n.tickEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range n.due() {
			if ctx.Err() != nil {
				return
			}
			list, err := n.o.Apps.ListApps(ctx, id)
			if err != nil {
				n.log.Debug("listing the apps for notifications failed", "server", id, "err", err)
				continue
			}
			n.onApps(list)
		}
	}
}

// due are the servers to list now.
func (n *Notifier) due() []string {
	type cand struct {
		id       string
		baseline bool
		polledAt time.Time
		lostAt   time.Time // lost while unused: list once at once (a redial)
	}
	var cands []cand
	n.mu.Lock()
	for id, t := range n.servers {
		switch {
		case t.up && t.state == servers.ServerConnected:
			cands = append(cands, cand{id, t.baseline != nil, t.polledAt, time.Time{}})
		case t.up && t.state == servers.ServerIdle && !t.downSince.IsZero():
			// A connection lost while nobody used it: listing redials it,
			// which tells an outage from a blip (and brings it back).
			cands = append(cands, cand{id, t.baseline != nil, t.polledAt, t.downSince})
		}
	}
	now := n.o.Now()
	n.mu.Unlock()
	var out []string
	for _, c := range cands {
		last := c.polledAt
		if at := n.o.Apps.ScannedAt(c.id); at.After(last) {
			last = at
		}
		if !c.baseline || now.Sub(last) >= n.o.PollEvery || (!c.lostAt.IsZero() && !c.polledAt.After(c.lostAt)) {
			out = append(out, c.id)
		}
	}
	slices.Sort(out)
	n.mu.Lock()
	for _, id := range out {
		if t := n.servers[id]; t != nil {
			t.polledAt = now
		}
	}
	n.mu.Unlock()
	return out
}

// --- rules (the facade's) ---

// known checks that id is a saved server.
func (n *Notifier) known(id string) error {
	n.mu.Lock()
	_, ok := n.servers[id]
	n.mu.Unlock()
	if !ok {
		return apperr.New(apperr.ErrNotFound, "there is no server %q", id)
	}
	return nil
}

// AppAttributes returns what the user set for a port of a server.
func (n *Notifier) AppAttributes(serverID string, port int) (AppAttributes, error) {
	if err := n.known(serverID); err != nil {
		return AppAttributes{}, err
	}
	if port < 1 || port > 65535 {
		return AppAttributes{}, apperr.BadInput("port %d is not a TCP port (1–65535)", port)
	}
	return n.rules.Server(serverID).Ports[port], nil
}

// SetAppAttributes sets (and saves) a port's label and what to do when an
// app appears on it.
func (n *Notifier) SetAppAttributes(serverID string, port int, a AppAttributes) (AppAttributes, error) {
	if err := n.known(serverID); err != nil {
		return AppAttributes{}, err
	}
	return n.rules.SetPort(serverID, port, a)
}

// AppRules returns a server's rules for new apps.
func (n *Notifier) AppRules(serverID string) (ServerRules, error) {
	if err := n.known(serverID); err != nil {
		return ServerRules{}, err
	}
	return n.rules.Server(serverID), nil
}

// SetIgnoredPorts sets (and saves) the port ranges of a server whose new
// apps notify nobody ("8000-8100, 9000"), and whether ephemeral ports
// (EphemeralFrom and up) notify.
func (n *Notifier) SetIgnoredPorts(serverID, ranges string, notifyEphemeral bool) (ServerRules, error) {
	if err := n.known(serverID); err != nil {
		return ServerRules{}, err
	}
	return n.rules.SetIgnore(serverID, ranges, notifyEphemeral)
}

// Background says, once per run, that closing the window did not quit:
// the tunnels and apps keep working and the tray brings the window back.
func (n *Notifier) Background() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queueLocked(Notification{Kind: KindBackground, Title: "Porthole keeps running",
		Body:   "The window is closed, but your tunnels and apps keep working. Porthole's tray icon brings the window back; Quit there stops everything.",
		Action: "Show"}, n.o.Now())
}

// Forget drops a deleted server's rules.
func (n *Notifier) Forget(id string) {
	if err := n.rules.Forget(id); err != nil {
		n.log.Warn("could not drop the deleted server's app rules", "server", id, "err", err)
	}
}

// --- sending ---

// queueLocked sends nt unless its kind is off or it went out within
// RepeatAfter (same kind, server and port).
func (n *Notifier) queueLocked(nt Notification, now time.Time) {
	if k := nt.Kind.Setting(); k != 0 && !n.o.Settings.Get().Notify.On(k) {
		n.log.Debug("notification switched off", "kind", nt.Kind, "server", nt.ServerID)
		return
	}
	if !n.limit.allow(fmt.Sprintf("%s|%s|%d", nt.Kind, nt.ServerID, nt.Port), now) {
		n.log.Debug("notification repeated within the minute; not sent", "kind", nt.Kind, "server", nt.ServerID)
		return
	}
	n.seq++
	nt.ID, nt.Time = n.seq, now.UTC()
	n.pushLocked(outItem{note: &nt})
}

func (n *Notifier) pushLocked(it outItem) {
	if len(n.pending) >= 256 {
		n.log.Warn("too many notifications waiting; dropping the oldest")
		n.pending = n.pending[1:]
	}
	n.pending = append(n.pending, it)
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Notifier) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
			n.drain(ctx)
		}
	}
}

// drain sends what is queued, in order.
func (n *Notifier) drain(ctx context.Context) {
	for {
		n.mu.Lock()
		if len(n.pending) == 0 {
			n.mu.Unlock()
			return
		}
		it := n.pending[0]
		n.pending = n.pending[1:]
		n.mu.Unlock()
		if it.open != nil {
			events.Publish(n.o.Bus, TopicOpen, *it.open)
			continue
		}
		nt := *it.note
		n.log.Info("notifying", "kind", nt.Kind, "server", nt.ServerID, "title", nt.Title)
		if n.o.Sender != nil {
			sctx, cancel := context.WithTimeout(ctx, sendTimeout)
			err := n.o.Sender.Send(sctx, nt, func() { n.clicked(nt) })
			cancel()
			if err == nil {
				continue
			}
			n.log.Debug("the desktop did not show the notification; showing it in the window", "err", err)
		}
		events.Publish(n.o.Bus, TopicToast, nt)
	}
}

// clicked: the person clicked a notification's action.
func (n *Notifier) clicked(nt Notification) {
	n.mu.Lock()
	n.seq++
	req := OpenRequest{ID: n.seq, ServerID: nt.ServerID, Show: true, Time: n.o.Now().UTC()}
	if nt.Kind == KindNewApp {
		req.Port, req.Path = nt.Port, nt.Path
	}
	n.mu.Unlock()
	events.Publish(n.o.Bus, TopicOpen, req)
}

// --- rate limit ---

// limiter lets a key through at most once per window.
type limiter struct {
	window time.Duration
	last   map[string]time.Time
}

func newLimiter(window time.Duration) *limiter {
	return &limiter{window: window, last: map[string]time.Time{}}
}

// allow reports whether key may go out at now, and records it if so.
func (l *limiter) allow(key string, now time.Time) bool {
	if at, ok := l.last[key]; ok && now.Sub(at) < l.window && !now.Before(at) {
		return false
	}
	if len(l.last) > 1024 {
		for k, at := range l.last {
			if now.Sub(at) >= l.window {
				delete(l.last, k)
			}
		}
	}
	l.last[key] = now
	return true
}

// String names a notification for logs.
func (nt Notification) String() string {
	return strings.TrimSpace(nt.Kind.String() + " " + nt.ServerID + ": " + nt.Title)
}
