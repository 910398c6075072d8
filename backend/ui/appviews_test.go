package ui

import (
	"encoding/json"
	"errors"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/settings"
	"net/netip"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestValidateAppViewSpec(t *testing.T) {
	ok := AppViewItem{ID: "app-1", URL: "http://127.0.0.2:8888/lab?x=1"}
	for _, tc := range []struct {
		name string
		spec AppViewSpec
		want string // "" = valid; else a piece of the message
	}{
		{"empty", AppViewSpec{}, ""},
		{"one shown", AppViewSpec{Views: []AppViewItem{ok}, Visible: "app-1", X: 248, Y: 82, W: 1032, H: 712}, ""},
		{"localhost", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://localhost:6006/"}}}, ""},
		{"ipv6 loopback", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://[::1]:6006/"}}}, ""},
		{"per-app addresses", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://127.1.0.1:8888/"}, {ID: "b", URL: "http://127.1.1.1:8889/"}}}, ""},
		{"visible not listed", AppViewSpec{Views: []AppViewItem{ok}, Visible: "app-2"}, "not in the list"},
		{"twice", AppViewSpec{Views: []AppViewItem{ok, ok}}, "listed twice"},
		{"bad id", AppViewSpec{Views: []AppViewItem{{ID: "a b", URL: ok.URL}}}, "not a tab id"},
		{"empty id", AppViewSpec{Views: []AppViewItem{{ID: "", URL: ok.URL}}}, "not a tab id"},
		{"not loopback", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://example.com:80/"}}}, "not on loopback"},
		{"lan address", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://192.168.1.5:8888/"}}}, "not on loopback"},
		{"https", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "https://127.0.0.2:8888/"}}}, "not a Porthole endpoint"},
		{"file", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "file:///etc/passwd"}}}, "not a Porthole endpoint"},
		{"no port", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://127.0.0.2/"}}}, "not a Porthole endpoint"},
		{"user info", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://u@127.0.0.2:1/"}}}, "not a Porthole endpoint"},
		{"port 0", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: "http://127.0.0.2:0/"}}}, "bad port"},
		{"negative reloads", AppViewSpec{Views: []AppViewItem{{ID: "a", URL: ok.URL, Reloads: -1}}}, "negative"},
		{"negative bounds", AppViewSpec{X: -1}, "outside the window"},
		{"huge bounds", AppViewSpec{W: 1 << 20}, "outside the window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateAppViewSpec(tc.spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, apperr.ErrBadInput) {
				t.Fatalf("error %v, want one saying %q (bad input)", err, tc.want)
			}
		})
	}
	many := AppViewSpec{}
	for i := range maxAppViews + 1 {
		many.Views = append(many.Views, AppViewItem{ID: "t" + strconv.Itoa(i), URL: ok.URL})
	}
	if err := validateAppViewSpec(many); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("too many views: %v", err)
	}
}

func FuzzValidateAppViewURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.2:8888/lab", "http://localhost:1/", "http://[::1]:5/", "http://example.com:80/", "javascript:alert(1)", "http://127.0.0.2:99999/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if validateAppViewURL(raw) != nil {
			return
		}
		// Anything accepted is http on a loopback host with a port.
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" || u.Port() == "" {
			t.Fatalf("%q accepted: %v", raw, err)
		}
		if h := u.Hostname(); h != "localhost" {
			if a, err := netip.ParseAddr(h); err != nil || !a.Unmap().IsLoopback() {
				t.Fatalf("%q accepted with host %q", raw, h)
			}
		}
	})
}

// fakeViews records what the App asks of the window.
type fakeViews struct {
	broken bool
	synced []AppViewSpec
	navs   []string
	focus  int
}

func (f *fakeViews) Available() bool             { return !f.broken }
func (f *fakeViews) Sync(s AppViewSpec)          { f.synced = append(f.synced, s) }
func (f *fakeViews) Nav(id string, n AppViewNav) { f.navs = append(f.navs, id+":"+n.String()) }
func (f *fakeViews) FocusShell()                 { f.focus++ }
func (f *fakeViews) Close()                      {}

