package desktop

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// Background decides what closing the window does, and remembers that the
// user asked to quit. The window hides instead of quitting when all hold:
// the user's hideOnClose setting is on, a tray shows the icon (else a hidden
// window could not be brought back), something runs in the background (a
// server connected or an app open), and no quit was asked for.
type Background struct {
	log      *slog.Logger
	setting  func() bool // the user's hideOnClose
	quitting atomic.Bool
	tray     atomic.Bool

	mu        sync.Mutex
	hidOnce   bool
	onFirstHd func()
}

// NewBackground reads the hideOnClose setting through setting; log nil discards.
func NewBackground(log *slog.Logger, setting func() bool) *Background {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Background{log: log, setting: setting}
}

// SetTray says whether a tray icon is shown (a StatusNotifierWatcher took it).
func (b *Background) SetTray(shown bool) { b.tray.Store(shown) }

// Tray reports whether a tray icon is shown.
func (b *Background) Tray() bool { return b != nil && b.tray.Load() }

// HideOnClose is the effective hide-on-close: the setting, and a tray to come back from.
func (b *Background) HideOnClose() bool {
	return b != nil && b.tray.Load() && (b.setting == nil || b.setting())
}

// Quitting marks that the user asked to quit: the next close quits.
func (b *Background) Quitting() { b.quitting.Store(true) }

// OnFirstHide sets what runs the first time the window hides instead of
// quitting (the notifications room's "Porthole keeps running" message).
func (b *Background) OnFirstHide(f func()) {
	b.mu.Lock()
	b.onFirstHd = f
	b.mu.Unlock()
}

// BeforeClose decides a close of the window: true means hide it (and keep
// running), false means quit. busy: a server is connected or an app is open.
func (b *Background) BeforeClose(busy bool) bool {
	if b.quitting.Load() || !busy || !b.HideOnClose() {
		return false
	}
	b.mu.Lock()
	first := !b.hidOnce
	b.hidOnce = true
	f := b.onFirstHd
	b.mu.Unlock()
	if first {
		b.log.Info("the window was closed with tunnels open: Porthole keeps running in the tray (Quit there, or Ctrl+Q, stops it)")
		if f != nil {
			f()
		}
	}
	return true
}
