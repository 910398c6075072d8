// Package ui is the UI facade: App holds the methods the UI calls, in the
// desktop window (Wails bindings) and in `porthole serve` (webui's HTTP
// bridge) alike. Every method is one line into a room (servers, prompts,
// apps, settings); this package is also the one place that maps the rooms'
// errors to HTTP statuses (HTTPStatus). Exported methods are the UI's API;
// see docs/API.md.
package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/desktop"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/leaks"
	"github.com/porthole-app/porthole/backend/notify"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/rules"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/backend/settings"
	"github.com/porthole-app/porthole/backend/webui"
)

// Mode is how this process shows its UI.
type Mode int

const (
	ModeDesktop Mode = iota
	ModeServe
)

func (m Mode) String() string {
	switch m {
	case ModeDesktop:
		return "desktop"
	case ModeServe:
		return "serve"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// MarshalText makes a Mode appear as its name in JSON.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// TopicStatus carries the app-wide AppStatus.
var TopicStatus = events.NewTopic[AppStatus]("app.status")

// AppStatus is the app-wide state shown in the status bar.
type AppStatus struct {
	Mode      Mode      `json:"mode"`
	StartedAt time.Time `json:"startedAt"`
	Servers   int       `json:"servers"`
	Forwards  int       `json:"forwards"`
	// AppViews: app tabs are web views of their own (SyncAppViews), not iframes.
	AppViews bool `json:"appViews"`
	// OS is the backend's system (runtime.GOOS): in the Linux window
	// ("desktop" on "linux") apps are never framed; without app views they
	// open in the system browser.
	OS string `json:"os"`
	// Tray: Porthole's icon is in the system tray (a StatusNotifierWatcher
	// took it). HideOnClose is the effective hide-on-close: the setting,
	// and a tray to come back from; without one, closing the window quits.
	Tray        bool `json:"tray"`
	HideOnClose bool `json:"hideOnClose"`
	// StartAtLogin: the start-at-login file is there; StartAtLoginSupported:
	// this system can have one (not yet on Windows).
	StartAtLogin          bool `json:"startAtLogin"`
	StartAtLoginSupported bool `json:"startAtLoginSupported"`
}

// VersionInfo is what App.Version returns.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	Wails   string `json:"wails"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// Options are what New wires together.
type Options struct {
	Log      *slog.Logger // nil: discard
	Mode     Mode
	Bus      *events.Bus // required
	Settings *settings.File
	// Servers configures the server logins; a zero Config (no Store) means
	// server logins are unavailable (tests of other parts).
	Servers servers.Config
	Ports   *portmap.Map   // nil: no stable endpoints (apps cannot be opened)
	Tabs    *apps.TabsFile // nil: tabs are not saved
	// ServeOrigin is `porthole serve`'s page origin (http://127.80.72.1:PORT),
	// which frames the apps; "" on the desktop (the window frames them).
	ServeOrigin string
	Quit        func()      // closes the desktop window; nil in serve mode
	Views       AppViewHost // the Linux window's app views; nil: iframes
	Version     VersionInfo
	// Notify: where notifications go and the rules for new apps (zero:
	// in-app toasts only, rules in memory); notify.Desktop in the app.
	Notify notify.Config
	// Background is the desktop window's life in the background (hide on
	// close, tray); Autostart its start-at-login file. Nil in serve mode.
	Background *desktop.Background
	Autostart  *desktop.Autostart
}

// App holds the methods the UI calls. Keep every method one line into a
// room: validate there, not here.
type App struct {
	log      *slog.Logger
	bus      *events.Bus
	settings *settings.File
	servers  *servers.Manager
	apps     *apps.Manager
	notify   *notify.Notifier
	rules    *rules.Manager
	tabs     *apps.TabsFile
	leaks    *leaks.Finder
	mode     Mode
	started  time.Time
	quit     func()
	views    AppViewHost
	version  VersionInfo
	bg       *desktop.Background
	autorun  *desktop.Autostart
	ports    *portmap.Map
	autoMu   sync.Mutex // orders changes of autorun (its file and Shown)

	browserOnce browserUI // OpenInBrowser's server

	mu  sync.Mutex
	ctx context.Context // the UI's lifetime; set by Lifecycle.Startup
}

// Lifecycle starts and stops what the App runs. It is separate from App so
// that neither the window nor serve's page can call it.
type Lifecycle struct{ a *App }

// New wires the rooms into an App.
func New(o Options) (*App, *Lifecycle) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{log: log, bus: o.Bus, settings: o.Settings, tabs: o.Tabs, mode: o.Mode, started: time.Now(),
		quit: o.Quit, views: o.Views, version: o.Version, bg: o.Background, autorun: o.Autostart, ports: o.Ports, ctx: context.Background()}
	a.apply(a.settings.Get())
	a.servers = servers.New(log, o.Bus, o.Servers)
	// Who may frame the apps besides themselves: only the running mode's
	// own page (serve's, under both of its host names) or window.
	ancestors := forwarder.WailsFrameAncestors
	if o.ServeOrigin != "" {
		ancestors = forwarder.ServeFrameAncestors(o.ServeOrigin)
	}
	a.apps = apps.New(log, o.Bus, a.servers, o.Ports, ancestors)
	a.servers.OnChange(a.publishStatus)
	a.apps.OnChange(a.publishStatus)
	a.rules = rules.New(rules.Options{Log: log.With("component", "rules"), Bus: o.Bus, Logins: a.servers, Store: o.Servers.Store, Owner: servers.OwnerRules})
	a.leaks = leaks.New(leaks.Options{Log: log, Servers: a.servers, Rules: a.rules})
	a.servers.OnConnected(func(id string) { a.apps.Restore(a.context(), id); a.rules.Start(a.context(), id) })
	a.servers.OnDisconnected(a.rules.Stopped)
	a.notify = notify.New(notify.Options{Config: o.Notify, Log: log, Bus: o.Bus, Settings: o.Settings, Servers: a.servers, Apps: a.apps})
	a.servers.OnAgentEvent(a.notify.AgentEvent)
	a.servers.OnRemoved(func(id string) { a.apps.Forget(id); a.notify.Forget(id) })
	return a, &Lifecycle{a: a}
}

func (a *App) publishStatus() { events.Publish(a.bus, TopicStatus, a.Status()) }

// Startup runs once the UI's lifetime starts (Wails OnStartup, or serve start).
func (l *Lifecycle) Startup(ctx context.Context) {
	a := l.a
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	a.publishStatus()
	events.Publish(a.bus, settings.Topic, a.GetSettings())
	a.notify.Start(ctx)
	a.servers.Start(ctx)
	a.rules.ConnectAtStart(func(id string) error { _, err := a.servers.Connect(id); return err })
}

// Shutdown disconnects every server login; the UI's lifetime is over.
func (l *Lifecycle) Shutdown() {
	l.a.servers.Shutdown()
	l.a.rules.Close()
	l.a.notify.Close()
}

// NotifyBackground tells the person, once, that closing the window hid it
// (the tunnels keep working); the desktop calls it on the first hide.
func (l *Lifecycle) NotifyBackground() { l.a.notify.Background() }

// PublishStatus publishes the app status again (e.g. when the window's app
// views failed and the tabs fall back to iframes).
func (l *Lifecycle) PublishStatus() { l.a.publishStatus() }

// Busy reports whether something runs in the background: a server is
// connected (or on its way) or an app is open. Closing the window then
// hides it rather than quitting (desktop.Background.BeforeClose).
func (l *Lifecycle) Busy() bool {
	if l.a.apps.Count() > 0 {
		return true
	}
	for _, s := range l.a.servers.Summaries() {
		if s.State != servers.ServerDisconnected && s.State != servers.ServerFailed {
			return true
		}
	}
	return false
}

// context is the UI's lifetime.
func (a *App) context() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctx
}

