package forwarder

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/porthole-app/porthole/internal/testrig"
)

// originHost is the local endpoint the table's requests name; serveOrigin
// is Porthole's serve page (in testAncestors).
const (
	originHost  = "127.0.0.2:8888"
	ownOrigin   = "http://127.0.0.2:8888"
	serveOrigin = "http://127.0.0.1:34115"
)

// h builds a header from name/value pairs.
func h(kv ...string) http.Header {
	out := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Add(kv[i], kv[i+1])
	}
	return out
}

// originCases are the requests Chromium and WebKit send in each situation
// (see the table in weborigin.go).
var originCases = []struct {
	name string
	hdr  http.Header
	want crossSiteVerdict
}{
	// The user's own navigations.
	{"typed address", h("Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), verdictAllowed},
	{"desktop web view load_uri", h("Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), verdictAllowed},
	{"curl", h(), verdictAllowed},
	{"old browser page load", h("Referer", ownOrigin+"/lab"), verdictAllowed},
	// The app itself.
	{"own link click", h("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", ownOrigin+"/a"), verdictAllowed},
	{"own fetch GET", h("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"), verdictAllowed},
	{"own fetch POST", h("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", ownOrigin), verdictAllowed},
	{"own form POST", h("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Origin", ownOrigin), verdictAllowed},
	{"own websocket", h("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "websocket", "Sec-Fetch-Dest", "websocket", "Origin", ownOrigin), verdictAllowed},
	{"own websocket, old browser", h("Origin", ownOrigin), verdictAllowed},
	{"the endpoint under its other name is another origin", h("Sec-Fetch-Site", "same-origin", "Origin", "http://localhost:8888"), verdictForeignOrigin}, // Host is 127.0.0.2:8888
	{"own origin in capitals", h("Sec-Fetch-Site", "same-origin", "Origin", "HTTP://127.0.0.2:8888"), verdictAllowed},
	// Porthole.
	{"serve frames the app (Chromium)", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", serveOrigin+"/"), verdictAllowed},
	{"serve frames an app on 127.0.0.1", h("Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", serveOrigin+"/"), verdictAllowed},
	{"Windows window frames the app", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", "http://wails.localhost/"), verdictAllowed},
	{"serve's fetch", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", serveOrigin), verdictAllowed},
	{"Windows window's fetch", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", "http://wails.localhost"), verdictAllowed},
	// Other sites.
	{"link click from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Referer", "https://evil.example/"), verdictCrossSite},
	{"link click from serve's page, top level", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Referer", serveOrigin+"/"), verdictCrossSite},
	{"noreferrer link from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), verdictCrossSite},
	{"another site frames the app", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", "https://evil.example/x"), verdictCrossSite},
	{"another site frames the app without referrer", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe"), verdictCrossSite},
	{"another site frames with serve's name in the path", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", "https://evil.example/http://127.0.0.1:34115/"), verdictCrossSite},
	{"form POST from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Origin", "https://evil.example"), verdictForeignOrigin},
	{"form POST from a sandboxed frame", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Origin", "null", "Referer", serveOrigin+"/"), verdictForeignOrigin},
	{"form POST from another site, old browser", h("Origin", "https://evil.example"), verdictForeignOrigin},
	{"fetch from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", "https://evil.example"), verdictForeignOrigin},
	{"no-cors fetch from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "empty"), verdictCrossSite},
	{"img from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image", "Referer", serveOrigin+"/"), verdictCrossSite},
	{"websocket from another site", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "websocket", "Sec-Fetch-Dest", "websocket", "Origin", "https://evil.example"), verdictForeignOrigin},
	{"websocket from another site, old browser", h("Origin", "https://evil.example"), verdictForeignOrigin},
	{"another local port", h("Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", "http://127.0.0.2:6006"), verdictForeignOrigin},
	{"another app of the server links here", h("Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Referer", "http://127.0.0.2:6006/"), verdictCrossSite},
	{"cross-site redirect back to the app", h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", ownOrigin), verdictCrossSite},
	{"two origins", h("Origin", ownOrigin, "Origin", ownOrigin), verdictForeignOrigin},
	{"empty origin", h("Origin", ""), verdictForeignOrigin},
	{"unknown Sec-Fetch-Site", h("Sec-Fetch-Site", "sideways"), verdictCrossSite},
}

func TestWebRequestAllowed(t *testing.T) {
	p := newOriginPolicy(testAncestors)
	for _, tc := range originCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.requestAllowed(tc.hdr, originHost); got != tc.want {
				t.Fatalf("requestAllowed(%v) = %v, want %v", tc.hdr, got, tc.want)
			}
		})
	}
	// Without ancestors (a forward nobody frames) serve's requests are foreign too.
	if got := newOriginPolicy(nil).requestAllowed(h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Referer", serveOrigin+"/"), originHost); got != verdictCrossSite {
		t.Fatalf("serve's frame with no ancestors configured: %v, want cross-site", got)
	}
}

func FuzzWebRequestAllowed(f *testing.F) {
	for _, tc := range originCases {
		f.Add(tc.hdr.Get("Origin"), tc.hdr.Get("Sec-Fetch-Site"), tc.hdr.Get("Sec-Fetch-Dest"), tc.hdr.Get("Referer"))
	}
	p := newOriginPolicy(testAncestors)
	f.Fuzz(func(t *testing.T, origin, site, dest, referer string) {
		hdr := h("Sec-Fetch-Site", site, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", dest, "Referer", referer)
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		if p.requestAllowed(hdr, originHost) != verdictAllowed {
			return
		}
		// Allowed: the origin is ours or Porthole's, and a request another
		// site started has a Porthole referrer.
		if origin != "" && !p.isPorthole(origin) && !isOwnOrigin(origin, originHost) {
			t.Fatalf("foreign Origin %q allowed", origin)
		}
		switch site {
		case "", "none", "same-origin":
		default:
			if !p.isPorthole(origin) && !p.isPorthole(refererOrigin(referer)) {
				t.Fatalf("Sec-Fetch-Site %q allowed without Porthole's Origin or Referer (%q, %q)", site, origin, referer)
			}
		}
	})
}

// TestWebRefusesCrossSiteRequests sends what browsers send through a real
// forward: other sites' requests get the 403 page and never reach the app;
// the app's own, Porthole's and the user's requests do.
func TestWebRefusesCrossSiteRequests(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})
	c := webClient(t)
	self := fwd.URL()

	refused := []struct {
		name   string
		method string
		kind   reqKind
		hdr    http.Header
	}{
		{"form POST from another site", "POST", kindNavigate, h("Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")},
		{"form POST, old browser", "POST", kindPlain, h("Origin", "https://evil.example")},
		{"fetch from another local port", "POST", kindFetch, h("Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", "same-site")},
		{"link from another site", "GET", kindNavigate, h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "document", "Referer", "https://evil.example/")},
		{"frame on another site", "GET", kindNavigate, h("Sec-Fetch-Site", "cross-site", "Referer", "https://evil.example/")},
		{"img on another site", "GET", kindPlain, h("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image")},
	}
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			resp, body := do(t, c, tc.method, self+"/headers", tc.kind, "a=1", tc.hdr)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get(errorHeader) != "cross-site" {
				t.Fatalf("%s %q: %s", resp.Status, resp.Header.Get(errorHeader), body)
			}
			if tc.kind == kindFetch {
				var e map[string]string
				if err := json.Unmarshal([]byte(body), &e); err != nil || e["kind"] != "cross-site" {
					t.Fatalf("JSON %q (%v)", body, err)
				}
				return
			}
			for _, want := range []string{"<title>Request from another site refused</title>", "Open the app from Porthole, or type its address (" + self + "/)"} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
		})
	}
	if n := app.Count("/headers"); n != 0 {
		t.Fatalf("the app saw %d requests that other sites started", n)
	}

	t.Run("refuses a websocket from another site", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
		ws, resp, err := d.Dial("ws://"+fwd.Addr().String()+"/ws", h("Origin", "https://evil.example"))
		if err == nil {
			ws.Close()
			t.Fatal("a websocket from https://evil.example was opened")
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("handshake: %v, %+v", err, resp)
		}
		if n := app.Count("/ws"); n != 0 {
			t.Fatalf("the app saw %d websocket handshakes from another site", n)
		}
	})

	allowed := []struct {
		name   string
		method string
		kind   reqKind
		hdr    http.Header
	}{
		{"typed", "GET", kindNavigate, h("Sec-Fetch-Site", "none", "Sec-Fetch-Dest", "document")},
		{"the app's own POST", "POST", kindFetch, h("Origin", self, "Sec-Fetch-Site", "same-origin")},
		{"serve's frame", "GET", kindNavigate, h("Sec-Fetch-Site", "cross-site", "Referer", "http://127.0.0.1:34115/")},
		{"the window's fetch", "POST", kindFetch, h("Origin", "http://wails.localhost", "Sec-Fetch-Site", "cross-site")},
	}
	for _, tc := range allowed {
		t.Run("allows "+tc.name, func(t *testing.T) {
			resp, body := do(t, c, tc.method, self+"/headers", tc.kind, "a=1", tc.hdr)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
	if n := app.Count("/headers"); n != len(allowed) {
		t.Fatalf("the app saw %d requests, want %d", n, len(allowed))
	}
	if st := fwd.Stats(); st.FailedConns != uint64(len(refused)+1) || !strings.Contains(st.LastError, "another site") {
		t.Fatalf("stats %+v", st)
	}
}

// TestWebServeFrameAncestors: a forward made for serve lists exactly serve's
// origins (no desktop origin: in a browser http://wails.localhost is any
// local program) in its frame-ancestors and in whom it takes requests from.
func TestWebServeFrameAncestors(t *testing.T) {
	if got := ServeFrameAncestors("http://127.0.0.1:34115"); strings.Join(got, " ") != "http://127.0.0.1:34115 http://localhost:34115" {
		t.Fatalf("ServeFrameAncestors(127.0.0.1) = %q", got)
	}
	if got := ServeFrameAncestors("http://127.77.0.1:34115"); strings.Join(got, " ") != "http://127.77.0.1:34115" {
		t.Fatalf("ServeFrameAncestors(127.77.0.1) = %q", got)
	}
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	spec := webSpec(t, app.Addr())
	spec.AllowedFrameAncestors = ServeFrameAncestors("http://127.0.0.1:34115")
	fwd := listenWeb(t, spec, s, WebOptions{})
	c := webClient(t)
	resp, body := do(t, c, "GET", fwd.URL()+"/small", kindNavigate, "", h("Sec-Fetch-Site", "cross-site", "Referer", "http://localhost:34115/"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("serve's frame: %s %s", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "frame-ancestors 'self' http://127.0.0.1:34115 http://localhost:34115" {
		t.Fatalf("CSP %q", csp)
	}
	resp, _ = do(t, c, "GET", fwd.URL()+"/small", kindNavigate, "", h("Sec-Fetch-Site", "cross-site", "Referer", "http://wails.localhost/"))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a wails.localhost frame in serve mode: %s, want 403", resp.Status)
	}
}
