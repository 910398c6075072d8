package desktop

import (
	"strings"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/servers"
)

// MenuEntry is one line of the tray menu. An entry with Children is a
// submenu; one with an empty Label is a separator.
type MenuEntry struct {
	ID       string // what a click does: see the Menu* prefixes
	Label    string
	Enabled  bool
	Children []MenuEntry
}

// Menu entry ids (and prefixes, followed by a server's or a tab's id).
const (
	MenuShow          = "show"
	MenuBrowser       = "browser"
	MenuSettings      = "settings"
	MenuQuit          = "quit"
	MenuServerPrefix  = "server:"
	MenuConnectPrefix = "connect:"
	MenuDisconnPrefix = "disconnect:"
	MenuTabPrefix     = "tab:"
)

// Up reports whether a server's state counts as fine for the tray icon; a
// failed server or one whose connection was lost shows the "down" icon.
func Up(s servers.ServerState) bool {
	return s != servers.ServerFailed && s != servers.ServerReconnecting
}

// SomeServerDown reports whether the tray shows its "down" icon.
func SomeServerDown(list []servers.ServerSummary) bool {
	for _, s := range list {
		if !Up(s.State) {
			return true
		}
	}
	return false
}

// stateDot is the server's state at a glance: ● connected (or idle, ready
// to redial), ◐ on the way, ✕ failed or lost, ○ disconnected.
func stateDot(s servers.ServerState) string {
	switch s {
	case servers.ServerConnected, servers.ServerIdle:
		return "●"
	case servers.ServerConnecting:
		return "◐"
	case servers.ServerFailed, servers.ServerReconnecting:
		return "✕"
	}
	return "○"
}

// connectedish: the tray offers Disconnect rather than Connect.
func connectedish(s servers.ServerState) bool {
	return s == servers.ServerConnected || s == servers.ServerIdle || s == servers.ServerConnecting || s == servers.ServerReconnecting
}

// TrayMenu is the tray's menu: Show Porthole; each server with its state
// and Connect/Disconnect; the open apps (a click shows the tab); Open
// Porthole in your browser; Quit.
func TrayMenu(list []servers.ServerSummary, tabs []apps.SavedTab) []MenuEntry {
	m := []MenuEntry{{ID: MenuShow, Label: "Show Porthole", Enabled: true}, {}}
	if len(list) == 0 {
		m = append(m, MenuEntry{ID: "no-servers", Label: "No servers yet"})
	}
	for _, s := range list {
		action := MenuEntry{ID: MenuConnectPrefix + s.ID, Label: "Connect", Enabled: true}
		if connectedish(s.State) {
			action = MenuEntry{ID: MenuDisconnPrefix + s.ID, Label: "Disconnect", Enabled: true}
		}
		m = append(m, MenuEntry{ID: MenuServerPrefix + s.ID, Label: menuText(stateDot(s.State)+" "+s.Name+" — "+s.State.String(), 60), Enabled: true,
			Children: []MenuEntry{action}})
	}
	if len(tabs) > 0 {
		m = append(m, MenuEntry{})
		for i, t := range tabs {
			if i == 20 {
				m = append(m, MenuEntry{ID: "more-apps", Label: "…and more in the window"})
				break
			}
			title := t.Title
			if title == "" {
				title = t.RemoteURL
			}
			m = append(m, MenuEntry{ID: MenuTabPrefix + t.ID, Label: menuText(title, 60), Enabled: true})
		}
	}
	return append(m, MenuEntry{}, MenuEntry{ID: MenuBrowser, Label: "Open Porthole in your browser", Enabled: true},
		MenuEntry{ID: MenuSettings, Label: "Settings…", Enabled: true}, MenuEntry{}, MenuEntry{ID: MenuQuit, Label: "Quit Porthole", Enabled: true})
}

// menuText is s on one line, at most n runes, with no query (an app's
// title or URL could carry a token) and no mnemonic underscores.
func menuText(s string, n int) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 && strings.Contains(s, "://") {
		s = s[:i]
	}
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "_", "__")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

// RenderMenu draws the menu as text (for the README and tests).
func RenderMenu(m []MenuEntry) string {
	var b strings.Builder
	var walk func([]MenuEntry, string)
	walk = func(es []MenuEntry, indent string) {
		for _, e := range es {
			switch {
			case e.Label == "":
				b.WriteString(indent + "────────\n")
			default:
				b.WriteString(indent + strings.ReplaceAll(e.Label, "__", "_"))
				if !e.Enabled {
					b.WriteString("  (inactive)")
				}
				b.WriteString("\n")
			}
			walk(e.Children, indent+"    ")
		}
	}
	walk(m, "")
	return b.String()
}
