//go:build !(desktop && linux)

package appview

import (
	"log/slog"

	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/ui"
)

// New: outside the Linux window, apps show in iframes. Whether WKWebView
// (macOS) and WebView2 (Windows) keep a framed app's localStorage and
// IndexedDB across restarts is not verified: there is no such machine here
// (see the README).
func New(*slog.Logger, *events.Bus, func()) ui.AppViewHost { return nil }

// SetupWebData has nothing to do outside Linux: macOS' WKWebView uses the
// default WKWebsiteDataStore, which is persistent, and Windows' WebView2
// keeps cookies, localStorage and IndexedDB in its user data folder
// (Wails v2: %APPDATA%\porthole-desktop.exe\EBWebView unless
// options.Windows.WebviewUserDataPath says otherwise). See the README,
// "Where things live".
func SetupWebData(*slog.Logger) error { return nil }
