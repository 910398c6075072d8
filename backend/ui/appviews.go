package ui

import (
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"

	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// App views: in the Linux desktop window, each app tab is a web view of its
// own (a top-level page for WebKit), laid over the shell where the tab's
// content goes, instead of an iframe inside the shell's page.
//
// Why: WebKitGTK gives a cross-site iframe (the app at 127.0.0.2:8888 inside
// the shell at wails://wails) only transient localStorage and IndexedDB
// (StorageBlockingPolicy BlockThirdParty, which WebKitGTK has no API to
// change), so every app would forget them when Porthole quits. A top-level
// view keeps them on disk like a browser tab does, its cookies are
// first-party, and its own back/forward/reload/title work natively.
//
// The shell (frontend) owns the tabs; it tells the backend, declaratively,
// which views exist and which one shows where (SyncAppViews). The backend
// reports each view's title, URL and history state as TopicAppViews events.
// In `porthole serve` and on other systems the apps stay in iframes.

// TopicAppViews carries an AppViewEvent whenever a view's page changes.
var TopicAppViews = events.NewTopic[AppViewEvent]("appviews")

// AppViewItem is one app tab's view: the URL the shell gave it (a Porthole
// endpoint on loopback) and how many reloads the user asked for.
type AppViewItem struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Reloads int    `json:"reloads"`
}

// AppViewSpec is the whole state of the app views: every view that exists,
// the one that shows (Visible; "" shows none) and where, in the window's
// CSS pixels.
type AppViewSpec struct {
	Views   []AppViewItem `json:"views"`
	Visible string        `json:"visible"`
	X       int           `json:"x"`
	Y       int           `json:"y"`
	W       int           `json:"w"`
	H       int           `json:"h"`
}

// AppViewEvent is what a view reports: its page's title and URL, whether it
// can go back or forward, and whether it is loading. Shortcut, when set, is
// a shell shortcut pressed while the view had the keyboard ("focus-url").
// Open, when set, is a URL the page asked to open in a new window.
type AppViewEvent struct {
	ID           string `json:"id"`
	Title        string `json:"title"`
	URL          string `json:"url"`
	CanGoBack    bool   `json:"canGoBack"`
	CanGoForward bool   `json:"canGoForward"`
	Loading      bool   `json:"loading"`
	Shortcut     string `json:"shortcut,omitempty"`
	Open         string `json:"open,omitempty"`
	// Find, when set, is a find-in-page result; Zoom, when not 0, the
	// view's zoom level (1 is 100 %).
	Find *FindResult `json:"find,omitempty"`
	Zoom float64     `json:"zoom,omitempty"`
	// Life, when set, says the view was discarded (to save memory; its tab
	// keeps its page and reloads it when it shows) or made again.
	Life AppViewLife `json:"life,omitempty"`
}

// AppViewLife is what happened to a view's web view.
type AppViewLife string

const (
	// AppViewDiscarded: the view's web view ended; Porthole keeps its URL,
	// title and scroll position.
	AppViewDiscarded AppViewLife = "discarded"
	// AppViewRestored: the discarded view showed again and reloads.
	AppViewRestored AppViewLife = "restored"
)

// FindResult is what a find in page found: Matches (0: none), or Failed.
// Current is the selected match, 1 to Matches (0 while there is none).
type FindResult struct {
	Text    string `json:"text"`
	Matches int    `json:"matches"`
	Current int    `json:"current,omitempty"`
	Failed  bool   `json:"failed,omitempty"`
}

// AppViewNav is a navigation the shell asks of a view.
type AppViewNav int

const (
	AppViewBack AppViewNav = iota + 1
	AppViewForward
	AppViewStop
)

func (n AppViewNav) String() string {
	switch n {
	case AppViewBack:
		return "back"
	case AppViewForward:
		return "forward"
	case AppViewStop:
		return "stop"
	default:
		return fmt.Sprintf("AppViewNav(%d)", int(n))
	}
}

func parseAppViewNav(s string) (AppViewNav, error) {
	for _, n := range []AppViewNav{AppViewBack, AppViewForward, AppViewStop} {
		if s == n.String() {
			return n, nil
		}
	}
	return 0, apperr.BadInput("app view: unknown navigation %q (back, forward or stop)", s)
}

// AppViewHost shows the views; implemented by the Linux desktop window.
type AppViewHost interface {
	// Available is false once the window could not take views (the tabs
	// then fall back to iframes; TopicStatus says so).
	Available() bool
	Sync(AppViewSpec)
	Nav(id string, n AppViewNav)
	FocusShell()
	Close()
}

// ErrNoAppViews: this window shows apps in iframes (serve, or a desktop
// window without native app views).
var ErrNoAppViews = errors.New("app views exist only in Porthole's Linux desktop window; apps show in iframes here")

// maxAppViews bounds how many views the shell may ask for.
const maxAppViews = 200

