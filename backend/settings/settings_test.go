package settings

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
)

func TestSettingsRoundTripAndBrokenFileKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "porthole", "settings.json")
	s, err := Open(path)
	if err != nil || s.Get().Theme != ThemeSystem {
		t.Fatalf("missing file: %+v, %v; want defaults", s.Get(), err)
	}
	if _, err := s.Update(func(v *Settings) { v.Theme = ThemeDark }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("settings file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	s2, err := Open(path)
	if err != nil || s2.Get().Theme != ThemeDark {
		t.Fatalf("reopened: %+v, %v; want dark", s2.Get(), err)
	}

	broken := []byte("{\n  \"theme\": \"dark\",\n  oops\n}\n")
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(path)
	if err == nil || !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("broken file: err = %v; want ErrBroken naming line 3", err)
	}
	if s3.Get().Theme != ThemeSystem {
		t.Fatalf("broken file: running on %+v, want defaults", s3.Get())
	}
	if _, err := s3.Update(func(v *Settings) { v.Theme = ThemeLight }); !errors.Is(err, ErrBroken) {
		t.Fatalf("Update over a broken file: err = %v, want refusal", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(broken) {
		t.Fatalf("broken file was changed:\n%s", got)
	}
}

// TestInspectorRoundTrip (issue 14, finding 9): the app views' developer
// tools are off unless the user turned them on, and the choice is kept.
func TestInspectorRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	s, err := Open(path)
	if err != nil || s.Get().Inspector || Default().Inspector {
		t.Fatalf("new settings: %+v, %v; want the inspector off", s.Get(), err)
	}
	if got, err := s.SetInspector(true); err != nil || !got.Inspector {
		t.Fatalf("SetInspector(true) = %+v, %v", got, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"inspector": true`) {
		t.Fatalf("settings.json = %s, %v; want \"inspector\": true", b, err)
	}
	s2, err := Open(path)
	if err != nil || !s2.Get().Inspector || s2.Get().Theme != ThemeSystem {
		t.Fatalf("reopened: %+v, %v; want the inspector on, theme kept", s2.Get(), err)
	}
	if got, err := s2.SetInspector(false); err != nil || got.Inspector {
		t.Fatalf("SetInspector(false) = %+v, %v", got, err)
	}
	if s3, err := Open(path); err != nil || s3.Get().Inspector {
		t.Fatalf("reopened after off: %+v, %v", s3.Get(), err)
	}
	// A value of the wrong type is a broken file, not "on".
	if err := os.WriteFile(path, []byte(`{"theme":"dark","inspector":"yes"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if s4, err := Open(path); !errors.Is(err, ErrBroken) || s4.Get().Inspector {
		t.Fatalf("inspector \"yes\": %+v, %v; want ErrBroken and off", s4.Get(), err)
	}
	var nilFile *File
	if got, err := nilFile.SetInspector(true); err != nil || !got.Inspector {
		t.Fatalf("nil File: %+v, %v", got, err)
	}
}

// settingsFileCases are settings.json contents and what Open makes of them.
var settingsFileCases = []struct {
	name   string
	in     string
	want   Theme
	broken bool
}{
	{name: "dark", in: `{"theme":"dark"}`, want: ThemeDark},
	{name: "light indented", in: "{\n  \"theme\": \"light\"\n}\n", want: ThemeLight},
	{name: "empty object", in: `{}`, want: ThemeSystem},
	{name: "unknown field", in: `{"theme":"system","font":12}`, want: ThemeSystem},
	{name: "unknown theme", in: `{"theme":"blue"}`, broken: true},
	{name: "theme number", in: `{"theme":2}`, broken: true},
	{name: "syntax error", in: "{\n  \"theme\": \"dark\",\n  oops\n}\n", broken: true},
	{name: "empty file", in: ``, broken: true},
	{name: "not an object", in: `["dark"]`, broken: true},
	{name: "theme with a newline", in: `{"theme":"da\nrk"}`, broken: true},
}

func TestSettingsFileCases(t *testing.T) {
	for _, tc := range settingsFileCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "settings.json")
			if err := os.WriteFile(path, []byte(tc.in), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if tc.broken {
				if !errors.Is(err, ErrBroken) {
					t.Fatalf("err = %v, want ErrBroken", err)
				}
				return
			}
			if err != nil || s.Get().Theme != tc.want {
				t.Fatalf("Open = %v, %v; want %v", s.Get(), err, tc.want)
			}
		})
	}
}

// FuzzSettingsFile: whatever settings.json holds, Open either reads settings
// that save and read back the same, or reports one line naming the file and
// runs on defaults without touching it.
func FuzzSettingsFile(f *testing.F) {
	for _, tc := range settingsFileCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "settings.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path)
		if err != nil {
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("error %v is not ErrBroken", err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !strings.Contains(msg, path) {
				t.Fatalf("error is not one line naming %s: %q", path, msg)
			}
			if s.Get() != Default() {
				t.Fatalf("broken file: running on %+v, want defaults", s.Get())
			}
			if _, err := s.SetTheme("dark"); !errors.Is(err, ErrBroken) {
				t.Fatalf("SetTheme over a broken file: %v", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Fatalf("broken file changed: %q → %q", data, got)
			}
			return
		}
		got := s.Get()
		if got.Theme.String() != themeNames[got.Theme] {
			t.Fatalf("read an out-of-range theme %v", got.Theme)
		}
		if _, err := s.Update(func(*Settings) {}); err != nil {
			t.Fatalf("saving what was read: %v", err)
		}
		s2, err := Open(path)
		if err != nil || s2.Get() != got {
			t.Fatalf("round trip: %+v → %+v, %v", got, s2.Get(), err)
		}
	})
}

// FuzzParseTheme: a name that parses writes back as itself; one that does
// not is a one-line bad-input error.
func FuzzParseTheme(f *testing.F) {
	for _, n := range themeNames {
		f.Add(n)
	}
	for _, s := range []string{"", "Dark", "dark ", "blue", "da\nrk", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseTheme(s)
		if err != nil {
			if !errors.Is(err, apperr.ErrBadInput) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("ParseTheme(%q): error %q is not one line of bad input", s, err)
			}
			return
		}
		if th.String() != s {
			t.Fatalf("ParseTheme(%q) = %v", s, th)
		}
		var back Theme
		if err := back.UnmarshalText([]byte(s)); err != nil || back != th {
			t.Fatalf("UnmarshalText(%q) = %v, %v", s, back, err)
		}
	})
}

func TestNotifySettingsRoundTripAndInvalidRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for k := NotifyServerDown; k <= NotifyNewApp; k++ {
		if !s.Get().Notify.On(k) {
			t.Errorf("%s is off for a new user; every notification starts on", k)
		}
	}
	got, err := s.SetNotify("new-app", false)
	if err != nil || got.Notify.NewApp || !got.Notify.ServerDown {
		t.Fatalf("SetNotify(new-app, false) = %+v, %v; want only new-app off", got.Notify, err)
	}
	s2, err := Open(path)
	if err != nil || s2.Get().Notify.On(NotifyNewApp) || !s2.Get().Notify.On(NotifyNeedsYou) {
		t.Fatalf("reopened: %+v, %v; want new-app off, the rest on", s2.Get().Notify, err)
	}
	for _, bad := range []string{"", "New-App", "everything", "server_down", "NotifyKind(9)"} {
		t.Run(bad, func(t *testing.T) {
			got, err := s2.SetNotify(bad, false)
			if !errors.Is(err, apperr.ErrBadInput) {
				t.Fatalf("SetNotify(%q) err = %v; want a bad-input error", bad, err)
			}
			if got.Notify != s2.Get().Notify || !got.Notify.ServerDown {
				t.Fatalf("SetNotify(%q) changed the settings: %+v", bad, got.Notify)
			}
		})
	}
	// An older file without the notify block keeps every kind on.
	if err := os.WriteFile(path, []byte(`{"theme":"dark"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(path)
	if err != nil || s3.Get().Theme != ThemeDark || s3.Get().Notify != allNotify() {
		t.Fatalf("old file: %+v, %v; want dark with every notification on", s3.Get(), err)
	}
	var nilFile *File
	if got, err := nilFile.SetNotify("needs-you", false); err != nil || got.Notify.NeedsYou {
		t.Fatalf("nil File: %+v, %v", got.Notify, err)
	}
}

func FuzzParseNotifyKind(f *testing.F) {
	for _, s := range []string{"server-down", "needs-you", "agent-crash", "new-app", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseNotifyKind(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("ParseNotifyKind(%q) = %v, whose name differs", s, k)
		}
	})
}

// TestHideOnCloseDefaultOnAndKept (issue 13): on for a new user and for a
// settings file written before the setting existed; off is kept; a value
// of the wrong type is a broken file.
func TestHideOnCloseDefaultOnAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(path, []byte(`{"theme":"dark","inspector":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil || !s.Get().HideOnClose || s.Get().Theme != ThemeDark {
		t.Fatalf("an older file: %+v, %v; want hideOnClose on, theme kept", s.Get(), err)
	}
	if got, err := s.SetHideOnClose(false); err != nil || got.HideOnClose {
		t.Fatalf("SetHideOnClose(false) = %+v, %v", got, err)
	}
	if s2, err := Open(path); err != nil || s2.Get().HideOnClose {
		t.Fatalf("reopened: %+v, %v; want off", s2.Get(), err)
	}
	if err := os.WriteFile(path, []byte(`{"theme":"dark","hideOnClose":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrBroken) {
		t.Fatalf("hideOnClose 1: %v; want ErrBroken", err)
	}
	var nilFile *File
	if got, _ := nilFile.SetHideOnClose(false); got.HideOnClose || !Default().HideOnClose {
		t.Fatalf("nil File / Default: %+v", got)
	}
}

// TestSetTabDiscard: 30 min by default, saved, 0 allowed (never), out of
// range refused with the range in words.
func TestSetTabDiscard(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Get().TabDiscard(); got != 30*time.Minute {
		t.Fatalf("default TabDiscard = %v; want 30m", got)
	}
	for _, sec := range []int{0, 5, 3600} {
		s, err := f.SetTabDiscard(sec)
		if err != nil || s.TabDiscardSec != sec {
			t.Fatalf("SetTabDiscard(%d) = %+v, %v", sec, s, err)
		}
	}
	again, err := Open(f.path)
	if err != nil || again.Get().TabDiscardSec != 3600 {
		t.Fatalf("reopened: %+v, %v; want 3600 kept", again.Get(), err)
	}
	for _, sec := range []int{-1, 604801} {
		if _, err := f.SetTabDiscard(sec); err == nil || !strings.Contains(err.Error(), "0 (never) to 7 days") {
			t.Fatalf("SetTabDiscard(%d) err = %v", sec, err)
		}
	}
	if got := (Settings{TabDiscardSec: -5}).TabDiscard(); got != 0 {
		t.Fatalf("negative in the file: %v", got)
	}
}
