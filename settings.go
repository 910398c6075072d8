package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Theme is the colour theme preference.
type Theme int

const (
	ThemeSystem Theme = iota
	ThemeLight
	ThemeDark
)

var themeNames = [...]string{ThemeSystem: "system", ThemeLight: "light", ThemeDark: "dark"}

func (t Theme) String() string {
	if int(t) >= 0 && int(t) < len(themeNames) {
		return themeNames[t]
	}
	return fmt.Sprintf("Theme(%d)", int(t))
}

func (t Theme) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *Theme) UnmarshalText(b []byte) error {
	v, err := parseTheme(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func parseTheme(s string) (Theme, error) {
	for i, n := range themeNames {
		if n == s {
			return Theme(i), nil
		}
	}
	return 0, &badInputError{fmt.Sprintf("unknown theme %q: use \"system\", \"light\" or \"dark\"", s)}
}

// Settings are the user's app-wide preferences.
type Settings struct {
	Theme Theme `json:"theme"`
}

func defaultSettings() Settings { return Settings{Theme: ThemeSystem} }

// errSettingsBroken means settings.json exists but cannot be read; it is kept untouched.
var errSettingsBroken = errors.New("settings file is unreadable")

// settingsFile keeps Settings in a JSON file, written atomically (temp file +
// rename, mode 0600). A file that fails to parse is reported and kept: Porthole
// runs on defaults and refuses to overwrite it until the user fixes or removes it.
type settingsFile struct {
	path string

	mu     sync.Mutex
	cur    Settings
	broken error // non-nil when the file on disk failed to parse
}

// openSettings loads path. A missing file means defaults. A broken file returns a
// usable settingsFile (on defaults) together with an error to show the user.
func openSettings(path string) (*settingsFile, error) {
	f := &settingsFile{path: path, cur: defaultSettings()}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f, nil
	case err != nil:
		f.broken = fmt.Errorf("%w: %s: %w", errSettingsBroken, path, err)
		return f, f.broken
	}
	var s Settings
	if err := json.Unmarshal(b, &s); err != nil {
		f.broken = fmt.Errorf("%w: %s: %s; Porthole is using default settings and will not overwrite the file: fix it or delete it", errSettingsBroken, path, describeJSONError(b, err))
		return f, f.broken
	}
	f.cur = s
	return f, nil
}

// describeJSONError names the line and column of a JSON syntax error.
func describeJSONError(b []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(b)) {
		return err.Error()
	}
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(b[:off], '\n') - 1
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

func (f *settingsFile) Get() Settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// Update applies change and saves. It refuses while the file on disk is broken.
func (f *settingsFile) Update(change func(*Settings)) (Settings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return f.cur, f.broken
	}
	next := f.cur
	change(&next)
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return f.cur, fmt.Errorf("encode settings: %w", err)
	}
	if err := writeFileAtomic(f.path, append(b, '\n'), 0o600); err != nil {
		return f.cur, fmt.Errorf("save settings: %w", err)
	}
	f.cur = next
	return next, nil
}

// writeFileAtomic writes data to a temp file in path's directory, syncs it and
// renames it over path, so readers see the old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// configDir is where Porthole keeps its files: os.UserConfigDir()/porthole
// (Linux: $XDG_CONFIG_HOME/porthole or ~/.config/porthole).
func configDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w", err)
	}
	return filepath.Join(d, "porthole"), nil
}
