package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// LaunchTTL is how long a launch URL works.
const LaunchTTL = time.Minute

// launchCodes are single-use codes for opening the UI in a browser without
// putting the token on a command line: `--open` runs xdg-open/open with the
// URL, and a URL in argv is visible to every local user in /proc/*/cmdline
// (and stays in the browser's argv). The code is worthless once used or after
// LaunchTTL; the token travels only in the redirect's Location header.
type launchCodes struct {
	mu    sync.Mutex
	codes map[string]time.Time // code → expiry
}

// LaunchURL returns a single-use URL, "http://ADDR/launch/CODE", that redirects
// to the UI with the token. Use it to open a browser; print URL(addr) for people.
func (s *Server) LaunchURL(addr string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	code := base64.RawURLEncoding.EncodeToString(b)
	s.launch.mu.Lock()
	defer s.launch.mu.Unlock()
	if s.launch.codes == nil {
		s.launch.codes = map[string]time.Time{}
	}
	now := time.Now()
	for c, exp := range s.launch.codes {
		if now.After(exp) {
			delete(s.launch.codes, c)
		}
	}
	s.launch.codes[code] = now.Add(LaunchTTL)
	return "http://" + addr + "/launch/" + code, nil
}

// useLaunchCode consumes code; it reports whether it was valid.
func (s *Server) useLaunchCode(code string) bool {
	s.launch.mu.Lock()
	defer s.launch.mu.Unlock()
	for c, exp := range s.launch.codes {
		if subtle.ConstantTimeCompare([]byte(c), []byte(code)) == 1 {
			delete(s.launch.codes, c)
			return time.Now().Before(exp)
		}
	}
	return false
}

func (s *Server) serveLaunch(w http.ResponseWriter, r *http.Request) {
	code := strings.TrimPrefix(r.URL.Path, "/launch/")
	if r.Method != http.MethodGet || !s.useLaunchCode(code) {
		writeError(w, http.StatusForbidden, "this launch link was used already or has expired: open the URL printed by porthole serve")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/#token="+s.token, http.StatusSeeOther)
}
