package desktop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/atomicfile"
)

// ErrAutostartUnsupported: starting at login is not implemented on this system yet.
var ErrAutostartUnsupported = errors.New("starting Porthole at login is not supported on this system yet")

// AutostartKind is the format of the start-at-login file.
type AutostartKind int

const (
	AutostartNone        AutostartKind = iota // not supported here
	AutostartXDG                              // ~/.config/autostart/porthole.desktop (Linux, BSDs)
	AutostartLaunchAgent                      // ~/Library/LaunchAgents/app.porthole.plist (macOS)
	AutostartRunKey                           // HKCU\...\CurrentVersion\Run, value "Porthole" (Windows)
)

var autostartNames = [...]string{AutostartNone: "none", AutostartXDG: "xdg", AutostartLaunchAgent: "launch-agent", AutostartRunKey: "run-key"}

func (k AutostartKind) String() string {
	if int(k) >= 0 && int(k) < len(autostartNames) {
		return autostartNames[k]
	}
	return fmt.Sprintf("AutostartKind(%d)", int(k))
}

// Autostart is the file that starts Porthole, hidden, when the user logs in.
type Autostart struct {
	Kind AutostartKind
	Path string // the file; "" for AutostartNone
	Exe  string // the program to start (absolute path)
	// Shown: the file starts the window shown, without --hidden (the
	// startHidden setting off); written by the next Set(true).
	Shown bool
	// Reg holds the Run key's values (AutostartRunKey only): the current
	// user's registry on Windows, a fake in tests.
	Reg RunKey
}

// RunKey is the part of HKCU\Software\Microsoft\Windows\CurrentVersion\Run
// that Porthole uses: one string value per program.
type RunKey interface {
	// Get returns the value's command line; ok is false when it is absent.
	Get(name string) (cmd string, ok bool, err error)
	Set(name, cmd string) error
	// Delete removes the value; an absent value is not an error.
	Delete(name string) error
}

// RunKeyPath names the Run key for messages.
const RunKeyPath = `HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run`

// runValueName is Porthole's value under the Run key.
const runValueName = "Porthole"