// validateAppViewSpec checks what the shell asks for: ids, sizes, and URLs
// that are Porthole's own loopback endpoints (a view never loads anything
// else on the shell's word).
func validateAppViewSpec(s AppViewSpec) error {
	if len(s.Views) > maxAppViews {
		return apperr.BadInput("app views: %d views asked for; at most %d", len(s.Views), maxAppViews)
	}
	seen := make(map[string]bool, len(s.Views))
	for _, v := range s.Views {
		if err := validateViewID(v.ID); err != nil {
			return err
		}
		if seen[v.ID] {
			return apperr.BadInput("app views: view %q is listed twice", v.ID)
		}
		seen[v.ID] = true
		if err := validateAppViewURL(v.URL); err != nil {
			return err
		}
		if v.Reloads < 0 {
			return apperr.BadInput("app views: view %q has a negative reload count", v.ID)
		}
	}
	if s.Visible != "" && !seen[s.Visible] {
		return apperr.BadInput("app views: the visible view %q is not in the list", s.Visible)
	}
	const maxPx = 1 << 15
	if s.X < 0 || s.Y < 0 || s.W < 0 || s.H < 0 || s.X > maxPx || s.Y > maxPx || s.W > maxPx || s.H > maxPx {
		return apperr.BadInput("app views: bounds %d,%d %dx%d are outside the window", s.X, s.Y, s.W, s.H)
	}
	return nil
}

func validateViewID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		return apperr.BadInput("app views: %q is not a tab id", id)
	}
	return nil
}

// validateAppViewURL accepts http URLs of loopback endpoints with a port:
// http://127.0.0.2:8888/lab, http://localhost:6006/.
func validateAppViewURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Port() == "" {
		return apperr.BadInput("app views: %q is not a Porthole endpoint (http://127.x.x.x:port/…)", raw)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return apperr.BadInput("app views: %q has a bad port", raw)
	}
	h := u.Hostname()
	if h == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Unmap().IsLoopback() {
		return nil
	}
	return apperr.BadInput("app views: %q is not on loopback; a view loads only Porthole's endpoints", raw)
}

// SyncAppViews makes the window's app views what spec says: new ones load
// their URL, listed ones whose URL or reload count changed load again,
// unlisted ones close, and only spec.Visible shows, at spec's bounds.
// Outside the Linux desktop window it returns ErrNoAppViews.
func (a *App) SyncAppViews(spec AppViewSpec) error {
	if a.views == nil {
		return apperr.Mark(ErrNoAppViews, apperr.ErrBadInput)
	}
	if err := validateAppViewSpec(spec); err != nil {
		return err
	}
	a.views.Sync(spec)
	return nil
}

// NavigateAppView moves a view back or forward in its history, or stops
// its loading ("back", "forward", "stop").
func (a *App) NavigateAppView(id, nav string) error {
	if a.views == nil {
		return apperr.Mark(ErrNoAppViews, apperr.ErrBadInput)
	}
	if err := validateViewID(id); err != nil {
		return err
	}
	n, err := parseAppViewNav(nav)
	if err != nil {
		return err
	}
	a.views.Nav(id, n)
	return nil
}

// FocusShell gives the keyboard back to Porthole's own page (after a shell
// shortcut was pressed in an app view).
func (a *App) FocusShell() error {
	if a.views == nil {
		return apperr.Mark(ErrNoAppViews, apperr.ErrBadInput)
	}
	a.views.FocusShell()
	return nil
}

// AppViewNavigation is what an app view does with a navigation its page
// (or a redirect) asks for.
type AppViewNavigation int

const (
	// NavAllow: the view goes there (its app's own origin).
	NavAllow AppViewNavigation = iota
	// NavBlock: cancelled (another origin without the user's gesture, or
	// not a web address).
	NavBlock
	// NavOpenInBrowser: cancelled in the view and opened in the system
	// browser (the user followed a link to another origin).
	NavOpenInBrowser
)

func (n AppViewNavigation) String() string {
	switch n {
	case NavAllow:
		return "allow"
	case NavBlock:
		return "block"
	case NavOpenInBrowser:
		return "open-in-browser"
	default:
		return fmt.Sprintf("AppViewNavigation(%d)", int(n))
	}
}

// DecideAppViewNavigation is the app views' origin rule: a view stays on
// its app's origin, the loopback endpoint the shell gave it (viewURL).
// Same-origin pages, same-origin blob: URLs and empty documents load; an
// http(s) page elsewhere opens in the system browser when the user asked
// for it (user: a click or a form they sent) and is cancelled otherwise;
// anything else is cancelled. A view without a valid endpoint goes nowhere.
func DecideAppViewNavigation(viewURL, target string, user bool) AppViewNavigation {
	home, ok := webOrigin(viewURL)
	if !ok {
		return NavBlock
	}
	switch strings.ToLower(target) {
	case "about:blank", "about:srcdoc":
		return NavAllow
	}
	if len(target) > 5 && strings.EqualFold(target[:5], "blob:") {
		if o, ok := webOrigin(target[5:]); ok && o == home {
			return NavAllow
		}
		return NavBlock
	}
	o, ok := webOrigin(target)
	switch {
	case !ok:
		return NavBlock
	case o == home:
		return NavAllow
	case user:
		return NavOpenInBrowser
	default:
		return NavBlock
	}
}

// webOrigin is an absolute http(s) URL's origin: scheme://host:port,
// lowercased, with the scheme's default port made explicit.
func webOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case scheme != "http" && scheme != "https":
		return "", false
	case port == "" && scheme == "http":
		port = "80"
	case port == "" && scheme == "https":
		port = "443"
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	return scheme + "://" + net.JoinHostPort(host, port), true
}
