package forwarder

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// rewriteRequest points the outbound request at the app and makes it look
// as if the browser ran on the server: Host localhost:<port>, and Origin and
// Referer of the local endpoint translated to that origin. Origins of other
// sites are left alone, so the app's own cross-site checks still apply.
func (f *WebForward) rewriteRequest(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = f.upstream
	out.Host = f.upstream
	info := infoOf(out.Context())
	rewriteRequestHeaders(out.Header, info.localAuthority, f.upstream)
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = newReplayBody(out.Body)
	}
}

// rewriteRequestHeaders translates Origin and Referer from the local
// endpoint (local, e.g. "127.0.0.2:8888") to the app's own origin
// (upstream, e.g. "localhost:8888").
func rewriteRequestHeaders(h http.Header, local, upstream string) {
	for _, k := range []string{"Origin", "Referer"} {
		if v := h.Get(k); v != "" {
			if nv, ok := swapAuthority(v, local, upstream); ok {
				h.Set(k, nv)
			}
		}
	}
}

// swapAuthority replaces the authority of the http URL (or origin) u with to
// if it is from; the rest of u is kept byte for byte.
func swapAuthority(u, from, to string) (string, bool) {
	prefix, authority, rest, ok := splitURLAuthority(u)
	if !ok || prefix == "//" || !sameAuthority(authority, from) {
		return u, false
	}
	return "http://" + to + rest, true
}

// splitURLAuthority splits an absolute http URL, or a scheme-relative one,
// into its prefix ("http://" as written, or "//"), authority and the rest.
// URLs with user info or another scheme are not split.
func splitURLAuthority(u string) (prefix, authority, rest string, ok bool) {
	switch {
	case len(u) >= 7 && strings.EqualFold(u[:7], "http://"):
		prefix = u[:7]
	case strings.HasPrefix(u, "//"):
		prefix = "//"
	default:
		return "", "", "", false
	}
	after := u[len(prefix):]
	i := strings.IndexAny(after, "/?#\\")
	if i < 0 {
		i = len(after)
	}
	authority, rest = after[:i], after[i:]
	if authority == "" || strings.Contains(authority, "@") {
		return "", "", "", false
	}
	return prefix, authority, rest, true
}

// isUpstreamAuthority reports whether authority names the app as the server
// sees it: any of the server's loopback names (or the target host) with the
// target port.
func (f *WebForward) isUpstreamAuthority(authority string) bool {
	host, port, ok := splitAuthority(authority)
	return ok && port == f.spec.TargetPort && f.isUpstreamHost(host)
}

func (f *WebForward) isUpstreamHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return isServerLocalName(host) || strings.EqualFold(host, f.spec.TargetHost)
}

// isUpstreamCookieDomain reports whether a cookie's Domain attribute covers
// the app as the server sees it: a name of the upstream host, or a parent
// domain of the target host (Domain=example.internal from
// grafana.example.internal, an app on another computer opened through the
// server). The browser would reject such a cookie on the local endpoint.
func (f *WebForward) isUpstreamCookieDomain(d string) bool {
	return f.isUpstreamHost(d) || isParentDomain(d, f.spec.TargetHost)
}

