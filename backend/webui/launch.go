package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LaunchTTL is how long a launch file works.
const LaunchTTL = time.Minute

// launchFileName is the name of the launch page inside its private directory.
const launchFileName = "open-porthole.html"

// maxLaunchBody bounds a POST /launch body (one short form field).
const maxLaunchBody = 4 << 10

// launchCodes are single-use codes for opening the UI in a browser without
// putting a secret on a command line: `--open` runs xdg-open/open, and argv
// is visible to every local user in /proc/*/cmdline (and stays in the
// browser's argv). So the code lives in a file only this user can read (a
// 0600 page in a fresh 0700 directory), the browser is opened on the file's
// path (no secret), and the page POSTs the code to /launch, which answers
// with a redirect to the UI carrying the token in the fragment. A code is
// worthless once used or after LaunchTTL, and its file is deleted then (and
// when Serve returns).
type launchCodes struct {
	mu    sync.Mutex
	codes map[string]*launchEntry
	ttl   time.Duration // LaunchTTL unless a test shortens it
}

type launchEntry struct {
	expiry time.Time
	dir    string // the private directory holding the launch page
	timer  *time.Timer
}

// LaunchFile writes a single-use launch page for the UI served at addr (the
// address the listener bound) and returns its path: open it in a browser
// (file://PATH); the page posts its code to http://ADDR/launch, which
// redirects to the UI with the token. The page is mode 0600 in a new 0700
// directory under $XDG_RUNTIME_DIR (else under os.TempDir()); Porthole
// deletes it once it is used, after LaunchTTL, or when Serve returns. Neither
// the code nor the token ever appears in a URL or on a command line.
func (s *Server) LaunchFile(addr string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webui: launch code: %w", err)
	}
	code := base64.RawURLEncoding.EncodeToString(b)
	dir, err := makePrivateDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, launchFileName)
	if err := writeLaunchPage(path, addr, code); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}

	s.launch.mu.Lock()
	defer s.launch.mu.Unlock()
	if s.launch.codes == nil {
		s.launch.codes = map[string]*launchEntry{}
	}
	ttl := s.launch.ttl
	if ttl <= 0 {
		ttl = LaunchTTL
	}
	e := &launchEntry{expiry: time.Now().Add(ttl), dir: dir}
	e.timer = time.AfterFunc(ttl, func() { s.expireLaunchCode(code, e) })
	s.launch.codes[code] = e
	return path, nil
}

// makePrivateDir creates a fresh directory only this user can enter.
func makePrivateDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if st, err := os.Stat(base); base == "" || err != nil || !st.IsDir() {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "porthole-launch-")
	if err != nil {
		return "", fmt.Errorf("webui: create a private directory for the launch page in %s: %w", base, err)
	}
	// MkdirTemp makes it 0700 (less under a strict umask); make sure, and
	// that it is what we created (not a symlink someone put in its place).
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("webui: launch directory %s: %w", dir, err)
	}
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("webui: launch directory %s is not a private directory (%v)", dir, err)
	}
	return dir, nil
}

func writeLaunchPage(path, addr, code string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("webui: write the launch page: %w", err)
	}
	err = launchPage.Execute(f, struct{ Action, Code string }{"http://" + addr + "/launch", code})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("webui: write the launch page %s: %w", path, err)
	}
	return nil
}

// launchPage posts its code once, by itself; without scripts, by a click.
var launchPage = template.Must(template.New("launch").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Opening Porthole…</title></head>
<body style="font:14px system-ui,sans-serif;margin:3em">
<form id="launch" method="post" action="{{.Action}}">
<input type="hidden" name="code" value="{{.Code}}">
<p>Opening Porthole… <noscript><button type="submit">Open Porthole</button></noscript></p>
</form>
<script>
(function () {
  document.getElementById("launch").submit();
})();
</script>
</body></html>
`))

// useLaunchCode consumes code and deletes its launch page; it reports
// whether the code was valid.
func (s *Server) useLaunchCode(code string) bool {
	s.launch.mu.Lock()
	var found *launchEntry
	for c, e := range s.launch.codes {
		if subtle.ConstantTimeCompare([]byte(c), []byte(code)) == 1 {
			delete(s.launch.codes, c)
			found = e
		}
	}
	s.launch.mu.Unlock()
	if found == nil {
		return false
	}
	found.timer.Stop()
	s.removeLaunchDir(found.dir)
	return time.Now().Before(found.expiry)
}

// expireLaunchCode forgets an unused code after its TTL and deletes its page.
func (s *Server) expireLaunchCode(code string, e *launchEntry) {
	s.launch.mu.Lock()
	if s.launch.codes[code] == e {
		delete(s.launch.codes, code)
	}
	s.launch.mu.Unlock()
	s.removeLaunchDir(e.dir)
}

// clearLaunchCodes forgets every code and deletes their pages (Serve's end).
func (s *Server) clearLaunchCodes() {
	s.launch.mu.Lock()
	codes := s.launch.codes
	s.launch.codes = nil
	s.launch.mu.Unlock()
	for _, e := range codes {
		e.timer.Stop()
		s.removeLaunchDir(e.dir)
	}
}

func (s *Server) removeLaunchDir(dir string) {
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("could not delete a launch page; delete it yourself", "dir", dir, "err", err)
	}
}

// serveLaunch redeems a launch code, POSTed as the form field "code" by the
// launch page (a file: page, so its Origin is "null": the code itself is
// the credential). GET never redeems, so no link can.
func (s *Server) serveLaunch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path != "/launch" || r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "launch codes are redeemed only by POST /launch from the launch page porthole serve --open writes; open the URL printed by porthole serve")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLaunchBody)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the launch form: "+err.Error())
		return
	}
	if code := r.PostForm.Get("code"); code == "" || !s.useLaunchCode(code) {
		writeError(w, http.StatusForbidden, "this launch page was used already or has expired: open the URL printed by porthole serve")
		return
	}
	http.Redirect(w, r, "/#token="+s.token, http.StatusSeeOther)
}

// isLaunchPath reports whether path is /launch or below it.
func isLaunchPath(path string) bool {
	return path == "/launch" || strings.HasPrefix(path, "/launch/")
}
