//go:build desktop && !linux

package main

import (
	"log/slog"

	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/ui"
)

// newWindowAppViews: outside Linux the window shows apps in iframes. Whether
// WKWebView (macOS) and WebView2 (Windows) keep a framed app's localStorage
// and IndexedDB across restarts is not verified: there is no such machine
// here (see the README).
func newWindowAppViews(*slog.Logger, *events.Bus, func()) ui.AppViewHost { return nil }
