package desktop

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAutostartFiles(t *testing.T) {
	for _, c := range []struct {
		name, exe string
		kind      AutostartKind
		want      []string
	}{
		{"xdg plain", "/usr/bin/porthole", AutostartXDG, []string{"[Desktop Entry]\n", "\nExec=/usr/bin/porthole --hidden\n", "\nType=Application\n"}},
		{"xdg spaces", "/opt/My Apps/porthole", AutostartXDG, []string{"\nExec=\"/opt/My Apps/porthole\" --hidden\n"}},
		{"xdg quote dollar percent", `/opt/a"b$c%d/porthole`, AutostartXDG, []string{"\nExec=\"/opt/a\\\\\"b\\\\$c%%d/porthole\" --hidden\n"}},
		{"launch agent", "/Applications/Porthole & Co/porthole", AutostartLaunchAgent, []string{"<string>/Applications/Porthole &amp; Co/porthole</string>", "<string>--hidden</string>", "<key>RunAtLoad</key>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "autostart", "porthole.desktop")
			a := &Autostart{Kind: c.kind, Path: path, Exe: c.exe}
			if a.Enabled() {
				t.Fatal("enabled before Set")
			}
			if err := a.Set(true); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || !a.Enabled() {
				t.Fatalf("after Set(true): %v, enabled %v", err, a.Enabled())
			}
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("file lacks %q:\n%s", w, b)
				}
			}
			if err := a.Set(false); err != nil || a.Enabled() {
				t.Fatalf("Set(false): %v, enabled %v", err, a.Enabled())
			}
			if err := a.Set(false); err != nil {
				t.Fatalf("Set(false) twice: %v", err)
			}
		})
	}
}

func TestAutostartReadOnlyDirChangesNothing(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: a read-only directory is simulated by a file in the directory's place")
	}
	base := t.TempDir()
	// A file where the autostart directory should be: no directory can be made there, even as root.
	if err := os.WriteFile(filepath.Join(base, "autostart"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	a := &Autostart{Kind: AutostartXDG, Path: filepath.Join(base, "autostart", "porthole.desktop"), Exe: "/usr/bin/porthole"}
	err := a.Set(true)
	if err == nil || !strings.Contains(err.Error(), "cannot turn on starting at login") {
		t.Fatalf("Set(true) in an unusable directory: %v; want a clear error", err)
	}
	if a.Enabled() {
		t.Fatal("Enabled after a failed Set")
	}
	if b, _ := os.ReadFile(filepath.Join(base, "autostart")); string(b) != "x" {
		t.Fatalf("the file in the way was changed: %q", b)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(base, "ro")
		if err := os.MkdirAll(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		a2 := &Autostart{Kind: AutostartXDG, Path: filepath.Join(ro, "porthole.desktop"), Exe: "/usr/bin/porthole"}
		if err := a2.Set(true); err == nil {
			t.Fatal("Set(true) in a read-only directory succeeded")
		}
	}
}

func TestAutostartUnsupported(t *testing.T) {
	var nilA *Autostart
	for _, a := range []*Autostart{nilA, {Kind: AutostartNone}} {
		if err := a.Set(true); !errors.Is(err, ErrAutostartUnsupported) {
			t.Errorf("Set on %+v: %v, want ErrAutostartUnsupported", a, err)
		}
		if a.Enabled() {
			t.Errorf("%+v enabled", a)
		}
	}
	if err := (&Autostart{Kind: AutostartXDG, Path: filepath.Join(t.TempDir(), "x.desktop"), Exe: "porthole"}).Set(true); err == nil {
		t.Error("a relative program path was accepted")
	}
}

// TestAutostartShownLeavesOutHidden (issue 13): with the startHidden setting
// off, the start-at-login file starts the window shown.
func TestAutostartShownLeavesOutHidden(t *testing.T) {
	for _, kind := range []AutostartKind{AutostartXDG, AutostartLaunchAgent} {
		for _, shown := range []bool{false, true} {
			a := &Autostart{Kind: kind, Path: filepath.Join(t.TempDir(), "entry"), Exe: "/usr/bin/porthole", Shown: shown}
			if err := a.Set(true); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(a.Path)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), "--hidden"); got == shown {
				t.Fatalf("%v shown=%v: --hidden in the file = %v:\n%s", kind, shown, got, b)
			}
			if !strings.Contains(string(b), "/usr/bin/porthole") {
				t.Fatalf("%v: no program in\n%s", kind, b)
			}
		}
	}
}

