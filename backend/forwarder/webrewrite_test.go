package forwarder

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

const fa = "'self' wails://wails"

var frameAncestorCases = []struct {
	name, in, want string
	found          bool
}{
	{"none", "frame-ancestors 'none'", "frame-ancestors " + fa, true},
	{"wide", "frame-ancestors *", "frame-ancestors " + fa, true},
	{"with others", "default-src 'self'; frame-ancestors https://a.example 'self'; img-src *", "default-src 'self'; frame-ancestors " + fa + "; img-src *", true},
	{"upper case", "FRAME-ANCESTORS https://a.example", "frame-ancestors " + fa, true},
	{"repeated", "frame-ancestors 'self'; frame-ancestors *", "frame-ancestors " + fa, true},
	{"empty value", "frame-ancestors", "frame-ancestors " + fa, true},
	{"tabs and trailing semicolon", "script-src 'self' ;\tframe-ancestors\t* ;", "script-src 'self'; frame-ancestors " + fa, true},
	{"second policy", "default-src 'self', frame-ancestors *", "default-src 'self', frame-ancestors " + fa, true},
	{"no directive", "default-src 'self'; script-src 'none'", "default-src 'self'; script-src 'none'", false},
	{"look-alike name", "frame-ancestorsx *; x-frame-ancestors *", "frame-ancestorsx *; x-frame-ancestors *", false},
	{"empty", "", "", false},
}

func TestWebSetFrameAncestors(t *testing.T) {
	for _, tc := range frameAncestorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, found := setFrameAncestors(tc.in, fa)
			if got != tc.want || found != tc.found {
				t.Fatalf("setFrameAncestors(%q) = %q, %v; want %q, %v", tc.in, got, found, tc.want, tc.found)
			}
		})
	}
}

func FuzzWebSetFrameAncestors(f *testing.F) {
	for _, tc := range frameAncestorCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, found := setFrameAncestors(in, fa)
		if !found {
			if out != in {
				t.Fatalf("no frame-ancestors in %q, but it was changed to %q", in, out)
			}
			return
		}
		// Every frame-ancestors directive left names exactly fa, and only
		// once per policy.
		for _, p := range strings.Split(out, ",") {
			n := 0
			for _, d := range strings.Split(p, ";") {
				if strings.EqualFold(directiveName(d), "frame-ancestors") {
					n++
					if strings.Trim(d, cspSpace) != "frame-ancestors "+fa {
						t.Fatalf("%q → %q: directive %q", in, out, d)
					}
				}
			}
			if n > 1 {
				t.Fatalf("%q → %q: %d frame-ancestors in one policy", in, out, n)
			}
		}
		if again, _ := setFrameAncestors(out, fa); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
	})
}

func TestWebRewriteFrameHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Frame-Options", "DENY")
	h.Add("Content-Security-Policy", "default-src 'self'")
	h.Add("Content-Security-Policy", "frame-ancestors *")
	h.Set("Content-Security-Policy-Report-Only", "frame-ancestors https://a.example; report-uri /r")
	rewriteFrameHeaders(h, fa)
	if got := h.Values("Content-Security-Policy"); strings.Join(got, "|") != "default-src 'self'|frame-ancestors "+fa {
		t.Fatalf("CSP %q", got)
	}
	if got := h.Get("Content-Security-Policy-Report-Only"); got != "frame-ancestors "+fa+"; report-uri /r" {
		t.Fatalf("CSP-Report-Only %q", got)
	}
	if h.Get("X-Frame-Options") != "" {
		t.Fatal("X-Frame-Options kept")
	}
}

var setCookieCases = []struct{ in, want string }{ // for CookieClientAsIs
	{"a=1; Path=/; Domain=localhost; HttpOnly", "a=1; Path=/; HttpOnly"},
	{"a=1; domain=.LOCALHOST", "a=1"},
	{"a=1;Domain=127.0.0.1;Secure", "a=1;Secure"},
	{"a=1; Domain=::1", "a=1"},
	{"a=1; Domain=gpu1", "a=1"}, // the target host itself
	{"a=1; Domain=0.0.0.0; SameSite=Lax", "a=1; SameSite=Lax"},
	{"a=1; Domain=", "a=1"},
	{"a=1; Domain=example.com", "a=1; Domain=example.com"},
	{"a=1; Path=/domain=localhost", "a=1; Path=/domain=localhost"},
	{"domain=localhost", "domain=localhost"}, // the cookie's name, not an attribute
	{"", ""},
}

