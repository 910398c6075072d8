// Package browseropen starts the system browser on a web address. It only
// launches: it accepts an absolute http:// or https:// URL without user
// info and hands it to the platform's opener (xdg-open, open, rundll32),
// whose command line every local user can read (/proc/*/cmdline). So it is
// given no secret of Porthole's: an app URL with the token Porthole added
// (a Jupyter ?token=…) reaches the browser as its web forward's one-time
// link (apps.Manager.OpenExternal, forwarder.OpenPathPrefix); other URLs
// are sites the user or the page they left asked for, passed on as they
// are. Nothing is written to disk. It is a leaf: it imports no package of
// Porthole.
package browseropen

import (
	"errors"
	"net/url"

	"github.com/pkg/browser"
)

// ErrNotWeb: only http:// and https:// URLs (with a host, without user
// info) open in the browser.
var ErrNotWeb = errors.New("only http:// and https:// addresses (without a user name or password) open in the browser")

// Check parses raw and accepts only an absolute http or https URL with a
// host and without user info or an opaque part.
func Check(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, ErrNotWeb
	}
	return u, nil
}

// Open starts the system browser on raw, which Check must accept.
func Open(raw string) error {
	u, err := Check(raw)
	if err != nil {
		return err
	}
	return browser.OpenURL(u.String())
}
