//go:build !desktop

package desktop

import "log/slog"

// Tray, in the plain build (no window), shows nothing.
type Tray struct{}

// StartTray, in the plain build, shows nothing.
func StartTray(*slog.Logger, []byte, []byte, []MenuEntry, bool, func(string)) *Tray { return &Tray{} }

// Update does nothing in the plain build.
func (*Tray) Update([]MenuEntry, bool) {}

// Close does nothing in the plain build.
func (*Tray) Close() {}
