package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
