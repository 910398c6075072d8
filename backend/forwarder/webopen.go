package forwarder

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OpenPathPrefix is the path under which a web forward serves its one-time
// links (OpenLink): http://<endpoint>/.porthole/open/<code>. Requests under
// it never reach the app. The prefix is reserved: a dot directory named
// after Porthole, which no web app plausibly serves.
const OpenPathPrefix = "/.porthole/open/"

// OpenLinkTTL is how long a one-time link works if nobody uses it: long
// enough for a cold browser to start.
const OpenLinkTTL = 60 * time.Second

// maxOpenLinks bounds the links a forward remembers; beyond it the oldest
// is forgotten.
const maxOpenLinks = 64

// maxOpenTarget bounds a link's target (path, query and fragment).
const maxOpenTarget = 16 << 10

// ErrBadOpenTarget: OpenLink was given something other than a path on the
// forward's own origin (with an optional query and fragment).
var ErrBadOpenTarget = errors.New("a one-time link can only lead to a path on the app's own address")

// openLink is one registered one-time link.
type openLink struct {
	target  string // path?query#fragment on the forward's origin
	expires time.Time
}

// OpenLink registers target (a path on this forward's origin, with an
// optional query and fragment, e.g. "/lab?token=…") and returns a code:
// the first GET of OpenPathPrefix+code within OpenLinkTTL is redirected
// (303) to target, and the code is forgotten. The code (128 random bits)
// may travel where a secret must not (a command line): it names nothing
// after its one use or a minute, and the endpoint serves only its own user.
// target is never logged.
func (f *WebForward) OpenLink(target string) (string, error) {
	if err := checkOpenTarget(target); err != nil {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a one-time link: %w", err)
	}
	code := base64.RawURLEncoding.EncodeToString(b)
	now := f.opts.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return "", fmt.Errorf("make a one-time link: %w", ErrSessionClosed)
	}
	if f.links == nil {
		f.links = map[string]openLink{}
	}
	f.pruneLinksLocked(now)
	for len(f.links) >= maxOpenLinks {
		oldest := ""
		for c, l := range f.links {
			if oldest == "" || l.expires.Before(f.links[oldest].expires) {
				oldest = c
			}
		}
		delete(f.links, oldest)
	}
	f.links[code] = openLink{target: target, expires: now.Add(OpenLinkTTL)}
	return code, nil
}

func (f *WebForward) pruneLinksLocked(now time.Time) {
	for c, l := range f.links {
		if !now.Before(l.expires) {
			delete(f.links, c)
		}
	}
}

// checkOpenTarget accepts a path on the same origin: it starts with one
// "/" (not "//" nor "/\", which browsers read as another host), has no
// control characters, spaces or backslashes, and is not itself a link.
// Its errors never quote it: it may hold a token.
func checkOpenTarget(t string) error {
	switch {
	case t == "" || t[0] != '/':
		return fmt.Errorf("%w: it does not start with /", ErrBadOpenTarget)
	case len(t) > maxOpenTarget:
		return fmt.Errorf("%w: it is longer than %d bytes", ErrBadOpenTarget, maxOpenTarget)
	case strings.HasPrefix(t, "//"):
		return fmt.Errorf("%w: it starts with //, which names another host", ErrBadOpenTarget)
	case strings.HasPrefix(t, OpenPathPrefix):
		return fmt.Errorf("%w: it is a one-time link itself", ErrBadOpenTarget)
	}
	for _, r := range t {
		if r < 0x21 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: it contains a space, a control character or a backslash", ErrBadOpenTarget)
		}
	}
	u, err := url.Parse(t)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fmt.Errorf("%w: it is not a path", ErrBadOpenTarget)
	}
	return nil
}

// takeLink returns a code's target and forgets the code; ok is false for
// a code that is unknown, used or expired.
func (f *WebForward) takeLink(code string) (target string, ok bool) {
	now := f.opts.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	l, found := f.links[code]
	delete(f.links, code)
	f.pruneLinksLocked(now)
	if !found || !now.Before(l.expires) {
		return "", false
	}
	return l.target, true
}

// serveOpenLink answers a request under OpenPathPrefix: a GET of a live
// code is redirected to its target once; anything else gets a page saying
// the link was used (or expired) and to open the app from Porthole again.
func (f *WebForward) serveOpenLink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		// Only a GET uses the link (a HEAD or a preflight must not).
		w.Header().Set("Allow", http.MethodGet)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "a one-time link opens with GET only", http.StatusMethodNotAllowed)
		return
	}
	code := strings.TrimPrefix(r.URL.Path, OpenPathPrefix)
	target, ok := f.takeLink(code)
	if !ok {
		f.log.Info("a one-time link was used again, expired or is unknown")
		f.writeFailure(w, r, failLinkUsed, nil)
		return
	}
	h := w.Header()
	h.Set("Location", target)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusSeeOther)
	f.log.Debug("a one-time link led the browser to the app")
}
