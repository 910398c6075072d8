package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/portmap"
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

// Event topics the UI subscribes to.
const (
	TopicStatus   = "app.status"
	TopicSettings = "settings"
)

// AppStatus is the app-wide state shown in the status bar.
type AppStatus struct {
	Mode      Mode      `json:"mode"`
	StartedAt time.Time `json:"startedAt"`
	Servers   int       `json:"servers"`
	Forwards  int       `json:"forwards"`
	// AppViews: app tabs are web views of their own (SyncAppViews), not iframes.
	AppViews bool `json:"appViews"`
}

// App holds the methods the UI calls, in the desktop window (Wails bindings) and in
// `porthole serve` (HTTP bridge) alike. Keep it thin: validate, call the backend,
// return (T, error). Exported methods are the UI's API; see docs/API.md.
type App struct {
	log      *slog.Logger
	events   *eventHub
	settings *settingsFile
	servers  *serverManager
	apps     *appsManager
	tabs     *tabsFile    // nil: tabs are not saved
	ports    *portmap.Map // nil: no stable endpoints (apps cannot be opened)
	origin   string       // serve's own origin (http://127.0.0.1:PORT); "" on the desktop
	mode     Mode
	started  time.Time
	quit     func()      // closes the desktop window; nil in serve mode
	views    appViewHost // the Linux window's app views; nil: apps show in iframes

	mu  sync.Mutex
	ctx context.Context // the UI's lifetime; set by startup
}

// appOption configures NewApp.
type appOption func(*App)

// NewApp builds the App. settings may be nil (defaults, in memory only).
// Without withServers, server logins are unavailable (tests of other parts).
func NewApp(log *slog.Logger, mode Mode, events *eventHub, settings *settingsFile, opts ...appOption) *App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{log: log, events: events, settings: settings, mode: mode, started: time.Now(), ctx: context.Background()}
	for _, o := range opts {
		o(a)
	}
	if a.servers == nil {
		a.servers = newServerManager(log, events.Publish, serverConfig{})
	}
	a.servers.changed = func() { a.events.Publish(TopicStatus, a.Status()) }
	a.apps = newAppsManager(log, events.Publish, a.servers, a.ports)
	if a.origin != "" {
		// serve's page frames the apps too (both of its host names).
		a.apps.ancestors = append(a.apps.ancestors, a.origin)
		if u, ok := strings.CutPrefix(a.origin, "http://127.0.0.1:"); ok {
			a.apps.ancestors = append(a.apps.ancestors, "http://localhost:"+u)
		}
	}
	a.servers.connected = func(id string) { a.apps.restore(a.context(), id) }
	a.servers.removed = a.apps.forget
	return a
}

// withPortmap gives the App the stable local endpoints (owned by the App:
// it is the only user; the agents get endpoints, not the map).
func withPortmap(m *portmap.Map) appOption { return func(a *App) { a.ports = m } }

// withTabs gives the App the saved tabs.
func withTabs(t *tabsFile) appOption { return func(a *App) { a.tabs = t } }

// withServeOrigin tells the App the origin of `porthole serve`'s page,
// which may frame the apps.
func withServeOrigin(origin string) appOption { return func(a *App) { a.origin = origin } }

// openPortmapLogged opens the endpoints file at its default place; a broken
// file is reported (and kept) and endpoints are assigned in memory.
func openPortmapLogged(log *slog.Logger) *portmap.Map {
	m, err := portmap.Open("", log.With("component", "portmap"))
	if err != nil {
		log.Error("local endpoints are not saved this run; apps may move to other addresses at the next start", "err", err)
	}
	return m
}

// startup runs once the UI's lifetime starts (Wails OnStartup, or serve start).
func (a *App) startup(ctx context.Context) {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	a.events.Publish(TopicStatus, a.Status())
	a.events.Publish(TopicSettings, a.GetSettings())
	a.servers.start(ctx)
}

// shutdown disconnects every server login; the UI's lifetime is over.
func (a *App) shutdown() { a.servers.shutdown() }

// Version returns the version, commit and Go/Wails versions of this build.
func (a *App) Version() VersionInfo { return currentVersion() }

// Status returns the app-wide status.
func (a *App) Status() AppStatus {
	return AppStatus{Mode: a.mode, StartedAt: a.started.UTC().Truncate(time.Second), Servers: a.servers.count(), Forwards: a.apps.count(), AppViews: a.views != nil && a.views.Available()}
}

// Snapshot returns the latest event of every topic. The desktop UI calls it right
// after subscribing; serve sends it first on every event stream.
func (a *App) Snapshot() []webui.Event { return a.events.Snapshot() }

// GetSettings returns the user's preferences.
func (a *App) GetSettings() Settings {
	if a.settings == nil {
		return defaultSettings()
	}
	return a.settings.Get()
}

// SetTheme sets the colour theme: "system" (follow the OS), "light" or "dark".
func (a *App) SetTheme(theme string) (Settings, error) {
	t, err := parseTheme(theme)
	if err != nil {
		return Settings{}, err
	}
	var s Settings
	if a.settings == nil {
		s = defaultSettings()
		s.Theme = t
	} else if s, err = a.settings.Update(func(s *Settings) { s.Theme = t }); err != nil {
		return Settings{}, err
	}
	a.events.Publish(TopicSettings, s)
	return s, nil
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
		return &badInputError{msg: ErrQuitServe.Error()}
	}
	a.log.Info("quit asked for by the window")
	a.quit()
	return nil
}

// withQuit sets what Quit does (the desktop window's quit).
func withQuit(f func()) appOption { return func(a *App) { a.quit = f } }

// errBadInput marks input the user can fix; serve answers it with 400.
var errBadInput = errors.New("bad input")

type badInputError struct{ msg string }

func (e *badInputError) Error() string   { return e.msg }
func (e *badInputError) Unwrap() error   { return errBadInput }
func (e *badInputError) HTTPStatus() int { return 400 }
