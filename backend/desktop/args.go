// Package desktop is the desktop window's life in the background: the
// command line of a launch (--hidden, --server, a URL to open), the requests
// a launch or the tray hands to the window, the tray menu's model and its
// StatusNotifierItem, whether a close hides the window, the single-instance
// hand-over, and the start-at-login file. It links no GTK and no Wails: the
// root package wires it to the window.
package desktop

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadArgument marks a command line the desktop mode cannot use. Its
// message never repeats a URL (it may hold a token).
var ErrBadArgument = errors.New("bad argument")

// TargetKind is what a URL argument asks for.
type TargetKind int

const (
	TargetNone   TargetKind = iota // no URL: just show the window
	TargetAppURL                   // http(s)://…: open it on a server, in a tab
	TargetSSH                      // ssh://user@host[:port]: the add-server form, filled in
)

var targetNames = [...]string{TargetNone: "none", TargetAppURL: "app-url", TargetSSH: "ssh"}

func (k TargetKind) String() string {
	if int(k) >= 0 && int(k) < len(targetNames) {
		return targetNames[k]
	}
	return fmt.Sprintf("TargetKind(%d)", int(k))
}

// Target is a launch's URL argument, parsed.
type Target struct {
	Kind TargetKind
	URL  string // TargetAppURL: the URL as given (it may hold a token: never log it)
	User string // TargetSSH
	Host string // TargetSSH
	Port int    // TargetSSH: 0 when not given
}

// Launch is the desktop mode's command line:
//
//	porthole [--hidden] [--server NAME] [URL]
type Launch struct {
	Hidden bool   // start with the window hidden (start at login)
	Server string // --server: the server (name or id) a URL opens on
	Target Target
}

// LaunchUsage is the desktop mode's command line, for error messages.
const LaunchUsage = "porthole [--hidden] [--server NAME] [http://localhost:PORT/… | ssh://user@host[:port]]"

// LooksLikeLaunch reports whether args are the desktop mode's (a flag it
// knows, or a URL), as opposed to another mode's name.
func LooksLikeLaunch(args []string) bool {
	if len(args) == 0 {
		return true
	}
	a := args[0]
	switch {
	case a == "--hidden", a == "--server", strings.HasPrefix(a, "--server="):
		return true
	case strings.Contains(a, "://"):
		return true
	}
	return false
}

func badArg(format string, a ...any) error {
	return fmt.Errorf("%s (usage: %s): %w", fmt.Sprintf(format, a...), LaunchUsage, ErrBadArgument)
}

// ParseLaunch parses the desktop mode's arguments. Errors wrap
// ErrBadArgument and never quote a URL.
func ParseLaunch(args []string) (Launch, error) {
	var l Launch
	seenTarget := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--hidden":
			l.Hidden = true
		case a == "--server" || strings.HasPrefix(a, "--server="):
			v, inline := strings.CutPrefix(a, "--server=")
			if !inline {
				if i+1 >= len(args) {
					return Launch{}, badArg("--server needs a server's name")
				}
				i++
				v = args[i]
			}
			v = strings.TrimSpace(v)
			if v == "" || strings.HasPrefix(v, "-") || strings.Contains(v, "://") || len(v) > 200 {
				return Launch{}, badArg("--server needs a server's name")
			}
			l.Server = v
		case strings.HasPrefix(a, "-"):
			return Launch{}, badArg("unknown flag %q", flagName(a))
		default:
			if seenTarget {
				return Launch{}, badArg("give one URL at most")
			}
			t, err := ParseTarget(a)
			if err != nil {
				return Launch{}, err
			}
			l.Target, seenTarget = t, true
		}
	}
	if l.Server != "" && l.Target.Kind != TargetAppURL {
		return Launch{}, badArg("--server names the server an http:// URL opens on; no such URL was given")
	}
	return l, nil
}

// flagName is a flag without its value (--x=secret → --x).
func flagName(a string) string {
	name, _, _ := strings.Cut(a, "=")
	if len(name) > 40 {
		name = name[:40] + "…"
	}
	return name
}

// ParseTarget parses a URL argument: http(s)://host[:port]/… (an app's
// URL, as printed on the server) or ssh://[user@]host[:port].
func ParseTarget(raw string) (Target, error) {
	if len(raw) > 8<<10 {
		return Target{}, badArg("the URL is too long")
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return Target{}, badArg("the argument is not a URL Porthole can open")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return Target{}, badArg("the argument is not a URL Porthole can open: give http://localhost:PORT/… or ssh://user@host")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" || u.Hostname() == "" {
			return Target{}, badArg("the %s URL has no host", strings.ToLower(u.Scheme))
		}
		if u.User != nil {
			return Target{}, badArg("the %s URL carries a user name or password; Porthole opens app URLs without them", strings.ToLower(u.Scheme))
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return Target{}, badArg("the URL's port is not a number from 1 to 65535")
			}
		}
		return Target{Kind: TargetAppURL, URL: raw}, nil
	case "ssh":
		return parseSSH(u)
	}
	return Target{}, badArg("Porthole opens http://, https:// and ssh:// URLs, not %s://", safeScheme(u.Scheme))
}

func safeScheme(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func parseSSH(u *url.URL) (Target, error) {
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Target{}, badArg("an ssh:// URL is ssh://user@host[:port], without a path or query")
	}
	t := Target{Kind: TargetSSH, Host: u.Hostname()}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return Target{}, badArg("an ssh:// URL must not carry a password; Porthole asks for it when it connects")
		}
		t.User = u.User.Username()
	}
	if t.Host == "" || strings.HasPrefix(t.Host, "-") || !validHost(t.Host) {
		return Target{}, badArg("the ssh:// URL has no usable host name")
	}
	if t.User != "" && (strings.HasPrefix(t.User, "-") || strings.ContainsAny(t.User, "@:/\\ ") || len(t.User) > 64) {
		return Target{}, badArg("the ssh:// URL's user name is not usable")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, badArg("the ssh:// URL's port is not a number from 1 to 65535")
		}
		t.Port = n
	}
	return t, nil
}

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