// Version returns the version, commit and Go/Wails versions of this build.
func (a *App) Version() VersionInfo { return a.version }

// Status returns the app-wide status.
func (a *App) Status() AppStatus {
	return AppStatus{Mode: a.mode, StartedAt: a.started.UTC().Truncate(time.Second), Servers: a.servers.Count(), Forwards: a.apps.Count(), AppViews: a.views != nil && a.views.Available(), OS: runtime.GOOS,
		Tray: a.bg.Tray(), HideOnClose: a.bg.HideOnClose(), StartAtLogin: a.autorun != nil && a.autorun.Enabled(),
		StartAtLoginSupported: a.autorun != nil && a.autorun.Kind != desktop.AutostartNone}
}

// Snapshot returns the latest event of every topic. The desktop UI calls it right
// after subscribing; serve sends it first on every event stream.
func (a *App) Snapshot() []webui.Event { return WireSnapshot(a.bus) }

// WireSnapshot is bus's snapshot as the UI transports carry it.
func WireSnapshot(bus *events.Bus) []webui.Event {
	snap := bus.Snapshot()
	out := make([]webui.Event, len(snap))
	for i, e := range snap {
		out[i] = webui.Event{Topic: e.Topic, Data: e.Data}
	}
	return out
}

// GetSettings returns the user's preferences.
func (a *App) GetSettings() settings.Settings { return a.settings.Get() }