// DefaultAutostart is this system's start-at-login file for exe: the XDG
// autostart entry on Linux (under $XDG_CONFIG_HOME, else ~/.config), a
// LaunchAgent on macOS, the current user's Run key on Windows.
func DefaultAutostart(exe string) Autostart {
	switch runtime.GOOS {
	case "windows":
		if reg := systemRunKey(); reg != nil {
			return Autostart{Kind: AutostartRunKey, Path: RunKeyPath + `\` + runValueName, Exe: exe, Reg: reg}
		}
		return Autostart{Kind: AutostartNone, Exe: exe}
	case "darwin":
		home, _ := os.UserHomeDir()
		return Autostart{Kind: AutostartLaunchAgent, Path: filepath.Join(home, "Library", "LaunchAgents", "app.porthole.plist"), Exe: exe}
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return Autostart{Kind: AutostartXDG, Path: filepath.Join(dir, "autostart", "porthole.desktop"), Exe: exe}
}

// Enabled reports whether the start-at-login file is there.
func (a *Autostart) Enabled() bool {
	if a == nil || a.Kind == AutostartNone || a.Path == "" {
		return false
	}
	if a.Kind == AutostartRunKey {
		if a.Reg == nil {
			return false
		}
		_, ok, err := a.Reg.Get(runValueName)
		return ok && err == nil
	}
	_, err := os.Stat(a.Path)
	return err == nil
}

// Set writes (on) or removes (off) the start-at-login file. A failure (a
// read-only directory) changes nothing and says what to do. A nil Autostart
// (serve mode) or AutostartNone answers ErrAutostartUnsupported.
func (a *Autostart) Set(on bool) error {
	if a == nil || a.Kind == AutostartNone || a.Path == "" || (a.Kind == AutostartRunKey && a.Reg == nil) {
		return apperr.Mark(ErrAutostartUnsupported, apperr.ErrUnavailable)
	}
	if a.Kind == AutostartRunKey {
		return a.setRunKey(on)
	}
	if !on {
		if err := os.Remove(a.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot turn off starting at login: removing %s failed; remove it yourself: %w", a.Path, err)
		}
		return nil
	}
	if !filepath.IsAbs(a.Exe) {
		return fmt.Errorf("cannot turn on starting at login: the program's path %q is not absolute", a.Exe)
	}
	var body []byte
	switch a.Kind {
	case AutostartXDG:
		body = []byte(desktopEntry(a.Exe, !a.Shown))
	case AutostartLaunchAgent:
		body = []byte(launchAgentPlist(a.Exe, !a.Shown))
	}
	if err := atomicfile.WriteFile(a.Path, body, 0o644); err != nil {
		return fmt.Errorf("cannot turn on starting at login: %w", err)
	}
	return nil
}

// setRunKey writes or removes Porthole's value under the Run key.
func (a *Autostart) setRunKey(on bool) error {
	if !on {
		if err := a.Reg.Delete(runValueName); err != nil {
			return fmt.Errorf("cannot turn off starting at login: removing the value %q under %s failed; remove it yourself with regedit: %w", runValueName, RunKeyPath, err)
		}
		return nil
	}
	cmd, err := RunKeyCommand(a.Exe, !a.Shown)
	if err != nil {
		return fmt.Errorf("cannot turn on starting at login: %w", err)
	}
	if err := a.Reg.Set(runValueName, cmd); err != nil {
		return fmt.Errorf("cannot turn on starting at login: writing the value %q under %s failed: %w", runValueName, RunKeyPath, err)
	}
	return nil
}

// RunKeyCommand is the Run key's command line for exe: the program's path
// in double quotes (it may hold spaces: C:\Program Files\...), then
// --hidden. Windows paths cannot hold a double quote; one is refused.
func RunKeyCommand(exe string, hidden bool) (string, error) {
	if !isWindowsAbs(exe) {
		return "", fmt.Errorf("the program's path %q is not an absolute Windows path", exe)
	}
	if strings.ContainsAny(exe, "\"\x00\r\n") {
		return "", fmt.Errorf("the program's path %q holds a character Windows does not allow in a path", exe)
	}
	cmd := `"` + exe + `"`
	if hidden {
		cmd += " --hidden"
	}
	return cmd, nil
}

// isWindowsAbs: a drive path (C:\...) or a UNC path (\\server\share\...),
// checked by hand so that it answers the same on every GOOS.
func isWindowsAbs(p string) bool {
	if len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') {
		c := p[0] | 0x20
		return c >= 'a' && c <= 'z'
	}
	return strings.HasPrefix(p, `\\`) && len(p) > 2
}

// DesktopEntry is the XDG autostart entry that starts exe hidden.
func DesktopEntry(exe string) string { return desktopEntry(exe, true) }

func desktopEntry(exe string, hidden bool) string {
	arg := ""
	if hidden {
		arg = " --hidden"
	}
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=Porthole\n" +
		"Comment=Keeps your servers' apps and tunnels ready in the background\n" +
		"Exec=" + desktopExecArg(exe) + arg + "\n" +
		"Icon=porthole\n" +
		"Terminal=false\n" +
		"X-GNOME-Autostart-enabled=true\n"
}

// desktopExecArg quotes one Exec argument as the Desktop Entry
// Specification says: inside double quotes, \ " ` $ are escaped with a
// backslash; a literal % is %%. The entry's value is then escaped again
// (\ as \\), as every string value is.
func desktopExecArg(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if strings.ContainsAny(s, " \t\n\"'\\><~|&;$*?#()`=") {
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range s {
			if strings.ContainsRune("\"`$\\", r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
		s = b.String()
	}
	s = strings.ReplaceAll(s, "\\", "\\\\")
	s = strings.ReplaceAll(s, "\n", "\\n")
	return s
}

// LaunchAgentPlist is the macOS LaunchAgent that starts exe hidden at login.
func LaunchAgentPlist(exe string) string { return launchAgentPlist(exe, true) }

func launchAgentPlist(exe string, hidden bool) string {
	arg := ""
	if hidden {
		arg = "\n\t\t<string>--hidden</string>"
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>app.porthole</string>
	<key>ProgramArguments</key>
	<array>
		<string>` + xmlEscape(exe) + `</string>` + arg + `
	</array>
	<key>RunAtLoad</key>
	<true/>
</dict>
</plist>
`
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
