// Package browseropen opens the system browser on a URL without putting
// what the URL may carry (a Jupyter ?token=…, a #fragment) on any process's
// command line, where every local user can read it (/proc/*/cmdline). A URL
// with a query, a fragment or user info is written into a private redirect
// page (mode 0600, in a new 0700 directory under $XDG_RUNTIME_DIR, else
// os.TempDir()) and the browser is started on that page's file:// path; a
// path is not a secret. The page is deleted after a minute, or when the
// Opener closes. Plain URLs (scheme, host and path only) go to the browser
// as they are. It is a leaf: it imports no package of Porthole.
package browseropen

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pkg/browser"
)

// DefaultTTL is how long a redirect page stays on disk: long enough for a
// cold browser to start and read it.
const DefaultTTL = 60 * time.Second

// ErrNotWeb: only http:// and https:// URLs open in the browser.
var ErrNotWeb = errors.New("only http:// and https:// addresses open in the browser")

// ErrClosed: the Opener was closed (Porthole is quitting).
var ErrClosed = errors.New("the browser opener is closed: Porthole is quitting")

// Options configure an Opener. The zero value is ready to use.
type Options struct {
	Log *slog.Logger // nil: discard
	// Launch starts the system browser on target, which is either a URL
	// without secrets or a file:// URL of a redirect page. It is the only
	// thing that reaches a command line. nil: browser.OpenURL (xdg-open,
	// open, rundll32).
	Launch func(target string) error
	// TTL is how long a redirect page is kept; 0 means DefaultTTL.
	TTL time.Duration
	// Dir is where the private directories are made; "" means
	// $XDG_RUNTIME_DIR when it exists, else os.TempDir().
	Dir string
}

// Opener opens URLs in the system browser; it owns the redirect pages it
// wrote until they expire or Close removes them.
type Opener struct {
	log    *slog.Logger
	launch func(string) error
	ttl    time.Duration
	base   string

	mu     sync.Mutex
	pages  map[string]*time.Timer // private dir -> its removal
	closed bool
}

// New returns an Opener.
func New(o Options) *Opener {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Launch == nil {
		o.Launch = browser.OpenURL
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	return &Opener{log: o.Log, launch: o.Launch, ttl: o.TTL, base: o.Dir, pages: map[string]*time.Timer{}}
}

// NeedsPage reports whether u carries more than scheme, host and path
// (a query, a fragment, user info), which must not reach a command line.
func NeedsPage(u *url.URL) bool {
	return u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" || u.User != nil || u.Opaque != ""
}

// Open opens raw (an http or https URL) in the system browser: directly
// when it is plain, else through a private redirect page.
func (o *Opener) Open(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ErrNotWeb
	}
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !NeedsPage(u) {
		return o.launch(u.String())
	}
	dir, page, err := o.writePage(u.String())
	if err != nil {
		return err
	}
	if err := o.launch((&url.URL{Scheme: "file", Path: page}).String()); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		_ = os.RemoveAll(dir)
		return nil
	}
	o.pages[dir] = time.AfterFunc(o.ttl, func() { o.remove(dir) })
	return nil
}

// remove deletes one page's directory (its time is up).
func (o *Opener) remove(dir string) {
	o.mu.Lock()
	_, ok := o.pages[dir]
	delete(o.pages, dir)
	o.mu.Unlock()
	if ok {
		if err := os.RemoveAll(dir); err != nil {
			o.log.Warn("could not delete a browser redirect page", "dir", dir, "err", err)
		}
	}
}

// Close deletes every redirect page still on disk; later Opens fail with
// ErrClosed. It may be called more than once.
func (o *Opener) Close() {
	o.mu.Lock()
	o.closed = true
	pages := o.pages
	o.pages = map[string]*time.Timer{}
	o.mu.Unlock()
	for dir, t := range pages {
		t.Stop()
		if err := os.RemoveAll(dir); err != nil {
			o.log.Warn("could not delete a browser redirect page", "dir", dir, "err", err)
		}
	}
}

// redirectPage sends the browser on at once, and tells no one where it came from.
var redirectPage = template.Must(template.New("redirect").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url={{.}}">
<title>Opening…</title>
<script>location.replace({{.}})</script>
</head><body><p>Opening the app… <a href="{{.}}" rel="noreferrer">continue</a>.</p></body></html>
`))

// writePage writes the redirect page for target in a new private directory.
func (o *Opener) writePage(target string) (dir, page string, err error) {
	base := o.base
	if base == "" {
		base = os.Getenv("XDG_RUNTIME_DIR")
		if st, err := os.Stat(base); base == "" || err != nil || !st.IsDir() {
			base = os.TempDir()
		}
	}
	dir, err = os.MkdirTemp(base, "porthole-open-")
	if err != nil {
		return "", "", fmt.Errorf("create a private directory for the browser page in %s: %w", base, err)
	}
	// MkdirTemp makes it 0700 (less under a strict umask): make sure, and
	// that it is the directory we made, not a symlink put in its place.
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("browser page directory %s: %w", dir, err)
	}
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("browser page directory %s is not private (%v)", dir, err)
	}
	page = filepath.Join(dir, "open.html")
	f, err := os.OpenFile(page, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("write the browser page: %w", err)
	}
	err = redirectPage.Execute(f, template.URL(target))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("write the browser page %s: %w", page, err)
	}
	return dir, page, nil
}