func testIsUpstreamHost(h string) bool { return isServerLocalName(h) || strings.EqualFold(h, "gpu1") }

// TestWebRewriteCookieParentDomain: an app on another computer opened
// through the server (grafana.example.internal) may set its cookies for
// its parent domain; that Domain goes too, so the cookie sticks to the
// local origin. Other domains stay.
func TestWebRewriteCookieParentDomain(t *testing.T) {
	f := &WebForward{spec: WebSpec{TargetHost: "Grafana.Example.Internal", TargetPort: 3000}}
	for _, tc := range []struct{ in, want string }{
		{"s=1; Domain=grafana.example.internal; Path=/", "s=1; Path=/"},
		{"s=1; Domain=.example.internal", "s=1"},
		{"s=1; Domain=EXAMPLE.internal.", "s=1"},
		{"s=1; Domain=localhost", "s=1"},
		{"s=1; Domain=other.internal", "s=1; Domain=other.internal"},
		{"s=1; Domain=ample.internal", "s=1; Domain=ample.internal"},
	} {
		if got := rewriteSetCookie(tc.in, f.isUpstreamCookieDomain, CookieClientAsIs); got != tc.want {
			t.Errorf("rewriteSetCookie(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d, host string
		want    bool
	}{
		{"example.org", "a.example.org", true},
		{"example.org", "example.org", false}, // the host itself: isUpstreamHost's case
		{"0.1", "10.0.0.1", false},            // IP addresses have no parent domain
		{"", "a.b", false},
		{"b", "a.b.", true},
	} {
		if got := isParentDomain(tc.d, tc.host); got != tc.want {
			t.Errorf("isParentDomain(%q, %q) = %v", tc.d, tc.host, got)
		}
	}
}

func TestWebRewriteSetCookie(t *testing.T) {
	for _, tc := range setCookieCases {
		if got := rewriteSetCookie(tc.in, testIsUpstreamHost, CookieClientAsIs); got != tc.want {
			t.Errorf("rewriteSetCookie(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in     string
		client CookieClient
		want   string
	}{
		// Chromium: every cookie third-party-capable, partitioned.
		{"a=1; Path=/; HttpOnly; SameSite=Lax", CookieClientPartitioned, "a=1; Path=/; HttpOnly; SameSite=None; Secure; Partitioned"},
		{"_xsrf=2|ab|cd|1; expires=Mon, 21 Dec 2026 10:00:00 GMT; Path=/", CookieClientPartitioned, "_xsrf=2|ab|cd|1; expires=Mon, 21 Dec 2026 10:00:00 GMT; Path=/; SameSite=None; Secure; Partitioned"},
		{"a=1;samesite=strict;secure;Partitioned;Domain=localhost", CookieClientPartitioned, "a=1; SameSite=None; Secure; Partitioned"},
		{"a=1", CookieClientPartitioned, "a=1; SameSite=None; Secure; Partitioned"},
		{"a=1; Domain=example.com", CookieClientPartitioned, "a=1; Domain=example.com; SameSite=None; Secure; Partitioned"},
		// WebKit: no Secure over http, except where the name demands it.
		{"a=1; Path=/; Secure; SameSite=Lax", CookieClientWebKit, "a=1; Path=/; SameSite=Lax"},
		{"__Host-a=1; Path=/; Secure", CookieClientWebKit, "__Host-a=1; Path=/; Secure"},
		{"a=1; HttpOnly", CookieClientWebKit, "a=1; HttpOnly"},
		{"a=1; Domain=localhost; secure", CookieClientWebKit, "a=1"},
		// Not a cookie: untouched for every client.
		{"", CookieClientPartitioned, ""},
		{"garbage", CookieClientPartitioned, "garbage"},
	} {
		if got := rewriteSetCookie(tc.in, testIsUpstreamHost, tc.client); got != tc.want {
			t.Errorf("rewriteSetCookie(%q, %v) = %q, want %q", tc.in, tc.client, got, tc.want)
		}
	}
}

func TestWebCookieClientOf(t *testing.T) {
	for _, tc := range []struct {
		ua   string
		want CookieClient
	}{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36", CookieClientPartitioned},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", CookieClientPartitioned},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", CookieClientPartitioned},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", CookieClientWebKit},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)", CookieClientWebKit},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", CookieClientAsIs},
		{"curl/8.0", CookieClientAsIs},
		{"", CookieClientAsIs},
	} {
		if got := cookieClientOf(tc.ua); got != tc.want {
			t.Errorf("cookieClientOf(%q) = %v, want %v", tc.ua, got, tc.want)
		}
	}
}

