package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/porthole-app/porthole/backend/apps"
)

// The background phase (issue 13): a third run on a session bus of the
// test's own, where a tiny StatusNotifierWatcher records the tray icon.
//
//  1. The tray: Porthole registers its StatusNotifierItem with the watcher,
//     and its menu (com.canonical.dbusmenu GetLayout) lists Show Porthole,
//     the server with its state, the open app, and Quit.
//  2. Closing the window (WM_DELETE_WINDOW, the close button) with the
//     restored tab open hides it: no visible window, the process alive, and
//     the tab's tunnel still answers.
//  3. A second launch with --server lab and a URL exits at once, and the
//     first Porthole opens that URL in a tab (the test app's record).
//  4. Quit from the tray menu (dbusmenu Event "clicked"): Porthole exits,
//     leaving no agent process and no listener.

// snWatcher is a StatusNotifierWatcher that records who registered.
type snWatcher struct {
	mu    sync.Mutex
	items []snItem
}

type snItem struct{ sender, path string }

func (w *snWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	path := service
	if !strings.HasPrefix(path, "/") {
		path = "/StatusNotifierItem"
	}
	w.items = append(w.items, snItem{sender: string(sender), path: path})
	return nil
}

func (w *snWatcher) first() (snItem, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.items) == 0 {
		return snItem{}, false
	}
	return w.items[0], true
}

// menuItem is a dbusmenu entry: its id, label and children.
type menuItem struct {
	id        int32
	label     string
	visible   bool
	enabled   bool
	separator bool
	children  []menuItem
}

func decodeMenu(v []any) (menuItem, error) {
	if len(v) != 3 {
		return menuItem{}, fmt.Errorf("a dbusmenu item has %d fields, not 3", len(v))
	}
	id, _ := v[0].(int32)
	props, _ := v[1].(map[string]dbus.Variant)
	m := menuItem{id: id, visible: true, enabled: true}
	if l, ok := props["label"]; ok {
		m.label, _ = l.Value().(string)
	}
	if v, ok := props["visible"]; ok {
		m.visible, _ = v.Value().(bool)
	}
	if v, ok := props["enabled"]; ok {
		m.enabled, _ = v.Value().(bool)
	}
	if v, ok := props["type"]; ok {
		typ, _ := v.Value().(string)
		m.separator = typ == "separator"
	}
	kids, _ := v[2].([]dbus.Variant)
	for _, k := range kids {
		kv, ok := k.Value().([]any)
		if !ok {
			return m, fmt.Errorf("a dbusmenu child is %T", k.Value())
		}
		c, err := decodeMenu(kv)
		if err != nil {
			return m, err
		}
		m.children = append(m.children, c)
	}
	return m, nil
}

func (m menuItem) render(indent string, b *strings.Builder) {
	for _, c := range m.children {
		if !c.visible {
			continue
		}
		b.WriteString(indent + c.label + "\n")
		c.render(indent+"    ", b)
	}
}

func (m menuItem) find(label string) (menuItem, bool) {
	for _, c := range m.children {
		if !c.visible {
			continue
		}
		if c.label == label {
			return c, true
		}
		if f, ok := c.find(label); ok {
			return f, true
		}
	}
	return menuItem{}, false
}

// getMenu reads the tray's whole menu.
func getMenu(conn *dbus.Conn, it snItem) (menuItem, error) {
	obj := conn.Object(it.sender, dbus.ObjectPath(it.path+"/menu"))
	var (
		rev    uint32
		layout []any
	)
	// The first GetLayout of fyne.io/systray answers one level only.
	for range 2 {
		call := obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
		if call.Err != nil {
			return menuItem{}, fmt.Errorf("dbusmenu GetLayout: %w", call.Err)
		}
		if len(call.Body) != 2 {
			return menuItem{}, fmt.Errorf("GetLayout answered %d values", len(call.Body))
		}
		rev, _ = call.Body[0].(uint32)
		layout, _ = call.Body[1].([]any)
		time.Sleep(300 * time.Millisecond)
	}
	_ = rev
	return decodeMenu(layout)
}

