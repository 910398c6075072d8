package forwarder

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// linkClock is a settable clock for one-time links.
type linkClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *linkClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *linkClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// lockedBuffer collects a logger's output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWebOpenLink: a one-time link redirects once to its target on the
// same origin, then (and when expired, unknown or another forward's) shows
// Porthole's "already used" page; the app never sees those requests, and
// neither the target nor the code is logged.
func TestWebOpenLink(t *testing.T) {
	const secret = "5ecret7oken"
	var appHits atomic.Int64
	app := newPlainBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appHits.Add(1)
		_, _ = w.Write([]byte("app"))
	}))
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := &linkClock{now: time.Unix(1_700_000_000, 0)}
	d := DialerFunc(directDial)
	fwd := listenWeb(t, webSpec(t, app), d, WebOptions{Logger: log, clock: clock.Now})
	other := listenWeb(t, webSpec(t, app), d, WebOptions{Logger: log, clock: clock.Now})
	c := webClient(t)

	register := func(t *testing.T, f *WebForward, target string) string {
		t.Helper()
		code, err := f.OpenLink(target)
		if err != nil {
			t.Fatalf("OpenLink(%q): %v", target, err)
		}
		if len(code) < 22 || strings.Contains(code, secret) {
			t.Fatalf("code %q: want 128 random bits, nothing of the target", code)
		}
		return code
	}
	target := "/lab/tree/a%20b.ipynb?token=" + secret + "&x=1#cell-3"
	used := register(t, fwd, target)
	expired := register(t, fwd, "/lab?token="+secret)
	foreign := register(t, other, "/lab?token="+secret)

	type step struct {
		name    string
		link    string
		advance time.Duration // before the request
		method  string
		status  int
		loc     string
	}
	for _, tc := range []step{
		{name: "a HEAD does not use it", link: fwd.URL() + OpenPathPrefix + used, method: "HEAD", status: http.StatusMethodNotAllowed},
		{name: "first use", link: fwd.URL() + OpenPathPrefix + used, status: http.StatusSeeOther, loc: target},
		{name: "second use", link: fwd.URL() + OpenPathPrefix + used, status: http.StatusGone},
		{name: "unknown code", link: fwd.URL() + OpenPathPrefix + "AAAAAAAAAAAAAAAAAAAAAA", status: http.StatusGone},
		{name: "empty code", link: fwd.URL() + OpenPathPrefix, status: http.StatusGone},
		{name: "another forward's code", link: fwd.URL() + OpenPathPrefix + foreign, status: http.StatusGone},
		{name: "expired", link: fwd.URL() + OpenPathPrefix + expired, advance: OpenLinkTTL, status: http.StatusGone},
		{name: "expired on its own forward too", link: other.URL() + OpenPathPrefix + foreign, status: http.StatusGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.advance(tc.advance)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			resp, body := do(t, c, method, tc.link, kindNavigate, "", nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: %s, want %d\n%s", method, tc.link, resp.Status, tc.status, body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			switch tc.status {
			case http.StatusSeeOther:
				if loc := resp.Header.Get("Location"); loc != tc.loc {
					t.Errorf("Location %q, want %q", loc, tc.loc)
				}
				if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
					t.Errorf("Referrer-Policy %q, want no-referrer", rp)
				}
				// Where the browser goes next: the same origin.
				next, err := url.Parse(tc.link)
				if err != nil {
					t.Fatal(err)
				}
				if next = next.ResolveReference(&url.URL{Path: "/"}); !strings.HasPrefix(fwd.URL()+"/", next.String()) {
					t.Errorf("redirect leaves the origin: %s", next)
				}
			case http.StatusGone:
				if resp.Header.Get(errorHeader) != "link-used" {
					t.Errorf("%s %q, want link-used", errorHeader, resp.Header.Get(errorHeader))
				}
				for _, want := range []string{"This link was already used", "Open the app from Porthole again."} {
					if !strings.Contains(body, want) {
						t.Errorf("page lacks %q:\n%s", want, body)
					}
				}
				if strings.Contains(body, "Reload") || strings.Contains(body, secret) {
					t.Errorf("page offers a reload that cannot help, or shows the target:\n%s", body)
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+testAncestorSources) {
					t.Errorf("page CSP %q", csp)
				}
			}
		})
	}
	if n := appHits.Load(); n != 0 {
		t.Errorf("the app got %d requests for one-time links", n)
	}
	// The target now works as an ordinary request.
	if resp, body := do(t, c, "GET", fwd.URL()+"/lab?token="+secret, kindNavigate, "", nil); resp.StatusCode != 200 || body != "app" {
		t.Fatalf("GET the target: %s %q", resp.Status, body)
	}
	if s := logs.String(); strings.Contains(s, secret) || strings.Contains(s, used) || !strings.Contains(s, "one-time link") {
		t.Errorf("the log holds the target or a code, or says nothing of the links:\n%s", s)
	}
}

