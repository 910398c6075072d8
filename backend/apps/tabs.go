package apps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/atomicfile"
)

// SavedTab is an app tab as it is restored at the next start: the UI calls
// OpenApp(serverId, port, path) again, which binds the same endpoint (or,
// with RemoteHost, OpenThrough(serverId, http://remoteHost:port/path)).
type SavedTab struct {
	ID       string `json:"id"`
	ServerID string `json:"serverId"`
	Port     int    `json:"port"`
	Path     string `json:"path"`
	Title    string `json:"title"`
	LocalURL string `json:"localUrl"`
	// RemoteURL is the URL on the server, as the URL bar shows it.
	RemoteURL string `json:"remoteUrl"`
	// RemoteHost is the host the server dials for an app opened through it
	// (OpenThrough); empty (and absent in older files) is the server's own
	// localhost.
	RemoteHost string `json:"remoteHost,omitempty"`
}

// Limits of tabs.json.
const (
	maxSavedTabs  = 200
	maxTabField   = 8 << 10 // bytes per string field
	TabsFileLimit = 4 << 20
)

// TabsFile keeps the open tabs in tabs.json (atomic writes, mode 0600).
//
// A file that does not parse is reported (logged, with its line and
// column) and kept: it is copied to tabs.json.broken-<UTC time> before the
// next SaveTabs writes a new tabs.json, so nothing the user had is lost,
// while the tabs opened since are still saved.
type TabsFile struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	mu     sync.Mutex
	tabs   []SavedTab
	broken error  // the file on disk could not be read
	raw    []byte // its contents, kept until they are backed up
	onSave func([]SavedTab)
}

// OnSave sets what runs after each successful Save, with the tabs saved
// (the tray lists the open apps). Nil TabsFile: nothing.
func (f *TabsFile) OnSave(fn func([]SavedTab)) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.onSave = fn
	f.mu.Unlock()
}

// errTabsBroken: tabs.json exists but cannot be read.
var errTabsBroken = errors.New("the saved tabs cannot be read")

// OpenTabs reads path (a missing file: no tabs).
func OpenTabs(path string, log *slog.Logger) *TabsFile {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &TabsFile{path: path, log: log, now: time.Now, tabs: []SavedTab{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f
	case err != nil:
		f.broken = fmt.Errorf("%w: %s: %w", errTabsBroken, path, err)
	case len(b) > TabsFileLimit:
		f.broken = fmt.Errorf("%w: %s is larger than %d bytes", errTabsBroken, path, TabsFileLimit)
		f.raw = b
	default:
		var tabs []SavedTab
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tabs); err != nil {
			f.broken = fmt.Errorf("%w: %s: %s", errTabsBroken, path, atomicfile.DescribeJSONError(b, err))
			f.raw = b
		} else if err := validateTabs(tabs); err != nil {
			f.broken = fmt.Errorf("%w: %s: %w", errTabsBroken, path, err)
			f.raw = b
		} else {
			f.tabs = tabs
		}
	}
	if f.broken != nil {
		log.Error("the saved tabs cannot be restored; the file is kept and backed up at the next save", "err", f.broken)
	}
	return f
}

