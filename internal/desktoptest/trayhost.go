package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// The background phase runs a real tray host when it can: gtk-sni-tray-
// standalone (Debian's haskell-gtk-sni-tray-utils), a GTK tray bar that is a
// StatusNotifierWatcher and StatusNotifierHost and draws items' menus with
// libdbusmenu-gtk, as desktop panels do. The test then right-clicks
// Porthole's icon on the X display, screenshots the menu the host drew, and
// clicks its "Show Porthole". Without it (a machine that lacks the package;
// never in CI) a watcher of the test's own records the icon instead.

const trayHostBin = "gtk-sni-tray-standalone"

// trayBarHeight is the host's bar height (-s); the icon is the bar's last
// square (--end).
const trayBarHeight = 32

// startTrayHost starts the tray host on the test's bus and display, and
// waits for it to own the watcher's name. It answers false when the host is
// not installed outside CI.
func (t *run) startTrayHost(ctx context.Context, conn *dbus.Conn, busAddr string) (bool, error) {
	path, err := exec.LookPath(trayHostBin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("%s is missing (scripts/deps.sh test installs haskell-gtk-sni-tray-utils): the tray test needs a real tray host", trayHostBin)
		}
		t.logf("background phase: no %s (apt install haskell-gtk-sni-tray-utils); a watcher of the test's own records the tray icon instead of a real tray host", trayHostBin)
		return false, nil
	}
	cmd, err := t.startOnBus(busAddr, "desktop-tray-host.log", path, "--watcher", "--top", "--end", "-s", strconv.Itoa(trayBarHeight))
	if err != nil {
		return false, err
	}
	t.extras = append(t.extras, cmd)
	if !waitFor(15*time.Second, func() bool {
		var owner string
		return conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, "org.kde.StatusNotifierWatcher").Store(&owner) == nil && owner != ""
	}) {
		return false, fmt.Errorf("%s did not own org.kde.StatusNotifierWatcher within 15 s (see desktop-tray-host.log)", trayHostBin)
	}
	t.logf("background phase: a real tray host (%s) watches the session bus", trayHostBin)
	return true, nil
}

// hostItem is the first item registered with the host's watcher.
func hostItem(conn *dbus.Conn) (snItem, bool) {
	v, err := conn.Object("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher").GetProperty("org.kde.StatusNotifierWatcher.RegisteredStatusNotifierItems")
	if err != nil {
		return snItem{}, false
	}
	items, _ := v.Value().([]string)
	if len(items) == 0 {
		return snItem{}, false
	}
	sender, path, ok := strings.Cut(items[0], "/")
	if !ok {
		path = "StatusNotifierItem"
	}
	return snItem{sender: sender, path: "/" + path}, true
}

// xwin is an X window's id and geometry.
type xwin struct {
	id         string
	x, y, w, h int
}

// hostWindows lists the tray host's mapped windows larger than a stub.
func (t *run) hostWindows(ctx context.Context) []xwin {
	return t.visibleWindows(ctx, 20, "--name", "^"+trayHostBin+"$")
}

// visibleWindows lists the visible windows xdotool search finds (by, e.g.
// "--name", "^x$") that are larger than min pixels each way.
func (t *run) visibleWindows(ctx context.Context, min int, by ...string) []xwin {
	out, _ := t.xdotool(ctx, append([]string{"search", "--onlyvisible"}, by...)...)
	var wins []xwin
	for _, id := range strings.Fields(string(out)) {
		if w, err := t.windowGeometry(ctx, id); err == nil && w.w > min && w.h > min {
			wins = append(wins, w)
		}
	}
	return wins
}

// windowGeometry is window id's place and size on the display.
func (t *run) windowGeometry(ctx context.Context, id string) (xwin, error) {
	geo, err := t.xdotool(ctx, "getwindowgeometry", "--shell", id)
	if err != nil {
		return xwin{}, err
	}
	g := map[string]int{}
	for _, l := range strings.Fields(string(geo)) {
		if k, v, ok := strings.Cut(l, "="); ok {
			g[k], _ = strconv.Atoi(v)
		}
	}
	return xwin{id: id, x: g["X"], y: g["Y"], w: g["WIDTH"], h: g["HEIGHT"]}, nil
}

// rowCenter is the y of visible entry i (0-based) of menu in a popup of
// height h drawn by GTK: rows of equal height, thin separators, a little
// padding at the top and bottom.
func rowCenter(menu menuItem, i, h int) int {
	const pad, sep = 4, 1
	var items, seps, before int
	for _, c := range menu.children {
		if !c.visible {
			continue
		}
		if c.separator {
			seps++
			continue
		}
		items++
	}
	if items == 0 {
		return h / 2
	}
	row := float64(h-2*pad-seps*sep) / float64(items)
	n := 0
	for _, c := range menu.children {
		if !c.visible {
			continue
		}
		if c.separator {
			before++
			continue
		}
		if n == i {
			return pad + before*sep + int(row*float64(n)+row/2)
		}
		n++
	}
	return h / 2
}