// startBus runs a private session bus (dbus-daemon) and returns its
// address. What it starts by itself (D-Bus activation) gets env (nil: the
// test process's own).
func (t *run) startBus(ctx context.Context, name string, env []string) (string, error) {
	sock := filepath.Join(t.tmp, name)
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--address=unix:path="+sock, "--print-address=1")
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start dbus-daemon: %w", err)
	}
	t.extras = append(t.extras, cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("dbus-daemon printed no address: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// agentPIDs lists the running `porthole agent` processes of bin.
func agentPIDs(bin string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(d.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		if len(args) >= 2 && string(args[0]) == bin && string(args[1]) == "agent" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (t *run) windowVisible(ctx context.Context) bool {
	out, _ := t.xdotool(ctx, "search", "--onlyvisible", "--name", "^Porthole$")
	return len(strings.Fields(string(out))) > 0
}

func waitFor(timeout time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return f()
}

func (t *run) background(ctx context.Context, bin, keyringSession, disp string, webPort int) error {
	start := time.Now()
	// What the bus activates gets the test HOME (never the real one) but no
	// display: a notifier (dunst) it started would draw over the window for
	// the rest of the test.
	var busEnv []string
	for _, kv := range t.env {
		if !strings.HasPrefix(kv, "DISPLAY=") {
			busEnv = append(busEnv, kv)
		}
	}
	addr, err := t.startBus(ctx, "bus", busEnv)
	if err != nil {
		return err
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		return fmt.Errorf("connect to the test's session bus: %w", err)
	}
	defer conn.Close()
	host, err := t.startTrayHost(ctx, conn, addr)
	if err != nil {
		return err
	}
	first := func() (snItem, bool) { return hostItem(conn) }
	if !host {
		w := &snWatcher{}
		if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
			return err
		}
		if reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			return fmt.Errorf("own org.kde.StatusNotifierWatcher: %v (reply %v)", err, reply)
		}
		first = w.first
	}
	saved := t.env
	t.env = append(append([]string{}, t.env...), "DBUS_SESSION_BUS_ADDRESS="+addr)
	defer func() { t.env = saved }()

	mark := t.count()
	win, err := t.startPorthole(ctx, bin, keyringSession, 3)
	if err != nil {
		return err
	}
	if _, _, err := t.waitPersist(ctx, mark, 60*time.Second); err != nil {
		return t.fail(ctx, win, "background-restore", err)
	}

	// 1. The tray icon and its menu.
	var item snItem
	if !waitFor(15*time.Second, func() bool { var ok bool; item, ok = first(); return ok }) {
		return t.fail(ctx, win, "tray", errors.New("no StatusNotifierItem registered with the watcher within 15 s"))
	}
	var menu menuItem
	var text string
	if !waitFor(20*time.Second, func() bool {
		m, err := getMenu(conn, item)
		if err != nil {
			text = err.Error()
			return false
		}
		var b strings.Builder
		m.render("", &b)
		menu, text = m, b.String()
		_, connected := m.find("● " + serverName + " — connected")
		return connected
	}) {
		return t.fail(ctx, win, "tray", fmt.Errorf("the tray menu never showed %s connected; it reads:\n%s", serverName, text))
	}
	for _, want := range []string{"Show Porthole", "Disconnect", "Open Porthole in your browser", "Quit Porthole"} {
		if _, ok := menu.find(want); !ok {
			return t.fail(ctx, win, "tray", fmt.Errorf("the tray menu has no %q; it reads:\n%s", want, text))
		}
	}
	t.logf("run 3: the tray icon registered (%s%s); its menu:\n%s", item.sender, item.path, text)
	_ = os.WriteFile(filepath.Join(t.out, "desktop-tray-menu.txt"), []byte(text), 0o644)

	// 2. Closing the window with a tunnel open hides it.
	tabsFile, err := os.ReadFile(filepath.Join(t.home, ".config", "porthole", "tabs.json"))
	if err != nil {
		return err
	}
	var tabs []apps.SavedTab
	if err := json.Unmarshal(tabsFile, &tabs); err != nil || len(tabs) == 0 {
		return fmt.Errorf("tabs.json: %v: %s", err, tabsFile)
	}
	local := tabs[0].LocalURL
	if err := closeWindow(disp, win); err != nil {
		return err
	}
	if !waitFor(10*time.Second, func() bool { return !t.windowVisible(ctx) }) {
		return t.fail(ctx, win, "close", errors.New("the window is still visible 10 s after it was closed with a tunnel open"))
	}
	time.Sleep(time.Second)
	if err := syscall.Kill(t.app.Process.Pid, 0); err != nil || t.windowVisible(ctx) {
		log, _ := os.ReadFile(t.appLog)
		return fmt.Errorf("after the close Porthole is gone (%v) or its window came back; its log:\n%s", err, log)
	}
	mark = t.count()
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Get(local)
	if err != nil {
		return fmt.Errorf("the tab's tunnel %s does not answer with the window hidden: %w", local, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 500 || !waitFor(5*time.Second, func() bool { return t.count() > mark }) {
		return fmt.Errorf("the tab's tunnel answered %s with the window hidden, but the app saw no request", resp.Status)
	}
	if log, _ := os.ReadFile(t.appLog); !strings.Contains(string(log), "keeps running in the tray") {
		return fmt.Errorf("the first hide was not announced; the log:\n%s", log)
	}
	t.logf("run 3: closing the window hid it; the process lives and the tunnel answered %s", resp.Status)

	// 2b. The real tray host: its menu, and "Show Porthole" in it; then hide again.
	if host {
		if err := t.realTrayMenu(ctx, menu, "● "+serverName+" — connected"); err != nil {
			return t.fail(ctx, win, "tray-host", err)
		}
		if err := closeWindow(disp, win); err != nil {
			return err
		}
		if !waitFor(10*time.Second, func() bool { return !t.windowVisible(ctx) }) {
			return t.fail(ctx, win, "close", errors.New("the window is still visible 10 s after it was closed again"))
		}
	}

	// 3. A second launch hands its URL to the first and exits.
	mark = t.count()
	second := exec.CommandContext(ctx, "sh", keyringSession, bin, "--server", serverName, fmt.Sprintf("http://localhost:%d/persist?launch=second", webPort))
	second.Env, second.Dir = t.env, t.home
	var secondOut bytes.Buffer
	second.Stdout, second.Stderr = &secondOut, &secondOut
	second.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := second.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the second launch failed (%v):\n%s", err, secondOut.String())
		}
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-second.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("the second launch was still running after 20 s:\n%s", secondOut.String())
	}
	page, _, err := t.waitPersist(ctx, mark, 60*time.Second)
	if err != nil {
		return t.fail(ctx, win, "second-launch", fmt.Errorf("the second launch's URL was not opened by the first Porthole: %w", err))
	}
	if !strings.Contains(page.RawQuery, "launch=second") {
		return t.fail(ctx, win, "second-launch", fmt.Errorf("the page opened was %s?%s, not the launch's", page.Path, page.RawQuery))
	}
	if !t.windowVisible(ctx) {
		return t.fail(ctx, win, "second-launch", errors.New("the window did not come back for the second launch"))
	}
	t.logf("run 3: a second launch exited and the first opened its URL in a tab")

	// 4. Quit from the tray: no agent, no listener.
	if len(agentPIDs(bin)) == 0 {
		return errors.New("no `porthole agent` process found while a server is connected: the check below would prove nothing")
	}
	quit, ok := menu.find("Quit Porthole")
	if !ok {
		return errors.New("no Quit in the tray menu")
	}
	if m, err := getMenu(conn, item); err == nil { // ids change when the menu is rebuilt
		if q, ok := m.find("Quit Porthole"); ok {
			quit = q
		}
	}
	call := conn.Object(item.sender, dbus.ObjectPath(item.path+"/menu")).Call("com.canonical.dbusmenu.Event", 0, quit.id, "clicked", dbus.MakeVariant(""), uint32(0))
	if call.Err != nil {
		return fmt.Errorf("dbusmenu Event clicked on Quit: %w", call.Err)
	}
	if err := t.waitExit(ctx, 3, "the tray's Quit"); err != nil {
		return err
	}
	if !waitFor(10*time.Second, func() bool { return len(agentPIDs(bin)) == 0 }) {
		return fmt.Errorf("agent processes %v are still running after the tray's Quit", agentPIDs(bin))
	}
	if c, err := (&http.Client{Timeout: 3 * time.Second}).Get(local); err == nil {
		_ = c.Body.Close()
		return fmt.Errorf("%s still answers after the tray's Quit", local)
	}
	t.logf("background phase: PASS in %.1f s (tray Quit left no agent and no listener)", time.Since(start).Seconds())
	return nil
}
