//go:build desktop && !linux

package main

import "log/slog"

// setupWebData has nothing to do outside Linux: macOS' WKWebView uses the
// default WKWebsiteDataStore, which is persistent, and Windows' WebView2
// keeps cookies, localStorage and IndexedDB in its user data folder
// (Wails v2: %APPDATA%\porthole-desktop.exe\EBWebView unless
// options.Windows.WebviewUserDataPath says otherwise). See the README,
// "Where things live".
func setupWebData(*slog.Logger) error { return nil }