// isParentDomain reports whether host (a DNS name, not an IP address) is in
// domain d: it ends with "." + d, case-insensitively.
func isParentDomain(d, host string) bool {
	d = strings.TrimSuffix(strings.TrimPrefix(d, "."), ".")
	host = strings.TrimSuffix(host, ".")
	if d == "" || host == "" || strings.ContainsAny(host, ":[") {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	return hasSuffixFold(host, "."+d)
}

// rewriteServerURL maps an http URL pointing at the app on the server
// (http://localhost:8888/x, //127.0.0.1:8888/x, http://[::1]:8888, …) to the
// local endpoint. Other URLs are returned unchanged.
func (f *WebForward) rewriteServerURL(u, local string) (string, bool) {
	prefix, authority, rest, ok := splitURLAuthority(u)
	if !ok || !f.isUpstreamAuthority(authority) {
		return u, false
	}
	if prefix != "//" {
		prefix = "http://"
	}
	return prefix + local + rest, true
}

// rewriteRefresh rewrites the URL of a Refresh header ("5; url=…").
func (f *WebForward) rewriteRefresh(v, local string) (string, bool) {
	i := strings.Index(strings.ToLower(v), "url=")
	if i < 0 {
		return v, false
	}
	head, u := v[:i+4], v[i+4:]
	quote := ""
	if len(u) >= 2 && (u[0] == '"' || u[0] == '\'') && u[len(u)-1] == u[0] {
		quote, u = u[:1], u[1:len(u)-1]
	}
	nu, ok := f.rewriteServerURL(u, local)
	if !ok {
		return v, false
	}
	return head + quote + nu + quote, true
}

// rewriteResponse fixes the app's response for the local endpoint:
// redirects to the server's localhost go to the local endpoint, cookies for
// the server's localhost stick to the local origin, and only the app itself
// and Porthole's window may frame it.
func (f *WebForward) rewriteResponse(resp *http.Response) error {
	h := resp.Header
	info := infoOf(resp.Request.Context())
	local := info.localAuthority
	if local == "" {
		local = f.ln.Addr().String()
	}
	for _, k := range []string{"Location", "Content-Location"} {
		if v := h.Get(k); v != "" {
			if nv, ok := f.rewriteServerURL(v, local); ok {
				h.Set(k, nv)
			}
		}
	}
	if v := h.Get("Refresh"); v != "" {
		if nv, ok := f.rewriteRefresh(v, local); ok {
			h.Set("Refresh", nv)
		}
	}
	if v := h.Get("Access-Control-Allow-Origin"); v != "" {
		if nv, ok := swapAuthority(v, f.upstream, local); ok {
			h.Set("Access-Control-Allow-Origin", nv)
		}
	}
	if cs := h.Values("Set-Cookie"); len(cs) > 0 {
		client := cookieClientOf(resp.Request.Header.Get("User-Agent"))
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = rewriteSetCookie(c, f.isUpstreamCookieDomain, client)
		}
		h["Set-Cookie"] = out
	}
	rewriteFrameHeaders(h, f.ancestors)
	if info.crossSiteFrame && resp.StatusCode == http.StatusUnauthorized && asksHTTPLogin(h) {
		f.loginInFrame(resp, local, info.url.RequestURI())
	}
	return nil
}

// asksHTTPLogin: a 401 that asks the browser for a user name and password
// (HTTP Basic or Digest authentication), which browsers ask for only in a
// top-level page or a frame of the same site.
func asksHTTPLogin(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "Basic") || strings.EqualFold(scheme, "Digest") {
			return true
		}
	}
	return false
}

// CookieClient is what a browser needs of an app's cookies so that the app
// stays logged in inside a tab, where it is framed by a page of another site
// (serve's page on 127.80.72.1, or the window's wails://wails): such a frame
// is a third-party context.
type CookieClient int

const (
	// CookieClientAsIs: a browser Porthole has not verified (Firefox,
	// Safari, unknown): the attributes are kept as the app wrote them.
	CookieClientAsIs CookieClient = iota
	// CookieClientPartitioned: Chromium (Chrome, Edge, WebView2). It sends
	// no SameSite=Lax/Strict cookie, and by default no unpartitioned
	// third-party cookie, into a frame of another site; a partitioned
	// (CHIPS) cookie it keeps and sends, keyed by the top-level site. Every
	// cookie becomes "SameSite=None; Secure; Partitioned" (Chromium takes
	// Secure cookies from http://127.x, a trustworthy origin). Keyed by the
	// top-level site, the cookie reaches the app only inside Porthole's page
	// (or when the app is the top-level page itself), not from other sites.
	// The site of http://IP:PORT is the IP without the port, so this holds
	// only while serve's page has an IP of its own (portmap.ServeAddr): on
	// 127.0.0.1, every other local page would share the partition.
	CookieClientPartitioned
	// CookieClientWebKit: WebKit (the Linux window's WebKitGTK, Safari).
	// WebKit refuses Secure cookies over http, even from loopback, so an
	// app's Secure flag (meaningless on a loopback endpoint) is dropped;
	// SameSite is kept (the window's cookie policy accepts the apps'
	// cookies, and WebKitGTK sends Lax ones into the window's frames).
	CookieClientWebKit
)

func (c CookieClient) String() string {
	switch c {
	case CookieClientPartitioned:
		return "partitioned"
	case CookieClientWebKit:
		return "webkit"
	default:
		return "as-is"
	}
}

// cookieClientOf tells the browser's cookie rules from its User-Agent.
// Chromium-based browsers all say "Chrome/" (Edge "Edg/" too, Opera "OPR/");
// WebKit says "AppleWebKit" without "Chrome/"; Firefox says "Gecko/…Firefox".
func cookieClientOf(ua string) CookieClient {
	switch {
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Chromium/") || strings.Contains(ua, "HeadlessChrome/"):
		return CookieClientPartitioned
	case strings.Contains(ua, "Firefox/"):
		return CookieClientAsIs
	case strings.Contains(ua, "AppleWebKit/"):
		return CookieClientWebKit
	default:
		return CookieClientAsIs
	}
}