func TestAppViewMethods(t *testing.T) {
	// serve (no host): refused in words, as bad input.
	serve, _ := New(Options{Mode: ModeServe, Bus: events.New()})
	if err := serve.SyncAppViews(AppViewSpec{}); err == nil || !errors.Is(err, apperr.ErrBadInput) || !strings.Contains(err.Error(), "iframes") {
		t.Fatalf("serve SyncAppViews: %v", err)
	}
	if serve.Status().AppViews {
		t.Fatal("serve says it has app views")
	}
	fv := &fakeViews{}
	a, _ := New(Options{Mode: ModeDesktop, Bus: events.New(), Views: fv})
	if !a.Status().AppViews {
		t.Fatal("Status().AppViews is false with a host")
	}
	spec := AppViewSpec{Views: []AppViewItem{{ID: "t1", URL: "http://127.0.0.2:8888/"}}, Visible: "t1", W: 10, H: 10}
	if err := a.SyncAppViews(spec); err != nil || len(fv.synced) != 1 || fv.synced[0].Visible != "t1" {
		t.Fatalf("SyncAppViews: %v %+v", err, fv.synced)
	}
	if err := a.SyncAppViews(AppViewSpec{Views: []AppViewItem{{ID: "t1", URL: "http://evil.example:80/"}}}); err == nil || len(fv.synced) != 1 {
		t.Fatalf("a foreign URL reached the window: %v", err)
	}
	if err := a.NavigateAppView("t1", "back"); err != nil || len(fv.navs) != 1 || fv.navs[0] != "t1:back" {
		t.Fatalf("NavigateAppView: %v %v", err, fv.navs)
	}
	if err := a.NavigateAppView("t1", "sideways"); err == nil || !strings.Contains(err.Error(), "unknown navigation") {
		t.Fatalf("NavigateAppView sideways: %v", err)
	}
	if err := a.FocusShell(); err != nil || fv.focus != 1 {
		t.Fatalf("FocusShell: %v %d", err, fv.focus)
	}
	// A window that could not take views: the status says so, and the shell falls back to iframes.
	fv.broken = true
	if a.Status().AppViews {
		t.Fatal("Status().AppViews is true although the window could not take views")
	}
}

// TestStatusNamesTheOS (issue 14, finding 7): the shell must know it is the
// Linux window, where a framed app could reach the Wails bindings, so that
// without app views it opens apps in the browser instead of framing them.
func TestStatusNamesTheOS(t *testing.T) {
	a, _ := New(Options{Mode: ModeDesktop, Bus: events.New(), Views: &fakeViews{broken: true}})
	b, err := json.Marshal(a.Status())
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st["os"] != runtime.GOOS || st["mode"] != "desktop" || st["appViews"] != false {
		t.Fatalf("status %s: want os %q, mode desktop, appViews false", b, runtime.GOOS)
	}
}