// Never weaken a cookie's SameSite for a browser that doesn't need it: only
// Chromium's cookies are made SameSite=None (and partitioned).
func TestWebSameSiteKeptButForChromium(t *testing.T) {
	for _, tc := range []struct {
		name, ua string
		weaken   bool
	}{
		{"chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36", true},
		{"firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", false},
		{"safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", false},
		{"webkitgtk", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko)", false},
		{"curl", "curl/8.0", false},
		{"none", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, in := range []string{"a=1; Path=/; SameSite=Strict", "a=1; SameSite=Lax; HttpOnly", "a=1"} {
				out := rewriteSetCookie(in, testIsUpstreamHost, cookieClientOf(tc.ua))
				if got, want := sameSiteOf(out), sameSiteOf(in); tc.weaken != (got != want) {
					t.Errorf("%q → %q: SameSite %q, had %q (weakening wanted: %v)", in, out, got, want, tc.weaken)
				}
			}
		})
	}
}

// sameSiteOf is the SameSite attributes of a Set-Cookie value, as written.
func sameSiteOf(v string) string {
	var out []string
	for _, a := range strings.Split(v, ";")[1:] {
		if k, val, _ := strings.Cut(a, "="); strings.EqualFold(strings.TrimSpace(k), "samesite") {
			out = append(out, strings.TrimSpace(val))
		}
	}
	return strings.Join(out, ",")
}

func FuzzWebRewriteSetCookie(f *testing.F) {
	for _, tc := range setCookieCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := rewriteSetCookie(in, testIsUpstreamHost, CookieClientAsIs)
		name, _, _ := strings.Cut(in, ";")
		for _, c := range []CookieClient{CookieClientPartitioned, CookieClientWebKit} {
			o := rewriteSetCookie(in, testIsUpstreamHost, c)
			if !strings.HasPrefix(o, name) {
				t.Fatalf("%q → %q (%v): the name=value part changed", in, o, c)
			}
			cookieName, _, isCookie := strings.Cut(name, "=")
			if c == CookieClientPartitioned && isCookie && strings.TrimSpace(cookieName) != "" && !strings.HasSuffix(o, "; SameSite=None; Secure; Partitioned") {
				t.Fatalf("%q → %q: not partitioned", in, o)
			}
			if c != CookieClientPartitioned && sameSiteOf(o) != sameSiteOf(in) {
				t.Fatalf("%q → %q (%v): SameSite changed for a browser that does not need it", in, o, c)
			}
		}
		if !strings.HasPrefix(out, name) {
			t.Fatalf("%q → %q: the name=value part changed", in, out)
		}
		if sameSiteOf(out) != sameSiteOf(in) {
			t.Fatalf("%q → %q: SameSite changed as-is", in, out)
		}
		for _, a := range strings.Split(out, ";")[1:] {
			k, v, _ := strings.Cut(a, "=")
			if strings.EqualFold(strings.TrimSpace(k), "domain") && testIsUpstreamHost(strings.TrimPrefix(strings.TrimSpace(v), ".")) {
				t.Fatalf("%q → %q: a Domain for the server's localhost is left", in, out)
			}
		}
		if len(out) > len(in) {
			t.Fatalf("%q → %q grew", in, out)
		}
		// Attributes: HttpOnly is never lost; Secure is kept except for
		// WebKit (which drops it on plain http, but not for __Secure-/__Host-
		// names, which need it); partitioned cookies are Secure once. And
		// rewriting twice changes nothing more.
		cookieName, _, isCookie := strings.Cut(name, "=")
		cookieName = strings.TrimSpace(cookieName)
		isCookie = isCookie && cookieName != ""
		prefixed := strings.HasPrefix(cookieName, "__Secure-") || strings.HasPrefix(cookieName, "__Host-")
		for _, c := range []CookieClient{CookieClientAsIs, CookieClientPartitioned, CookieClientWebKit} {
			o := rewriteSetCookie(in, testIsUpstreamHost, c)
			if got, want := cookieAttrCount(o, "httponly"), cookieAttrCount(in, "httponly"); got != want {
				t.Fatalf("%q → %q (%v): %d HttpOnly, want %d", in, o, c, got, want)
			}
			wantSecure := cookieAttrCount(in, "secure")
			switch {
			case !isCookie:
			case c == CookieClientPartitioned:
				wantSecure = 1
			case c == CookieClientWebKit && !prefixed:
				wantSecure = 0
			}
			if got := cookieAttrCount(o, "secure"); got != wantSecure {
				t.Fatalf("%q → %q (%v): %d Secure, want %d", in, o, c, got, wantSecure)
			}
			if again := rewriteSetCookie(o, testIsUpstreamHost, c); again != o {
				t.Fatalf("not idempotent (%v): %q → %q → %q", c, in, o, again)
			}
		}
	})
}

