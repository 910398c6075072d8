package webui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// The fake App: one method of every supported shape, plus methods the bridge must skip.

type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

type Settings struct {
	Theme string `json:"theme"`
}

type Opts struct {
	Name string   `json:"name"`
	Port int      `json:"port"`
	Tags []string `json:"tags,omitempty"`
}

// conflictError carries its own HTTP status.
type conflictError struct{ what string }

func (e *conflictError) Error() string {
	return e.what + " was changed by someone else; reload and retry"
}
func (e *conflictError) HTTPStatus() int { return 409 }

// bogusStatusError claims a non-error status; the bridge must fall back to 500.
type bogusStatusError struct{}

func (bogusStatusError) Error() string   { return "bogus" }
func (bogusStatusError) HTTPStatus() int { return 200 }

type fakeApp struct {
	mu    sync.Mutex
	theme string
	pings int
	pub   func(topic string, data any) // set by tests that want SetTheme to publish
}

func (a *fakeApp) Version() VersionInfo {
	return VersionInfo{Version: "1.2.3", Commit: "abc", Go: "go1.26"}
}

func (a *fakeApp) Ping() {
	a.mu.Lock()
	a.pings++
	a.mu.Unlock()
}

func (a *fakeApp) Check() error { return nil }

func (a *fakeApp) Fail() error { return errors.New("disk on fire: free some space") }

func (a *fakeApp) SetTheme(theme string) (Settings, error) {
	switch theme {
	case "system", "light", "dark":
	default:
		return Settings{}, fmt.Errorf("theme %q: want system, light or dark", theme)
	}
	a.mu.Lock()
	a.theme = theme
	pub := a.pub
	a.mu.Unlock()
	if pub != nil {
		pub("settings", Settings{Theme: theme})
	}
	return Settings{Theme: theme}, nil
}

func (a *fakeApp) GetSettings() Settings {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Settings{Theme: a.theme}
}

func (a *fakeApp) Add(x, y int) int { return x + y }

func (a *fakeApp) Configure(o Opts) (Opts, error) {
	if o.Name == "" {
		return Opts{}, errors.New("name is empty")
	}
	return o, nil
}

func (a *fakeApp) Maybe(o *Opts) bool { return o != nil }

func (a *fakeApp) Echo(v any) any { return v }

func (a *fakeApp) Join(sep string, parts ...string) string { return strings.Join(parts, sep) }

func (a *fakeApp) Boom() string { panic("kaboom") }

func (a *fakeApp) Conflict() (Settings, error) {
	return Settings{}, fmt.Errorf("save settings: %w", &conflictError{what: "settings"})
}

func (a *fakeApp) Bogus() error { return bogusStatusError{} }

// Skipped by the bridge.

func (a *fakeApp) Startup(ctx context.Context)            {}
func (a *fakeApp) OnEach(f func(int))                     {}
func (a *fakeApp) WithContext(ctx context.Context) string { return "" }
func (a *fakeApp) Stream() chan int                       { return nil }
func (a *fakeApp) Three() (int, int, error)               { return 0, 0, nil }
func (a *fakeApp) TwoValues() (int, string)               { return 0, "" }
func (a *fakeApp) unexported() string                     { return "" }

var _ = (*fakeApp).unexported

// wantMethods is every method the bridge must expose, sorted.
var wantMethods = []string{
	"Add", "Bogus", "Boom", "Check", "Configure", "Conflict", "Echo", "Fail",
	"GetSettings", "Join", "Maybe", "Ping", "SetTheme", "Version",
}

// syncBuffer is a goroutine-safe log sink the tests can inspect.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