// entryIndex is the row of the visible, non-separator entry labelled label.
func entryIndex(menu menuItem, label string) int {
	n := 0
	for _, c := range menu.children {
		if !c.visible || c.separator {
			continue
		}
		if c.label == label {
			return n
		}
		n++
	}
	return -1
}

// realTrayMenu right-clicks Porthole's icon in the tray host's bar, checks
// that the host drew a menu, opens the server's submenu, screenshots both
// (desktop-tray-menu.png; with -shots the README's tray-menu.png), and
// clicks "Show Porthole" in it: the window must come back.
func (t *run) realTrayMenu(ctx context.Context, menu menuItem, serverEntry string) error {
	var bar xwin
	for _, w := range t.hostWindows(ctx) {
		if w.y == 0 && w.h == trayBarHeight {
			bar = w
		}
	}
	if bar.id == "" {
		return errors.New("the tray host's bar is not on the screen")
	}
	iconX, iconY := bar.x+bar.w-trayBarHeight/2, bar.y+trayBarHeight/2
	if err := t.xdo(ctx, "mousemove", strconv.Itoa(iconX), strconv.Itoa(iconY), "click", "3"); err != nil {
		return err
	}
	var popup xwin
	if !waitFor(10*time.Second, func() bool {
		for _, w := range t.hostWindows(ctx) {
			if w.id != bar.id {
				popup = w
				return true
			}
		}
		return false
	}) {
		return errors.New("the tray host drew no menu for a right-click on Porthole's icon within 10 s")
	}
	// Open the server's submenu, as a user checking on a server would.
	bottom, left := popup.y+popup.h, popup.x
	if i := entryIndex(menu, serverEntry); i >= 0 {
		if err := t.xdo(ctx, "mousemove", strconv.Itoa(popup.x+60), strconv.Itoa(popup.y+rowCenter(menu, i, popup.h))); err != nil {
			return err
		}
		var sub xwin
		if waitFor(5*time.Second, func() bool {
			for _, w := range t.hostWindows(ctx) {
				if w.id != bar.id && w.id != popup.id {
					sub = w
					return true
				}
			}
			return false
		}) {
			bottom, left = max(bottom, sub.y+sub.h), min(left, sub.x)
		} else {
			t.logf("background phase: the server's submenu did not open on hover (the screenshot shows the menu only)")
		}
		time.Sleep(400 * time.Millisecond)
	}
	x0 := max(left-16, 0)
	crop := fmt.Sprintf("%dx%d+%d+0", bar.x+bar.w-x0, bottom+16, x0)
	path := filepath.Join(t.out, "desktop-tray-menu.png")
	cmd := exec.CommandContext(ctx, "/usr/bin/import", "-window", "root", "-crop", crop, "+repage", path)
	cmd.Env = t.env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("screenshot of the tray menu: %w: %s", err, b)
	}
	t.logf("screenshot %s (the tray menu as a real tray host draws it)", path)
	if t.shots != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(t.shots, "tray-menu.png"), b, 0o644); err != nil {
			return err
		}
	}
	// Back to the top row and click "Show Porthole".
	show := entryIndex(menu, "Show Porthole")
	if show < 0 {
		return errors.New(`the tray menu has no "Show Porthole"`)
	}
	y := strconv.Itoa(popup.y + rowCenter(menu, show, popup.h))
	if err := t.xdo(ctx, "mousemove", strconv.Itoa(popup.x+60), y); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	if err := t.xdo(ctx, "click", "1"); err != nil {
		return err
	}
	if !waitFor(10*time.Second, func() bool { return t.windowVisible(ctx) }) {
		return errors.New(`clicking "Show Porthole" in the real tray host's menu did not bring the window back within 10 s`)
	}
	t.logf(`background phase: the real tray host drew the menu; its "Show Porthole" brought the window back`)
	return nil
}

// startOnBus starts a desktop service (path args…) with the test's
// environment on the session bus at busAddr, its output in the artifact
// logName; it dies with the test (Pdeathsig). The caller stops it.
func (t *run) startOnBus(busAddr, logName, path string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(append([]string{}, t.env...), "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	logf, err := os.Create(filepath.Join(t.out, logName))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(path), err)
	}
	return cmd, nil
}