// rewriteSetCookie fits one Set-Cookie value to the local endpoint and the
// browser (see CookieClient). It always drops a Domain attribute that names
// the server's localhost (the browser would reject the cookie on the local
// endpoint); without it the cookie belongs to the local origin. Cookies
// with the __Secure-/__Host- prefixes keep their Secure flag (the browser
// rejects them without it). The name=value part is never changed.
func rewriteSetCookie(v string, isLocal func(string) bool, client CookieClient) string {
	parts := strings.Split(v, ";")
	out := parts[:1:1]
	name, _, isCookie := strings.Cut(parts[0], "=")
	name = strings.TrimSpace(name)
	if !isCookie || name == "" {
		client = CookieClientAsIs // not a cookie the browser would keep: only the Domain fix
	}
	prefixed := strings.HasPrefix(name, "__Secure-") || strings.HasPrefix(name, "__Host-")
	changed := false
	for _, a := range parts[1:] {
		k, val, _ := strings.Cut(a, "=")
		switch key := strings.ToLower(strings.TrimSpace(k)); {
		case key == "domain":
			if d := strings.TrimPrefix(strings.TrimSpace(val), "."); d == "" || isLocal(d) {
				changed = true
				continue
			}
		case client == CookieClientPartitioned && (key == "samesite" || key == "secure" || key == "partitioned"):
			changed = true
			continue // set below
		case client == CookieClientWebKit && key == "secure" && !prefixed:
			changed = true
			continue
		}
		out = append(out, a)
	}
	if client == CookieClientPartitioned {
		out = append(out, " SameSite=None", " Secure", " Partitioned")
		changed = true
	}
	if !changed {
		return v
	}
	return strings.Join(out, ";")
}

// rewriteFrameHeaders makes the response frameable by exactly srcs ('self'
// and Porthole's origins): X-Frame-Options (which cannot name Porthole's
// origins) is replaced by CSP frame-ancestors, every frame-ancestors
// directive the app sent is set to srcs (narrowing a wider list; an app
// that allowed no framing at all still may not be framed by other sites),
// and a response without one gets it, so no other site can frame the local
// endpoint.
func rewriteFrameHeaders(h http.Header, srcs string) {
	h.Del("X-Frame-Options")
	found := false
	if vs := h.Values("Content-Security-Policy"); len(vs) > 0 {
		out := make([]string, len(vs))
		for i, v := range vs {
			var ok bool
			out[i], ok = setFrameAncestors(v, srcs)
			found = found || ok
		}
		h["Content-Security-Policy"] = out
	}
	if !found {
		h.Add("Content-Security-Policy", "frame-ancestors "+srcs)
	}
	if vs := h.Values("Content-Security-Policy-Report-Only"); len(vs) > 0 {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i], _ = setFrameAncestors(v, srcs)
		}
		h["Content-Security-Policy-Report-Only"] = out
	}
}

// setFrameAncestors sets the sources of the frame-ancestors directive of
// every policy in the serialized policy list v ("a; b, c; d") that has one
// to srcs; repeated frame-ancestors directives (which browsers ignore) are
// dropped. found reports whether any policy had one. Policies without one
// are kept as written.
func setFrameAncestors(v, srcs string) (out string, found bool) {
	policies := strings.Split(v, ",")
	for i, p := range policies {
		dirs := strings.Split(p, ";")
		has := false
		for _, d := range dirs {
			if strings.EqualFold(directiveName(d), "frame-ancestors") {
				has = true
				break
			}
		}
		if !has {
			continue
		}
		found = true
		kept := make([]string, 0, len(dirs))
		seen := false
		for _, d := range dirs {
			d = strings.Trim(d, cspSpace)
			if d == "" {
				continue
			}
			if strings.EqualFold(directiveName(d), "frame-ancestors") {
				if seen {
					continue
				}
				seen = true
				d = "frame-ancestors " + srcs
			}
			kept = append(kept, d)
		}
		lead := ""
		if i > 0 {
			lead = " "
		}
		policies[i] = lead + strings.Join(kept, "; ")
	}
	if !found {
		return v, false
	}
	return strings.Join(policies, ","), true
}

// cspSpace is CSP's ASCII whitespace.
const cspSpace = " \t\n\f\r"

// directiveName is the first token of a CSP directive.
func directiveName(d string) string {
	d = strings.TrimLeft(d, cspSpace)
	if i := strings.IndexAny(d, cspSpace); i >= 0 {
		return d[:i]
	}
	return d
}