// TestWebOpenLinkCrossSite: another site cannot make the browser use a
// link (it is refused like any cross-site request, and not used up).
func TestWebOpenLinkCrossSite(t *testing.T) {
	app := newPlainBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	fwd := listenWeb(t, webSpec(t, app), DialerFunc(directDial), WebOptions{})
	code, err := fwd.OpenLink("/?token=x")
	if err != nil {
		t.Fatal(err)
	}
	c := webClient(t)
	link := fwd.URL() + OpenPathPrefix + code
	resp, _ := do(t, c, "GET", link, kindNavigate, "", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site use: %s, want 403", resp.Status)
	}
	if resp, _ := do(t, c, "GET", link, kindNavigate, "", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the user's own use after the refused one: %s, want 303", resp.Status)
	}
}

// openTargetCases are checkOpenTarget's table (and the fuzz test's seeds).
var openTargetCases = []struct {
	target string
	ok     bool
}{
	{"/", true},
	{"/lab?token=abc", true},
	{"/lab/tree/x.ipynb?a=1&token=abc#frag", true},
	{"/?", true},
	{"/a%2F..%2Fb", true},
	{"", false},
	{"lab", false},
	{"//evil.example/", false},
	{"/\\evil.example/", false},
	{"http://127.0.0.2:1/", false},
	{"/a b", false},
	{"/a\tb", false},
	{"/a\nb", false},
	{"/x\x7f", false},
	{OpenPathPrefix + "abc", false},
	{"/" + strings.Repeat("a", maxOpenTarget), false},
}

func TestCheckOpenTarget(t *testing.T) {
	for _, tc := range openTargetCases {
		t.Run(tc.target, func(t *testing.T) {
			err := checkOpenTarget(tc.target)
			if tc.ok != (err == nil) {
				t.Fatalf("checkOpenTarget(%q) = %v, want ok %v", tc.target, err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrBadOpenTarget) || (len(tc.target) > 1 && strings.Contains(err.Error(), tc.target))) {
				t.Fatalf("error %q: want ErrBadOpenTarget, without the target", err)
			}
		})
	}
	fwd := listenWeb(t, WebSpec{TargetHost: "127.0.0.1", TargetPort: 9}, DialerFunc(directDial), WebOptions{})
	if _, err := fwd.OpenLink("//evil.example/"); !errors.Is(err, ErrBadOpenTarget) {
		t.Fatalf("OpenLink of another host = %v, want ErrBadOpenTarget", err)
	}
	_ = fwd.Close()
	if _, err := fwd.OpenLink("/"); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("OpenLink after Close = %v, want ErrSessionClosed", err)
	}
}

// TestWebOpenLinkBounded: a forward remembers at most maxOpenLinks links;
// the oldest goes first.
func TestWebOpenLinkBounded(t *testing.T) {
	clock := &linkClock{now: time.Unix(1_700_000_000, 0)}
	fwd := listenWeb(t, WebSpec{TargetHost: "127.0.0.1", TargetPort: 9}, DialerFunc(directDial), WebOptions{clock: clock.Now})
	var codes []string
	for range maxOpenLinks + 1 {
		clock.advance(time.Millisecond)
		code, err := fwd.OpenLink("/")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	if _, ok := fwd.takeLink(codes[0]); ok {
		t.Error("the oldest link was kept beyond the bound")
	}
	if _, ok := fwd.takeLink(codes[len(codes)-1]); !ok {
		t.Error("the newest link was forgotten")
	}
}

// FuzzCheckOpenTarget: whatever it accepts stays on the forward's origin.
func FuzzCheckOpenTarget(f *testing.F) {
	for _, tc := range openTargetCases {
		f.Add(tc.target)
	}
	base, _ := url.Parse("http://127.0.0.2:8888" + OpenPathPrefix + "code")
	f.Fuzz(func(t *testing.T, target string) {
		if checkOpenTarget(target) != nil {
			return
		}
		u, err := base.Parse(target)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", target, err)
		}
		if u.Scheme != "http" || u.Host != "127.0.0.2:8888" {
			t.Fatalf("accepted %q, which leads to %s", target, u)
		}
	})
}

// directDial dials the target on this machine (the "server" is loopback).
func directDial(ctx context.Context, host string, port int) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
}