// cookieAttrCount counts the attributes named key (lower case) of a Set-Cookie value.
func cookieAttrCount(v, key string) int {
	n := 0
	for _, a := range strings.Split(v, ";")[1:] {
		k, _, _ := strings.Cut(a, "=")
		if strings.ToLower(strings.TrimSpace(k)) == key {
			n++
		}
	}
	return n
}

func testWebForward(targetHost string, targetPort, bindPort int) *WebForward {
	return &WebForward{spec: WebSpec{TargetHost: targetHost, TargetPort: targetPort, BindPort: bindPort}}
}

var serverURLCases = []struct {
	in, want string
	ok       bool
}{
	{"http://localhost:8888/lab?token=abc", "http://127.0.0.2:9000/lab?token=abc", true},
	{"http://127.0.0.1:8888", "http://127.0.0.2:9000", true},
	{"http://127.9.9.9:8888/x", "http://127.0.0.2:9000/x", true},
	{"http://[::1]:8888/x", "http://127.0.0.2:9000/x", true},
	{"http://0.0.0.0:8888/#frag", "http://127.0.0.2:9000/#frag", true},
	{"http://[::]:8888?q", "http://127.0.0.2:9000?q", true},
	{"http://gpu1:8888/tree", "http://127.0.0.2:9000/tree", true},
	{"hTTp://LocalHost:8888/A%2Fb", "http://127.0.0.2:9000/A%2Fb", true},
	{"//localhost:8888/x", "//127.0.0.2:9000/x", true},
	{"http://jupyter.localhost:8888/", "http://127.0.0.2:9000/", true},
	{"http://localhost/x", "http://localhost/x", false},           // port 80
	{"http://localhost:8889/x", "http://localhost:8889/x", false}, // another port
	{"https://localhost:8888/", "https://localhost:8888/", false}, // the app speaks HTTP; leave it
	{"http://example.com:8888/", "http://example.com:8888/", false},
	{"http://user@localhost:8888/", "http://user@localhost:8888/", false},
	{"http://localhost:8888\\@evil.example/", "http://127.0.0.2:9000\\@evil.example/", true}, // browsers read \ as /
	{"/lab", "/lab", false},
	{"lab?x=http://localhost:8888", "lab?x=http://localhost:8888", false},
	{"", "", false},
}

