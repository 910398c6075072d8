package forwarder

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// An app that asks for an HTTP login (Transmission's web client, a router's
// page) inside a tab of serve's page: browsers ask for no login in a frame
// of another site and show the app's bare 401 body. The forward shows a page
// of its own there that links the same address for a tab of its own. A
// top-level load, a same-site frame and a script's call get the app's 401
// untouched (the browser asks, or the script handles it).
func TestWebHTTPLoginInACrossSiteFrame(t *testing.T) {
	srv := newServer(t, nil)
	backend := newPlainBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "admin" && p == "s3cret" {
			_, _ = w.Write([]byte("<title>inside</title>"))
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="Transmission"`)
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1", Path: "/"})
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("<h1>401: Unauthorized</h1>"))
	}))
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	fwd := listenWeb(t, webSpec(t, backend), s, WebOptions{})
	c := webClient(t)
	page := fwd.URL() + "/transmission/web/?x=1"
	frame := func(site string) http.Header {
		return http.Header{"Sec-Fetch-Site": {site}, "Referer": {"http://127.0.0.1:34115/"}}
	}

	// A frame the browser itself (re)loads says Sec-Fetch-Site none: still
	// inside serve's page.
	if resp, _ := do(t, c, "GET", page, kindNavigate, "", http.Header{"Sec-Fetch-Site": {"none"}}); resp.Header.Get(errorHeader) != "login-in-frame" {
		t.Errorf("a frame loaded by the browser: %s, %s %q; want Porthole's page", resp.Status, errorHeader, resp.Header.Get(errorHeader))
	}
	resp, body := do(t, c, "GET", page, kindNavigate, "", frame("cross-site"))
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(errorHeader) != "login-in-frame" {
		t.Fatalf("in a cross-site frame: %s, %s %q; want 401 and Porthole's page", resp.Status, errorHeader, resp.Header.Get(errorHeader))
	}
	if v := resp.Header.Get("WWW-Authenticate"); v != "" {
		t.Errorf("WWW-Authenticate %q kept on Porthole's page", v)
	}
	if resp.Header.Get("Set-Cookie") == "" {
		t.Errorf("the app's Set-Cookie was dropped")
	}
	if !strings.Contains(body, "asks you to log in") || strings.Contains(body, "401: Unauthorized") {
		t.Errorf("the page does not say what happened: %q", body)
	}
	href, target := newTabLink(t, body)
	if href != page || target != "_blank" {
		t.Errorf("the page links %q (target %q); want %q in a new tab", href, target, page)
	}
	// In a tab of its own the browser asks; the login then works.
	if resp, body := do(t, c, "GET", href, kindNavigate, "", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Dest": {"document"}, "Authorization": {"Basic YWRtaW46czNjcmV0"}}); resp.StatusCode != 200 || !strings.Contains(body, "inside") {
		t.Errorf("the linked page with the login: %s %q", resp.Status, body)
	}

	for _, tc := range []struct {
		name string
		kind reqKind
		hdr  http.Header
	}{
		{"a top-level load", kindNavigate, http.Header{"Sec-Fetch-Site": {"none"}, "Sec-Fetch-Dest": {"document"}}},
		{"a same-site frame", kindNavigate, frame("same-site")},
		{"the app's own script", kindFetch, http.Header{"Sec-Fetch-Site": {"same-origin"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, "GET", page, tc.kind, "", tc.hdr)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(errorHeader) != "" ||
				resp.Header.Get("WWW-Authenticate") != `Basic realm="Transmission"` || !strings.Contains(body, "401: Unauthorized") {
				t.Errorf("%s %s %q, WWW-Authenticate %q: %q; want the app's own 401", resp.Status, errorHeader, resp.Header.Get(errorHeader), resp.Header.Get("WWW-Authenticate"), body)
			}
		})
	}
}

// newTabLink is the href and target of the page's "open in a new tab" link.
func newTabLink(t *testing.T, page string) (href, target string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			var cls string
			var h, tg string
			for _, a := range n.Attr {
				switch a.Key {
				case "class":
					cls = a.Val
				case "href":
					h = a.Val
				case "target":
					tg = a.Val
				}
			}
			if cls == "open" {
				href, target = h, tg
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return href, target
}