// fakeRunKey is an in-memory Run key; fail makes every write fail.
type fakeRunKey struct {
	vals map[string]string
	fail error
}

func (f *fakeRunKey) Get(name string) (string, bool, error) {
	v, ok := f.vals[name]
	return v, ok, nil
}

func (f *fakeRunKey) Set(name, cmd string) error {
	if f.fail != nil {
		return f.fail
	}
	f.vals[name] = cmd
	return nil
}

func (f *fakeRunKey) Delete(name string) error {
	if f.fail != nil {
		return f.fail
	}
	delete(f.vals, name)
	return nil
}

// TestAutostartRunKey (issue 13): on Windows, start at login is the current
// user's Run key: one value, the quoted program path and --hidden unless
// the window is to start shown; off removes the value and nothing else.
func TestAutostartRunKey(t *testing.T) {
	for _, c := range []struct {
		name, exe string
		shown     bool
		want      string
	}{
		{"program files", `C:\Program Files\Porthole\porthole.exe`, false, `"C:\Program Files\Porthole\porthole.exe" --hidden`},
		{"shown", `C:\Porthole\porthole.exe`, true, `"C:\Porthole\porthole.exe"`},
		{"unc", `\\fileserver\apps\porthole.exe`, false, `"\\fileserver\apps\porthole.exe" --hidden`},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := &fakeRunKey{vals: map[string]string{"OtherApp": `"C:\other.exe"`}}
			a := &Autostart{Kind: AutostartRunKey, Path: RunKeyPath + `\Porthole`, Exe: c.exe, Shown: c.shown, Reg: reg}
			if a.Enabled() {
				t.Fatal("enabled before Set")
			}
			if err := a.Set(true); err != nil {
				t.Fatal(err)
			}
			if got := reg.vals["Porthole"]; got != c.want || !a.Enabled() {
				t.Fatalf("Run value %q (enabled %v), want %q", got, a.Enabled(), c.want)
			}
			if err := a.Set(false); err != nil || a.Enabled() {
				t.Fatalf("Set(false): %v, enabled %v", err, a.Enabled())
			}
			if err := a.Set(false); err != nil {
				t.Fatalf("Set(false) twice: %v", err)
			}
			if reg.vals["OtherApp"] != `"C:\other.exe"` || len(reg.vals) != 1 {
				t.Fatalf("other Run values were touched: %q", reg.vals)
			}
		})
	}
}

func TestAutostartRunKeyBadInput(t *testing.T) {
	for _, exe := range []string{"porthole.exe", `Porthole\porthole.exe`, "/usr/bin/porthole", `C:\a"b\porthole.exe`, "C:\\a\nb.exe", ""} {
		reg := &fakeRunKey{vals: map[string]string{}}
		a := &Autostart{Kind: AutostartRunKey, Path: RunKeyPath, Exe: exe, Reg: reg}
		err := a.Set(true)
		if err == nil || !strings.Contains(err.Error(), "cannot turn on starting at login") {
			t.Errorf("exe %q: %v, want a clear refusal", exe, err)
		}
		if len(reg.vals) != 0 {
			t.Errorf("exe %q: a value was written: %q", exe, reg.vals)
		}
	}
	denied := errors.New("Access is denied.")
	reg := &fakeRunKey{vals: map[string]string{}, fail: denied}
	a := &Autostart{Kind: AutostartRunKey, Path: RunKeyPath, Exe: `C:\p.exe`, Reg: reg}
	if err := a.Set(true); !errors.Is(err, denied) || !strings.Contains(err.Error(), RunKeyPath) {
		t.Errorf("a registry refusal: %v; want it wrapped, naming the key", err)
	}
	if err := a.Set(false); !errors.Is(err, denied) || !strings.Contains(err.Error(), "regedit") {
		t.Errorf("a registry refusal on removal: %v; want it wrapped with what to do", err)
	}
	if err := (&Autostart{Kind: AutostartRunKey, Path: RunKeyPath, Exe: `C:\p.exe`}).Set(true); !errors.Is(err, ErrAutostartUnsupported) {
		t.Errorf("a Run key without a registry: %v, want ErrAutostartUnsupported", err)
	}
}