func TestWebRewriteServerURL(t *testing.T) {
	f := testWebForward("gpu1", 8888, 9000)
	for _, tc := range serverURLCases {
		got, ok := f.rewriteServerURL(tc.in, "127.0.0.2:9000")
		if got != tc.want || ok != tc.ok {
			t.Errorf("rewriteServerURL(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"0; url=http://localhost:8888/next", "0; url=http://127.0.0.2:9000/next"},
		{"5;URL='http://127.0.0.1:8888/a'", "5;URL='http://127.0.0.2:9000/a'"},
		{"5; url=/relative", "5; url=/relative"},
		{"5", "5"},
	} {
		if got, _ := f.rewriteRefresh(tc.in, "127.0.0.2:9000"); got != tc.want {
			t.Errorf("rewriteRefresh(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzWebRewriteServerURL(f *testing.F) {
	for _, tc := range serverURLCases {
		f.Add(tc.in)
	}
	fw := testWebForward("gpu1", 8888, 9000)
	const local = "127.0.0.2:9000"
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := fw.rewriteServerURL(in, local)
		if !ok {
			if out != in {
				t.Fatalf("%q changed to %q without a match", in, out)
			}
			return
		}
		_, _, rest, _ := splitURLAuthority(in)
		if out != "http://"+local+rest && out != "//"+local+rest {
			t.Fatalf("%q → %q: want only the authority replaced (rest %q)", in, out, rest)
		}
		if strings.Contains(in[:len(in)-len(rest)], "@") {
			t.Fatalf("%q → %q: a URL whose host a browser reads differently was rewritten", in, out)
		}
	})
}

var hostCases = []struct {
	host string
	ok   bool
}{
	{"127.0.0.2:9000", true},
	{"127.0.0.1:9000", true},
	{"localhost:9000", true},
	{"LOCALHOST:9000", true},
	{"jupyter.localhost:9000", true},
	{"[::1]:9000", true},
	{"10.1.2.3:9000", true}, // an IP literal cannot be rebound
	{"127.0.0.2:9001", false},
	{"127.0.0.2", false},
	{"localhost", false},
	{"evil.example:9000", false},
	{"localhost.evil.example:9000", false},
	{"127.0.0.1.nip.io:9000", false},
	{"::1:9000", false},
	{"[::1]", false},
	{"", false},
	{":9000", false},
	{"a b:9000", false},
	{"localhost:9000:9000", false},
	{"localhost:+9000", false},
}

func TestWebHostAllowed(t *testing.T) {
	f := testWebForward("localhost", 8888, 9000)
	for _, tc := range hostCases {
		if got := f.hostAllowed(tc.host); got != tc.ok {
			t.Errorf("hostAllowed(%q) = %v, want %v", tc.host, got, tc.ok)
		}
	}
	f80 := testWebForward("localhost", 8888, 80)
	if !f80.hostAllowed("127.0.0.2") || !f80.hostAllowed("[::1]") || f80.hostAllowed("127.0.0.2:81") {
		t.Error("a forward on port 80 must accept hosts without a port")
	}
}

func FuzzWebHostAllowed(f *testing.F) {
	for _, tc := range hostCases {
		f.Add(tc.host)
	}
	fw := testWebForward("localhost", 8888, 9000)
	f.Fuzz(func(t *testing.T, host string) {
		if !fw.hostAllowed(host) {
			return
		}
		if !strings.HasSuffix(host, ":9000") {
			t.Fatalf("%q allowed without the forward's port", host)
		}
		h := strings.ToLower(strings.TrimSuffix(host, ":9000"))
		isIP := false
		if _, _, ok := splitAuthority(host); ok {
			hh, _, _ := splitAuthority(host)
			_, err := netip.ParseAddr(hh)
			isIP = err == nil
		}
		if !isIP && h != "localhost" && !strings.HasSuffix(h, ".localhost") {
			t.Fatalf("%q allowed: neither an IP literal nor localhost", host)
		}
	})
}

var ancestorCases = []struct {
	in, want string
	ok       bool
}{
	{"wails://wails", "wails://wails", true},
	{"http://wails.localhost", "http://wails.localhost", true},
	{"HTTP://127.0.0.1:34115/", "http://127.0.0.1:34115", true},
	{"http://[::1]:8080", "http://[::1]:8080", true},
	{"http://a.example/path", "", false},
	{"http://a.example?q", "", false},
	{"http://a.example#f", "", false},
	{"http://u@a.example", "", false},
	{"'self'", "", false},
	{"*", "", false},
	{"https://*.example.com", "", false},
	{"http://a.example; script-src *", "", false},
	{"http://a.example, frame-ancestors *", "", false},
	{"a.example", "", false},
	{"http:", "", false},
	{"http://a.example:99999", "", false},
	{"1http://a.example", "", false},
	{"", "", false},
}

func TestWebNormalizeFrameAncestor(t *testing.T) {
	for _, tc := range ancestorCases {
		got, err := normalizeFrameAncestor(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("normalizeFrameAncestor(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzWebNormalizeFrameAncestor(f *testing.F) {
	for _, tc := range ancestorCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := normalizeFrameAncestor(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || strings.ContainsAny(got, " \t\r\n;,'\"*\\") || !strings.Contains(got, "://") {
			t.Fatalf("%q → %q is not a safe CSP source", in, got)
		}
		// The result is a plain source that survives setFrameAncestors.
		out, _ := setFrameAncestors("frame-ancestors x", "'self' "+got)
		if out != "frame-ancestors 'self' "+got {
			t.Fatalf("%q → %q breaks the directive: %q", in, got, out)
		}
	})
}

func TestWebRewriteRequestHeaders(t *testing.T) {
	tests := []struct {
		name            string
		origin, referer string
		wantO, wantR    string
	}{
		{"local", "http://127.0.0.2:9000", "http://127.0.0.2:9000/a?b#c", "http://localhost:8888", "http://localhost:8888/a?b#c"},
		{"local upper case", "HTTP://127.0.0.2:9000", "", "http://localhost:8888", ""},
		{"other port", "http://127.0.0.2:9001", "http://127.0.0.2:9001/", "http://127.0.0.2:9001", "http://127.0.0.2:9001/"},
		{"other site", "https://evil.example", "https://evil.example/", "https://evil.example", "https://evil.example/"},
		{"https same host", "https://127.0.0.2:9000", "", "https://127.0.0.2:9000", ""},
		{"null", "null", "", "null", ""},
		{"Porthole window", "wails://wails", "", "wails://wails", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			if tc.referer != "" {
				h.Set("Referer", tc.referer)
			}
			rewriteRequestHeaders(h, "127.0.0.2:9000", "localhost:8888")
			if h.Get("Origin") != tc.wantO || h.Get("Referer") != tc.wantR {
				t.Fatalf("Origin %q Referer %q; want %q %q", h.Get("Origin"), h.Get("Referer"), tc.wantO, tc.wantR)
			}
		})
	}
}

func TestWebUpstreamAuthority(t *testing.T) {
	for _, tc := range []struct {
		host string
		want string
	}{
		{"localhost", "localhost:8888"},
		{"127.0.0.1", "localhost:8888"},
		{"::1", "localhost:8888"},
		{"0.0.0.0", "localhost:8888"},
		{"db.internal", "db.internal:8888"},
		{"10.0.0.5", "10.0.0.5:8888"},
		{"fd00::5", "[fd00::5]:8888"},
	} {
		if got := upstreamAuthority(tc.host, 8888); got != tc.want {
			t.Errorf("upstreamAuthority(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestWebRequestKinds(t *testing.T) {
	tests := []struct {
		name    string
		hdr     map[string]string
		nav, js bool
	}{
		{"navigation", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html,*/*"}, true, false},
		{"iframe navigation", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, true, false},
		{"fetch JSON", map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "application/json"}, false, true},
		{"fetch anything", map[string]string{"Sec-Fetch-Mode": "same-origin", "Sec-Fetch-Dest": "empty", "Accept": "*/*"}, false, true},
		{"XHR", map[string]string{"X-Requested-With": "XMLHttpRequest"}, false, true},
		{"htmx fragment", map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "text/html"}, false, false},
		{"script", map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script", "Accept": "*/*"}, false, false},
		{"old browser page", map[string]string{"Accept": "text/html"}, true, false},
		{"curl", map[string]string{"Accept": "*/*"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://127.0.0.2:9000/", nil)
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			if nav, js := isNavigation(r), wantsJSON(r); nav != tc.nav || js != tc.js {
				t.Fatalf("navigation %v, JSON %v; want %v, %v", nav, js, tc.nav, tc.js)
			}
		})
	}
}

func TestWebFailureString(t *testing.T) {
	seen := map[string]bool{}
	for k := failUnreachable; k <= failBadHost; k++ {
		s := k.String()
		if s == "" || seen[s] || strings.HasPrefix(s, "webFailure(") {
			t.Fatalf("%d: %q", int(k), s)
		}
		seen[s] = true
		if k.status() < 400 {
			t.Fatalf("%s: status %d", s, k.status())
		}
	}
	if s := webFailure(99).String(); s != "webFailure(99)" {
		t.Fatalf("unknown kind: %q", s)
	}
}