// SetTheme sets the colour theme: "system" (follow the OS), "light" or "dark".
func (a *App) SetTheme(theme string) (settings.Settings, error) {
	return a.saved(a.settings.SetTheme(theme))
}

// SetInspector turns WebKit's developer tools in the Linux window's app
// views on or off (off by default).
func (a *App) SetInspector(on bool) (settings.Settings, error) {
	return a.saved(a.settings.SetInspector(on))
}

// SetTabDiscard sets after how many seconds in the background an app tab
// is discarded to save memory (0: never; default 30 min).
func (a *App) SetTabDiscard(sec int) (settings.Settings, error) {
	return a.saved(a.settings.SetTabDiscard(sec))
}

// SetNotification switches one kind of notification on or off:
// "server-down", "needs-you", "agent-crash" or "new-app".
func (a *App) SetNotification(kind string, on bool) (settings.Settings, error) {
	return a.saved(a.settings.SetNotify(kind, on))
}

// SetHideOnClose sets whether closing the window with tunnels open hides it
// to the tray (on, the default) or quits.
func (a *App) SetHideOnClose(on bool) (settings.Settings, error) {
	defer a.publishStatus() // the effective value is in the status
	return a.saved(a.settings.SetHideOnClose(on))
}

// SetStartAtLogin turns starting Porthole (hidden, unless startHidden is
// off) at login on or off.
func (a *App) SetStartAtLogin(on bool) error {
	defer a.publishStatus()
	return a.startAtLogin(on)
}

// SetStartHidden sets whether starting at login starts the window hidden
// (on, the default) or shown; an existing start-at-login file is rewritten.
func (a *App) SetStartHidden(on bool) (settings.Settings, error) {
	return a.saved(a.settings.SetStartHidden(on))
}

// SetServerDefaults sets what new servers start with (ping threshold, idle
// timeout, pool size, a loopback address per server, separate cookies per
// app); a value out of range
// is refused with the reason.
func (a *App) SetServerDefaults(d settings.ServerDefaults) (settings.Settings, error) {
	return a.saved(a.settings.SetDefaults(d))
}

// saved applies and publishes settings a change saved.
func (a *App) saved(s settings.Settings, err error) (settings.Settings, error) {
	if err == nil {
		a.apply(s)
		events.Publish(a.bus, settings.Topic, s)
	}
	return s, err
}

// apply makes the rooms follow settings s: new endpoints' loopback
// addresses (per server, per app), and whether the start-at-login file starts the window hidden.
func (a *App) apply(s settings.Settings) {
	if a.ports != nil {
		a.ports.SetSharedLoopback(!s.Defaults.LoopbackPerServer)
		a.ports.SetPerApp(s.Defaults.CookiesPerApp)
	}
	a.autoMu.Lock()
	defer a.autoMu.Unlock()
	if a.autorun == nil || a.autorun.Shown == !s.StartHidden {
		return
	}
	a.autorun.Shown = !s.StartHidden
	if a.autorun.Enabled() {
		if err := a.autorun.Set(true); err != nil {
			a.log.Warn("could not rewrite the start-at-login file", "err", err)
		}
	}
}

// startAtLogin writes or removes the start-at-login file.
func (a *App) startAtLogin(on bool) error {
	a.autoMu.Lock()
	defer a.autoMu.Unlock()
	return a.autorun.Set(on)
}

// UIReady is called by the frontend once it has rendered; it is logged so that
// smoke tests can tell a rendered UI from a blank or broken window.
func (a *App) UIReady(kind string) {
	a.log.Info("ui ready", "transport", kind)
}

// ErrQuitServe is Quit's answer in `porthole serve`: a page cannot stop it.
var ErrQuitServe = errors.New("porthole serve is stopped from its terminal (Ctrl+C), not from the page")

// Quit closes the desktop window and stops Porthole (Ctrl+Q): every forward
// closes, the agents exit, and the open tabs are saved (the frontend saves
// them before it calls Quit). In serve mode it returns ErrQuitServe.
func (a *App) Quit() error {
	if a.quit == nil {
		return apperr.Mark(ErrQuitServe, apperr.ErrBadInput)
	}
	a.log.Info("quit asked for by the window")
	a.quit()
	return nil
}