// Get returns the saved tabs (none when the file is broken; none for a nil
// TabsFile, which keeps nothing).
func (f *TabsFile) Get() []SavedTab {
	if f == nil {
		return []SavedTab{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SavedTab{}, f.tabs...)
}

// Save replaces the saved tabs (a nil TabsFile only checks them).
func (f *TabsFile) Save(tabs []SavedTab) error {
	if err := f.save(tabs); err != nil || f == nil {
		return err
	}
	f.mu.Lock()
	fn, saved := f.onSave, append([]SavedTab{}, f.tabs...)
	f.mu.Unlock()
	if fn != nil {
		fn(saved)
	}
	return nil
}

func (f *TabsFile) save(tabs []SavedTab) error {
	if err := validateTabs(tabs); err != nil {
		return apperr.BadInput("SaveTabs: %w", err)
	}
	if f == nil {
		return nil
	}
	clean := make([]SavedTab, len(tabs))
	for i, t := range tabs {
		clean[i] = t
		clean[i].Path = stripToken(t.Path)
		clean[i].LocalURL = stripToken(t.LocalURL)
		clean[i].RemoteURL = stripToken(t.RemoteURL)
	}
	b, err := json.MarshalIndent(clean, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the tabs: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil && f.raw == nil {
		// It could not even be read: it cannot be backed up either.
		return apperr.Mark(fmt.Errorf("%w; fix its permissions or remove it, then restart Porthole", f.broken), apperr.ErrConflict)
	}
	if f.broken != nil {
		backup, err := atomicfile.WriteBackup(f.path+".broken-"+f.now().UTC().Format("20060102T150405Z"), f.raw)
		if err != nil {
			return fmt.Errorf("keep a copy of the unreadable %s before replacing it: %w", f.path, err)
		}
		f.log.Warn("the unreadable saved tabs were kept; a new tabs file is written", "backup", backup, "was", f.broken)
		f.raw = nil
	}
	if err := atomicfile.WriteFile(f.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the tabs: %w", err)
	}
	f.tabs, f.broken = clean, nil
	return nil
}

func validateTabs(tabs []SavedTab) error {
	if len(tabs) > maxSavedTabs {
		return fmt.Errorf("%d tabs is more than the %d Porthole keeps", len(tabs), maxSavedTabs)
	}
	seen := map[string]bool{}
	for i, t := range tabs {
		switch {
		case t.ID == "":
			return fmt.Errorf("tab %d: id is empty", i)
		case seen[t.ID]:
			return fmt.Errorf("tab %d: id %q is used twice", i, t.ID)
		case t.ServerID == "":
			return fmt.Errorf("tab %d: serverId is empty", i)
		case t.Port < 1 || t.Port > 65535:
			return fmt.Errorf("tab %d: port %d is not a TCP port (1–65535)", i, t.Port)
		}
		if t.RemoteHost != "" {
			if _, err := throughHost(t.RemoteHost); err != nil {
				return fmt.Errorf("tab %d: remoteHost %q is not a host name or IP address", i, t.RemoteHost)
			}
		}
		seen[t.ID] = true
		for _, s := range []struct{ name, v string }{{"id", t.ID}, {"serverId", t.ServerID}, {"path", t.Path}, {"title", t.Title}, {"localUrl", t.LocalURL}, {"remoteUrl", t.RemoteURL}} {
			if len(s.v) > maxTabField || !utf8.ValidString(s.v) {
				return fmt.Errorf("tab %d: %s is longer than %d bytes or not UTF-8", i, s.name, maxTabField)
			}
		}
	}
	return nil
}

// stripToken removes a "token" query parameter (Jupyter's login token): a
// restored tab gets it again from OpenApp, and it is never written to disk.
func stripToken(s string) string {
	frag := ""
	if j := strings.IndexByte(s, '#'); j >= 0 {
		s, frag = s[:j], s[j:] // a '?' in the fragment starts no query
	}
	i := strings.IndexByte(s, '?')
	if i < 0 {
		return s + frag
	}
	head, query := s[:i], s[i+1:]
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == "token" {
			continue
		}
		if kv != "" {
			kept = append(kept, kv)
		}
	}
	if len(kept) == 0 {
		return head + frag
	}
	return head + "?" + strings.Join(kept, "&") + frag
}

// tabsPath is atomicfile.ConfigDir()/tabs.json.
func tabsPath() (string, error) {
	d, err := atomicfile.ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "tabs.json"), nil
}

// OpenTabsLogged opens tabs.json in the config dir; without a config dir
// the tabs live in memory for this run.
func OpenTabsLogged(log *slog.Logger) *TabsFile {
	p, err := tabsPath()
	if err != nil {
		log.Warn("tabs will not be restored at the next start", "err", err)
		return nil
	}
	return OpenTabs(p, log)
}
