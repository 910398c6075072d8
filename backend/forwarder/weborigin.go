package forwarder

import (
	"net/http"
	"net/url"
	"strings"
)

// Cross-site requests. The forward's Host check stops DNS rebinding, but a
// page of any website can still make the browser send requests to the
// local endpoint (a form POST, a fetch, an <img>, a websocket, a link or a
// frame), and the app (which sees localhost, as if the browser ran on the
// server) answers them with the user's cookies. The forward therefore
// decides from the browser's own, unforgeable headers who started a request
// and answers everyone but the app itself, Porthole and the user with 403.
//
// What browsers send (Chromium and WebKit; Sec-Fetch-* go only to
// potentially trustworthy origins, which http://127.x and localhost are;
// Sec-Fetch-Site compares the initiator's origin with the target's, and for
// a frame's navigation the initiator is the document that navigated it, so
// for a frame created by its parent page it is the parent):
//
//	request                                   Sec-Fetch-Site  Origin            Referer
//	user types the address, bookmark, the     none            -                 -
//	  desktop's own web view (load_uri),
//	  xdg-open
//	the app's own fetch/XHR/page/form         same-origin     own (not on GET   own
//	                                                          navigations)
//	the app's own websocket                   same-origin     own (always)      -
//	serve's page (http://127.80.72.1:P)       cross-site, or  - (GET navigation) serve's origin
//	  frames the app (iframe src,             same-site when  (iframe: Sec-Fetch-Dest iframe,
//	  location.replace)                       serve and the       Mode navigate)
//	                                          app are both on
//	                                          127.0.0.1 (macOS)
//	Windows window (http://wails.localhost)   cross-site      -                 http://wails.localhost/
//	  frames the app
//	a link click / window.open on another     cross-site      -                 that site (or none:
//	  site                                                                      rel=noreferrer)
//	a form POST from another site             cross-site      that site or null that site or none
//	fetch/XHR/<img>/<script> of another site  cross-site      that site (CORS   that site or none
//	                                                          modes) or -
//	another app of the same server            same-site       other port        other port
//	  (127.0.0.2:6006 → 127.0.0.2:8888)
//
// The rule (requestAllowed):
//
//  1. An Origin header, when present, must be the local endpoint's own
//     origin ("http://" + the Host the request names) or one of Porthole's
//     origins (the forward's frame ancestors: the desktop window's and
//     serve's). "null" (sandboxed frames, file: pages, cross-origin
//     redirects) is refused. Websocket handshakes always carry Origin, so
//     this alone decides them.
//  2. Sec-Fetch-Site absent (an older browser, or a non-browser client such
//     as curl, which no website controls), "none" (the user's own
//     navigation) or "same-origin": allowed.
//  3. "same-site" or "cross-site" (or anything else): allowed only when
//     Porthole started it: either its Origin is a Porthole origin (checked
//     in 1; own origin does not count here, a cross-site redirect chain
//     ending at the app is still cross-site), or it is a frame's navigation
//     (Sec-Fetch-Mode navigate, Sec-Fetch-Dest iframe or frame), which
//     carries no Origin on GET, whose Referer's origin is a Porthole origin:
//     serve's page and the Windows window send their origin as Referer (serve
//     uses Referrer-Policy: origin for this). A referrer cannot be forged by
//     a page; it can only be left out, and then the request is refused.
//
// Same-site is treated like cross-site because a site is only scheme+host:
// every local program on 127.0.0.1 (and every other app of the same login
// on its 127.0.0.N) is same-site with the app.
//
// Known gaps: a browser without Fetch Metadata (Safari before 16.4, Firefox
// before 90) is checked by Origin alone, so its cross-site GETs pass; a
// page that frames the app from a non-http origin (macOS's wails://wails)
// sends no Referer, so recent WebKit's cross-site frame navigation from it
// is refused (the Linux window uses top-level web views: "none").

// originPolicy is what requestAllowed needs to know about the forward.
type originPolicy struct {
	porthole map[string]bool // normalized Porthole origins (frame ancestors)
}

func newOriginPolicy(ancestors []string) originPolicy {
	p := originPolicy{porthole: make(map[string]bool, len(ancestors))}
	for _, a := range ancestors {
		if n, err := normalizeFrameAncestor(a); err == nil {
			p.porthole[n] = true
		}
	}
	return p
}

// crossSiteVerdict is why requestAllowed decided as it did.
type crossSiteVerdict int

const (
	verdictAllowed crossSiteVerdict = iota
	verdictForeignOrigin
	verdictCrossSite
)

func (v crossSiteVerdict) String() string {
	switch v {
	case verdictAllowed:
		return "allowed"
	case verdictForeignOrigin:
		return "foreign-origin"
	case verdictCrossSite:
		return "cross-site"
	default:
		return "crossSiteVerdict(?)"
	}
}

// requestAllowed applies the rule above to a request's headers; host is
// the Host it names (already checked to be the local endpoint).
func (p originPolicy) requestAllowed(h http.Header, host string) crossSiteVerdict {
	origins, hasOrigin := h["Origin"]
	fromPorthole := false
	if hasOrigin {
		if len(origins) != 1 {
			return verdictForeignOrigin
		}
		o := origins[0]
		switch {
		case p.isPorthole(o):
			fromPorthole = true
		case isOwnOrigin(o, host):
		default:
			return verdictForeignOrigin
		}
	}
	switch h.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
		return verdictAllowed
	}
	if fromPorthole {
		return verdictAllowed
	}
	if !hasOrigin && h.Get("Sec-Fetch-Mode") == "navigate" {
		switch h.Get("Sec-Fetch-Dest") {
		case "iframe", "frame":
			if p.isPorthole(refererOrigin(h.Get("Referer"))) {
				return verdictAllowed
			}
		}
	}
	return verdictCrossSite
}

func (p originPolicy) isPorthole(origin string) bool {
	if origin == "" || strings.EqualFold(origin, "null") {
		return false
	}
	n, err := normalizeFrameAncestor(origin)
	return err == nil && p.porthole[n]
}

// isOwnOrigin reports whether origin is http://<host> (the Host the request
// names), compared like authorities (case, default port).
func isOwnOrigin(origin, host string) bool {
	if len(origin) < 7 || !strings.EqualFold(origin[:7], "http://") {
		return false
	}
	a := origin[7:]
	if a == "" || strings.ContainsAny(a, "/?#@\\") {
		return false
	}
	return sameAuthority(a, host)
}

// refererOrigin is the scheme://host[:port] of an absolute Referer, or "".
func refererOrigin(ref string) string {
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