var appViewNavCases = []struct {
	name, view, target string
	user               bool
	want               AppViewNavigation
}{
	{"same page", "http://127.0.0.2:8888/lab?token=x", "http://127.0.0.2:8888/lab/tree/a.ipynb", false, NavAllow},
	{"same origin, redirect", "http://127.0.0.2:8888/", "http://127.0.0.2:8888/login?next=%2Flab", false, NavAllow},
	{"case of scheme and host", "http://localhost:6006/", "HTTP://LocalHost:6006/#scalars", false, NavAllow},
	{"ipv6 loopback", "http://[::1]:6006/", "http://[::1]:6006/data", false, NavAllow},
	{"empty document", "http://127.0.0.2:8888/", "about:blank", false, NavAllow},
	{"srcdoc frame", "http://127.0.0.2:8888/", "about:srcdoc", false, NavAllow},
	{"own blob", "http://127.0.0.2:8888/", "blob:http://127.0.0.2:8888/5f1c0f0e-1", false, NavAllow},
	{"foreign blob", "http://127.0.0.2:8888/", "blob:http://127.0.0.3:8888/5f1c0f0e-1", true, NavBlock},
	{"other port", "http://127.0.0.2:8888/", "http://127.0.0.2:8889/", false, NavBlock},
	{"other port, clicked", "http://127.0.0.2:8888/", "http://127.0.0.2:8889/", true, NavOpenInBrowser},
	{"other loopback address", "http://127.0.0.2:8888/", "http://127.0.0.3:8888/", false, NavBlock},
	{"per-app address, same page", "http://127.1.0.1:8888/lab", "http://127.1.0.1:8888/lab/tree", false, NavAllow},
	{"another app of the server on its own address", "http://127.1.0.1:8888/", "http://127.1.1.1:8889/", false, NavBlock},
	{"another app of the server, clicked", "http://127.1.0.1:8888/", "http://127.1.1.1:8889/", true, NavOpenInBrowser},
	{"https of the same host", "http://127.0.0.2:8888/", "https://127.0.0.2:8888/", false, NavBlock},
	{"default port is not the endpoint", "http://127.0.0.2:8888/", "http://127.0.0.2/", false, NavBlock},
	{"docs link clicked", "http://127.0.0.2:8888/lab", "https://jupyterlab.readthedocs.io/en/latest/", true, NavOpenInBrowser},
	{"script redirect elsewhere", "http://127.0.0.2:8888/lab", "https://evil.example/phish", false, NavBlock},
	{"login provider redirect", "http://127.0.0.2:3000/", "https://github.com/login/oauth/authorize?client_id=x", false, NavBlock},
	{"wails page", "http://127.0.0.2:8888/", "wails://wails/", true, NavBlock},
	{"file", "http://127.0.0.2:8888/", "file:///etc/passwd", true, NavBlock},
	{"data", "http://127.0.0.2:8888/", "data:text/html,<script>alert(1)</script>", true, NavBlock},
	{"javascript", "http://127.0.0.2:8888/", "javascript:alert(1)", true, NavBlock},
	{"mailto", "http://127.0.0.2:8888/", "mailto:a@b.c", true, NavBlock},
	{"relative", "http://127.0.0.2:8888/", "/lab", false, NavBlock},
	{"empty", "http://127.0.0.2:8888/", "", false, NavBlock},
	{"view without endpoint", "", "http://127.0.0.2:8888/", true, NavBlock},
	{"view not web", "file:///x", "file:///x", true, NavBlock},
}

// TestDecideAppViewNavigation (issue 14, finding 9): an app view navigates
// only within its app's origin; elsewhere is cancelled, and opened in the
// system browser when the user clicked.
func TestDecideAppViewNavigation(t *testing.T) {
	for _, tc := range appViewNavCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecideAppViewNavigation(tc.view, tc.target, tc.user); got != tc.want {
				t.Fatalf("DecideAppViewNavigation(%q, %q, %v) = %v, want %v", tc.view, tc.target, tc.user, got, tc.want)
			}
		})
	}
}

func FuzzDecideAppViewNavigation(f *testing.F) {
	for _, tc := range appViewNavCases {
		f.Add(tc.view, tc.target, tc.user)
	}
	f.Fuzz(func(t *testing.T, view, target string, user bool) {
		got := DecideAppViewNavigation(view, target, user)
		home, homeOK := webOrigin(view)
		switch got {
		case NavAllow:
			// Only the app's own origin, its blobs, or an empty document.
			o, ok := webOrigin(target)
			if b, isBlob := strings.CutPrefix(strings.ToLower(target), "blob:"); isBlob {
				o, ok = webOrigin(b)
			}
			empty := strings.EqualFold(target, "about:blank") || strings.EqualFold(target, "about:srcdoc")
			if !homeOK || !(empty || ok && o == home) {
				t.Fatalf("%q → %q allowed, outside the app's origin %q", view, target, home)
			}
		case NavOpenInBrowser:
			if !user || !homeOK {
				t.Fatalf("%q → %q opens the browser without the user's gesture", view, target)
			}
			if u, err := url.Parse(target); err != nil || (strings.ToLower(u.Scheme) != "http" && strings.ToLower(u.Scheme) != "https") {
				t.Fatalf("%q opens in the browser but is not a web address", target)
			}
		case NavBlock:
		default:
			t.Fatalf("unknown decision %v", got)
		}
	})
}

