// Package settings keeps the user's app-wide preferences in settings.json,
// written atomically; a file that fails to parse is reported and kept.
package settings

import (
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/atomicfile"
	"github.com/porthole-app/porthole/backend/events"
	"log/slog"

	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Theme is the colour theme preference.
type Theme int

const (
	ThemeSystem Theme = iota
	ThemeLight
	ThemeDark
)

var themeNames = [...]string{ThemeSystem: "system", ThemeLight: "light", ThemeDark: "dark"}

func (t Theme) String() string {
	if int(t) >= 0 && int(t) < len(themeNames) {
		return themeNames[t]
	}
	return fmt.Sprintf("Theme(%d)", int(t))
}

func (t Theme) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *Theme) UnmarshalText(b []byte) error {
	v, err := ParseTheme(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// ParseTheme reads a theme name.
func ParseTheme(s string) (Theme, error) {
	for i, n := range themeNames {
		if n == s {
			return Theme(i), nil
		}
	}
	return 0, apperr.BadInput("unknown theme %q: use \"system\", \"light\" or \"dark\"", s)
}

// Topic carries the Settings whenever they change.
var Topic = events.NewTopic[Settings]("settings")

// Settings are the user's app-wide preferences.
type Settings struct {
	Theme Theme `json:"theme"`
	// Inspector turns on WebKit's developer tools (Inspect Element) in the
	// Linux window's app views; off by default, since a page could otherwise
	// be inspected and changed by anyone at the keyboard without notice.
	Inspector bool `json:"inspector"`
	// Notify says which notifications Porthole sends (all on by default).
	Notify NotifySettings `json:"notify"`
	// HideOnClose: closing the window while tunnels are open hides it (the
	// tray brings it back) instead of quitting. On by default; it has effect
	// only where a tray shows Porthole's icon (AppStatus.HideOnClose).
	HideOnClose bool `json:"hideOnClose"`
	// StartHidden: starting at login starts the window hidden (the tray
	// brings it back); off shows it. On by default.
	StartHidden bool `json:"startHidden"`
	// Defaults are what new servers start with.
	Defaults ServerDefaults `json:"defaults"`
	// TabDiscardSec: an app tab in the background this many seconds is
	// discarded to save memory (its web view ends; it reloads, at the same
	// page, when it shows again). 0 never discards; default 30 min.
	TabDiscardSec int `json:"tabDiscardSec"`
}

// Limits and default of Settings.TabDiscardSec.
const (
	DefaultTabDiscard = 30 * time.Minute
	MaxTabDiscard     = 7 * 24 * time.Hour
)

// TabDiscard is TabDiscardSec as a duration (0: never); a value out of
// range in a hand-edited file counts as the nearest limit.
func (s Settings) TabDiscard() time.Duration {
	return min(max(time.Duration(s.TabDiscardSec)*time.Second, 0), MaxTabDiscard)
}

// SetTabDiscard sets after how many seconds a background app tab is
// discarded (0: never) and saves it. A nil File changes nothing and returns
// what it would be.
func (f *File) SetTabDiscard(sec int) (Settings, error) {
	if sec < 0 || sec > int(MaxTabDiscard/time.Second) {
		return f.Get(), apperr.BadInput("discard after %d s is out of range: use 0 (never) to 7 days (604800 s)", sec)
	}
	if f == nil {
		s := Default()
		s.TabDiscardSec = sec
		return s, nil
	}
	return f.Update(func(s *Settings) { s.TabDiscardSec = sec })
}

// Default is the settings of a new user.
func Default() Settings {
	return Settings{Theme: ThemeSystem, Notify: allNotify(), HideOnClose: true, StartHidden: true, Defaults: DefaultServerDefaults(),
		TabDiscardSec: int(DefaultTabDiscard / time.Second)}
}

// ErrBroken means settings.json exists but cannot be read; it is kept untouched.
var ErrBroken = errors.New("settings file is unreadable")

// File keeps Settings in a JSON file, written atomically (temp file +
// rename, mode 0600). A file that fails to parse is reported and kept: Porthole
// runs on defaults and refuses to overwrite it until the user fixes or removes it.
type File struct {
	path string

	mu     sync.Mutex
	cur    Settings
	broken error // non-nil when the file on disk failed to parse
}

// Open loads path. A missing file means defaults. A broken file returns a
// usable File (on defaults) together with an error to show the user.
func Open(path string) (*File, error) {
	f := &File{path: path, cur: Default()}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f, nil
	case err != nil:
		f.broken = fmt.Errorf("%w: %s: %w", ErrBroken, path, err)
		return f, f.broken
	}
	s := Default() // a field the file lacks keeps its default
	if err := json.Unmarshal(b, &s); err != nil {
		f.broken = fmt.Errorf("%w: %s: %s; Porthole is using default settings and will not overwrite the file: fix it or delete it", ErrBroken, path, atomicfile.DescribeJSONError(b, err))
		return f, f.broken
	}
	if err := s.Defaults.Validate(); err != nil {
		f.broken = fmt.Errorf("%w: %s: defaults: %w; Porthole is using default settings and will not overwrite the file: fix it or delete it", ErrBroken, path, err)
		return f, f.broken
	}
	f.cur = s
	return f, nil
}

// Get returns the current settings (defaults for a nil File).
func (f *File) Get() Settings {
	if f == nil {
		return Default()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// Update applies change and saves. It refuses while the file on disk is broken.
func (f *File) Update(change func(*Settings)) (Settings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return f.cur, f.broken
	}
	next := f.cur
	change(&next)
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return f.cur, fmt.Errorf("encode settings: %w", err)
	}
	if err := atomicfile.WriteFile(f.path, append(b, '\n'), 0o600); err != nil {
		return f.cur, fmt.Errorf("save settings: %w", err)
	}
	f.cur = next
	return next, nil
}

// OpenLogged opens settings.json in Porthole's config directory. A broken
// file is reported (and kept); the app runs on defaults. nil: in memory only.
func OpenLogged(log *slog.Logger) *File {
	dir, err := atomicfile.ConfigDir()
	if err != nil {
		log.Warn("settings are kept in memory only", "err", err)
		return nil
	}
	s, err := Open(filepath.Join(dir, "settings.json"))
	if err != nil {
		log.Error("settings file is broken; using defaults", "err", err)
	}
	return s
}

// SetTheme sets and saves the colour theme: "system" (follow the OS),
// "light" or "dark". A nil File changes nothing and returns what it would be.
func (f *File) SetTheme(theme string) (Settings, error) {
	t, err := ParseTheme(theme)
	if err != nil {
		return f.Get(), err
	}
	if f == nil {
		s := Default()
		s.Theme = t
		return s, nil
	}
	return f.Update(func(s *Settings) { s.Theme = t })
}

// SetInspector turns the app views' developer tools on or off and saves it.
// A nil File changes nothing and returns what it would be.
func (f *File) SetInspector(on bool) (Settings, error) {
	if f == nil {
		s := Default()
		s.Inspector = on
		return s, nil
	}
	return f.Update(func(s *Settings) { s.Inspector = on })
}

// NotifyKind is a kind of notification the user can switch off.
type NotifyKind int

const (
	NotifyServerDown NotifyKind = iota + 1 // a server unreachable for over 30 s, and back again
	NotifyNeedsYou                         // a background reconnect waits for a password, code or host key
	NotifyAgentCrash                       // a server's background process keeps crashing
	NotifyNewApp                           // a new web app appeared on a connected server
)

var notifyKindNames = [...]string{
	NotifyServerDown: "server-down",
	NotifyNeedsYou:   "needs-you",
	NotifyAgentCrash: "agent-crash",
	NotifyNewApp:     "new-app",
}

func (k NotifyKind) String() string {
	if k > 0 && int(k) < len(notifyKindNames) {
		return notifyKindNames[k]
	}
	return fmt.Sprintf("NotifyKind(%d)", int(k))
}

// MarshalText writes the name.
func (k NotifyKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (k *NotifyKind) UnmarshalText(b []byte) error {
	v, err := ParseNotifyKind(string(b))
	*k = v
	return err
}

// ParseNotifyKind reads a notification kind's name.
func ParseNotifyKind(s string) (NotifyKind, error) {
	for i, n := range notifyKindNames {
		if n != "" && n == s {
			return NotifyKind(i), nil
		}
	}
	return 0, apperr.BadInput("unknown notification kind %q: use \"server-down\", \"needs-you\", \"agent-crash\" or \"new-app\"", s)
}

// NotifySettings switches each kind of notification on or off.
type NotifySettings struct {
	ServerDown bool `json:"serverDown"`
	NeedsYou   bool `json:"needsYou"`
	AgentCrash bool `json:"agentCrash"`
	NewApp     bool `json:"newApp"`
}

func allNotify() NotifySettings {
	return NotifySettings{ServerDown: true, NeedsYou: true, AgentCrash: true, NewApp: true}
}

// field is the switch of kind k (nil for an unknown kind).
func (n *NotifySettings) field(k NotifyKind) *bool {
	switch k {
	case NotifyServerDown:
		return &n.ServerDown
	case NotifyNeedsYou:
		return &n.NeedsYou
	case NotifyAgentCrash:
		return &n.AgentCrash
	case NotifyNewApp:
		return &n.NewApp
	}
	return nil
}

// On reports whether notifications of kind k are on.
func (n NotifySettings) On(k NotifyKind) bool {
	f := n.field(k)
	return f != nil && *f
}

// SetNotify switches one kind of notification on or off ("server-down",
// "needs-you", "agent-crash", "new-app") and saves it; an unknown kind is
// refused. A nil File changes nothing and returns what it would be.
func (f *File) SetNotify(kind string, on bool) (Settings, error) {
	k, err := ParseNotifyKind(kind)
	if err != nil {
		return f.Get(), err
	}
	if f == nil {
		s := Default()
		*s.Notify.field(k) = on
		return s, nil
	}
	return f.Update(func(s *Settings) { *s.Notify.field(k) = on })
}

// SetHideOnClose sets whether closing the window with tunnels open hides it
// (on, the default) or quits, and saves it. A nil File changes nothing and
// returns what it would be.
func (f *File) SetHideOnClose(on bool) (Settings, error) {
	if f == nil {
		s := Default()
		s.HideOnClose = on
		return s, nil
	}
	return f.Update(func(s *Settings) { s.HideOnClose = on })
}