// TestSetInspectorPublishes: the developer-tools switch is saved and
// published (the Linux window's views follow the settings topic).
func TestSetInspectorPublishes(t *testing.T) {
	sf, err := settings.Open(filepath.Join(t.TempDir(), "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	a, _ := New(Options{Mode: ModeDesktop, Bus: bus, Settings: sf})
	if a.GetSettings().Inspector {
		t.Fatal("the inspector is on by default")
	}
	var seen []bool
	cancel := events.Subscribe(bus, settings.Topic, func(s settings.Settings) { seen = append(seen, s.Inspector) })
	defer cancel()
	if s, err := a.SetInspector(true); err != nil || !s.Inspector || !a.GetSettings().Inspector {
		t.Fatalf("SetInspector(true) = %+v, %v", s, err)
	}
	if len(seen) == 0 || !seen[len(seen)-1] {
		t.Fatalf("settings events %v; want the last one with the inspector on", seen)
	}
}

// fakeTools is a window whose views have a browser tab's tools.
type fakeTools struct {
	fakeViews
	calls []string
}

func (f *fakeTools) Find(id, text string, op FindOp) {
	f.calls = append(f.calls, "find:"+id+":"+text+":"+string(op))
}
func (f *fakeTools) Zoom(id string, op ZoomOp) { f.calls = append(f.calls, "zoom:"+id+":"+string(op)) }
func (f *fakeTools) Print(id string)           { f.calls = append(f.calls, "print:"+id) }
func (f *fakeTools) AnswerDialog(id string, a PageDialogAnswer) error {
	if id != "pd-1" {
		return ErrUnknownDialog
	}
	f.calls = append(f.calls, "answer:"+id)
	return nil
}
func (f *fakeTools) ShowDownload(id string) error { f.calls = append(f.calls, "show:"+id); return nil }
func (f *fakeTools) CancelDownload(id string) error {
	f.calls = append(f.calls, "cancel:"+id)
	return nil
}
func (f *fakeTools) ClearDownloads() { f.calls = append(f.calls, "clear") }

func TestAppViewToolMethods(t *testing.T) {
	serve, _ := New(Options{Mode: ModeServe, Bus: events.New()})
	if err := serve.FindInAppView("t1", "x", "find"); !errors.Is(err, apperr.ErrBadInput) || !strings.Contains(err.Error(), "iframes") {
		t.Fatalf("serve FindInAppView: %v", err)
	}
	ft := &fakeTools{}
	a, _ := New(Options{Mode: ModeDesktop, Bus: events.New(), Views: ft})
	ok := []func() error{
		func() error { return a.FindInAppView("t1", "kernel", "find") },
		func() error { return a.FindInAppView("t1", "", "close") },
		func() error { return a.ZoomAppView("t1", "in") },
		func() error { return a.PrintAppView("t1") },
		func() error { return a.AnswerPageDialog("pd-1", PageDialogAnswer{OK: true}) },
		func() error { return a.ShowDownload("dl-1") },
		func() error { return a.CancelDownload("dl-1") },
		func() error { return a.ClearDownloads() },
	}
	for i, f := range ok {
		if err := f(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	want := "find:t1:kernel:find find:t1::close zoom:t1:in print:t1 answer:pd-1 show:dl-1 cancel:dl-1 clear"
	if got := strings.Join(ft.calls, " "); got != want {
		t.Fatalf("calls %q; want %q", got, want)
	}
	for _, bad := range []func() error{
		func() error { return a.FindInAppView("t1", "x", "sideways") },
		func() error { return a.FindInAppView("t 1", "x", "find") },
		func() error { return a.FindInAppView("t1", strings.Repeat("x", 2000), "find") },
		func() error { return a.ZoomAppView("t1", "max") },
		func() error { return a.PrintAppView("../x") },
		func() error { return a.AnswerPageDialog("pd-1", PageDialogAnswer{Password: strings.Repeat("x", 5000)}) },
	} {
		if err := bad(); !errors.Is(err, apperr.ErrBadInput) {
			t.Errorf("bad input accepted: %v", err)
		}
	}
	if err := a.AnswerPageDialog("pd-2", PageDialogAnswer{}); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("unknown dialog: %v", err)
	}
	if len(ft.calls) != 8 {
		t.Errorf("bad input reached the window: %v", ft.calls)
	}
}
