package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// The second run (downloads, find, zoom…) runs on a session bus of the
// test's own, so that the test sees what Porthole asks of the desktop
// there: an unlocked gnome-keyring on it (as keyring-session.sh gives the
// other runs) and a real notification daemon, dunst (Debian's dunst), drawn
// on the test's X display. dunst keeps what it received: the test reads it
// back over its control interface (org.dunstproject.cmd0, what dunstctl
// uses). Without dunst (a machine that lacks the package; never in CI) the
// notifications are not checked.
//
// The file manager is the test's own: it owns org.freedesktop.FileManager1
// (the freedesktop file manager interface that Nautilus, Dolphin, Thunar
// and Nemo serve) on that bus and records the ShowItems calls, so that
// "Show in folder" in the downloads list and a click on the notification
// are seen reaching the file manager with the file's URI.

const notifyDaemon = "dunst"

// dunstConfig: notifications stay until clicked (no timeout), one at a
// time, at the bottom of the strip of the screen right of the window (it
// is 1280 wide on a 1366 screen: a popup over WebKit's views is not
// repainted under Xvfb when it closes; the tray host's bar is at the top);
// a click runs the notification's default action, as on most desktops.
// It is the test HOME's dunstrc, so a dunst that a later run's bus starts
// by itself (D-Bus activation, in keyring-session.sh's sessions) uses it
// too. (The background phase's bus gives what it starts the test
// process's own environment, without a display: a dunst started there
// fails, and Porthole shows its notification in the window, as before.)
const dunstConfig = `[global]
    origin = bottom-right
    offset = 3x3
    width = 80
    height = 200
    font = Monospace 6
    notification_limit = 1
    mouse_left_click = do_action, close_current
    mouse_middle_click = close_current
    mouse_right_click = close_all
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
`

// desktopSession is the second run's bus: its address, the test's own
// connection to it, and whether a real notification daemon serves it.
type desktopSession struct {
	addr     string
	conn     *dbus.Conn
	notifier bool
	files    *fileManager
	procs    []*exec.Cmd // the keyring and dunst; close stops them
}

// fileManager is org.freedesktop.FileManager1, recording what it is asked
// to show.
type fileManager struct {
	mu    sync.Mutex
	items [][]string // each ShowItems call's URIs
}

func (f *fileManager) ShowItems(uris []string, startupID string) *dbus.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = append(f.items, uris)
	return nil
}

func (f *fileManager) ShowFolders(uris []string, startupID string) *dbus.Error { return nil }

func (f *fileManager) ShowItemProperties(uris []string, startupID string) *dbus.Error { return nil }

func (f *fileManager) calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.items...)
}

// close stops the session's keyring and notification daemon (their popups
// must not stay on the display for the later runs) and disconnects.
func (s *desktopSession) close() {
	if s == nil {
		return
	}
	for _, c := range s.procs {
		stopGroup(c)
	}
	s.procs = nil
	if s.conn != nil {
		_ = s.conn.Close()
	}
}

// startDesktopSession starts the bus, the keyring and the notification
// daemon. The caller runs Porthole with DBUS_SESSION_BUS_ADDRESS=s.addr.
func (t *run) startDesktopSession(ctx context.Context) (*desktopSession, error) {
	addr, err := t.startBus(ctx, "bus2", t.env) // the test's HOME and display, as keyring-session.sh's
	if err != nil {
		return nil, err
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the test's session bus: %w", err)
	}
	s := &desktopSession{addr: addr, conn: conn}
	if err := t.startKeyring(ctx, s); err != nil {
		s.close()
		return nil, err
	}
	if s.notifier, err = t.startNotifyDaemon(ctx, s); err != nil {
		s.close()
		return nil, err
	}
	s.files = &fileManager{}
	if err := conn.Export(s.files, "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1"); err != nil {
		s.close()
		return nil, err
	}
	if reply, err := conn.RequestName("org.freedesktop.FileManager1", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		s.close()
		return nil, fmt.Errorf("own org.freedesktop.FileManager1 on the test's session bus: %v (reply %v)", err, reply)
	}
	return s, nil
}

// startKeyring runs gnome-keyring-daemon on the bus, unlocked with a dummy
// password, with a HOME and XDG_RUNTIME_DIR of its own (as
// keyring-session.sh does).
func (t *run) startKeyring(ctx context.Context, s *desktopSession) error {
	dir := filepath.Join(t.tmp, "keyring")
	for _, d := range []string{"home", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	cmd := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	cmd.Env = append(append([]string{}, t.env...), "DBUS_SESSION_BUS_ADDRESS="+s.addr,
		"HOME="+filepath.Join(dir, "home"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"))
	cmd.Stdin = strings.NewReader("porthole-e2e")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start gnome-keyring-daemon: %w", err)
	}
	s.procs = append(s.procs, cmd)
	if !waitFor(15*time.Second, func() bool { return nameOwned(ctx, s.conn, "org.freedesktop.secrets") }) {
		return errors.New("gnome-keyring-daemon did not own org.freedesktop.secrets on the test's session bus within 15 s")
	}
	return nil
}

// startNotifyDaemon runs dunst on the bus and the test's display. It
// answers false when dunst is not installed outside CI.
func (t *run) startNotifyDaemon(ctx context.Context, s *desktopSession) (bool, error) {
	path, err := exec.LookPath(notifyDaemon)
	if err != nil {
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("%s is missing (scripts/deps.sh test installs it): the download notification test needs a real notification daemon", notifyDaemon)
		}
		t.logf("run 2: no %s (apt install dunst): the download notifications are not checked", notifyDaemon)
		return false, nil
	}
	conf := filepath.Join(t.home, ".config", "dunst", "dunstrc")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return false, err
	}
	if err := os.WriteFile(conf, []byte(dunstConfig), 0o644); err != nil {
		return false, err
	}
	cmd, err := t.startOnBus(s.addr, "desktop-dunst.log", path, "-config", conf)
	if err != nil {
		return false, err
	}
	s.procs = append(s.procs, cmd)
	var name string
	if !waitFor(15*time.Second, func() bool {
		var vendor, version, spec string
		err := s.conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications").
			CallWithContext(ctx, "org.freedesktop.Notifications.GetServerInformation", dbus.FlagNoAutoStart).Store(&name, &vendor, &version, &spec)
		return err == nil
	}) {
		return false, fmt.Errorf("%s did not serve org.freedesktop.Notifications on the test's session bus within 15 s (see desktop-dunst.log)", notifyDaemon)
	}
	if name != notifyDaemon {
		return false, fmt.Errorf("org.freedesktop.Notifications on the test's own bus is %q, not %s", name, notifyDaemon)
	}
	t.logf("run 2: a real notification daemon (%s) serves the session bus", notifyDaemon)
	return true, nil
}

func nameOwned(ctx context.Context, conn *dbus.Conn, name string) bool {
	var owner string
	return conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, name).Store(&owner) == nil && owner != ""
}

// dunst is the daemon's control interface.
func (s *desktopSession) dunst() dbus.BusObject {
	return s.conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
}

// received is how many notifications dunst has: shown, waiting to be shown
// and closed (its history).
func (s *desktopSession) received() (uint32, error) {
	var sum uint32
	for _, p := range []string{"displayedLength", "waitingLength", "historyLength"} {
		v, err := s.dunst().GetProperty("org.dunstproject.cmd0." + p)
		if err != nil {
			return 0, fmt.Errorf("dunst's %s: %w", p, err)
		}
		n, _ := v.Value().(uint32)
		sum += n
	}
	return sum, nil
}

// notice is a notification as dunst's history keeps it.
type notice struct{ app, summary, body string }

// history closes every notification dunst shows (they go to its history)
// and reads the history, newest first.
func (s *desktopSession) history(ctx context.Context) ([]notice, error) {
	if err := s.dunst().CallWithContext(ctx, "org.dunstproject.cmd0.NotificationCloseAll", 0).Err; err != nil {
		return nil, fmt.Errorf("dunst NotificationCloseAll: %w", err)
	}
	var raw []map[string]dbus.Variant
	if err := s.dunst().CallWithContext(ctx, "org.dunstproject.cmd0.NotificationListHistory", 0).Store(&raw); err != nil {
		return nil, fmt.Errorf("dunst NotificationListHistory: %w", err)
	}
	str := func(m map[string]dbus.Variant, k string) string {
		v, _ := m[k].Value().(string)
		return v
	}
	var out []notice
	for _, m := range raw {
		out = append(out, notice{app: str(m, "appname"), summary: str(m, "summary"), body: str(m, "body")})
	}
	return out, nil
}

// checkDownloadNotices waits for dunst to have received a notification per
// download in files (saved in dir), then checks each: Porthole's, titled
// "Download finished", naming the file and its folder.
func (t *run) checkDownloadNotices(ctx context.Context, s *desktopSession, dir string, files []string) error {
	if s == nil || !s.notifier {
		return nil
	}
	var got uint32
	if err := poll(ctx, 20*time.Second, func() error {
		var err error
		if got, err = s.received(); err != nil {
			return err
		}
		if got < uint32(len(files)) {
			return fmt.Errorf("dunst received %d notifications within 20 s of the downloads; want one per download (%d)", got, len(files))
		}
		return nil
	}); err != nil {
		return err
	}
	// Other notifications may come too (a new app on the server): the
	// downloads' are those titled "Download finished", one per file.
	var done []notice
	return poll(ctx, 10*time.Second, func() error {
		notices, err := s.history(ctx)
		if err != nil {
			return err
		}
		done = done[:0]
		for _, n := range notices {
			if n.summary == "Download finished" {
				done = append(done, n)
			}
		}
		for _, f := range files {
			want := f + " is in " + dir
			found := false
			for _, n := range done {
				found = found || (n.app == "Porthole" && strings.Contains(n.body, want))
			}
			if !found {
				return fmt.Errorf("dunst received no \"Download finished\" notification from Porthole saying %q; it received %+v", want, notices)
			}
		}
		if len(done) != len(files) {
			return fmt.Errorf("dunst received %d \"Download finished\" notifications for %d downloads: %+v", len(done), len(files), done)
		}
		t.logf("downloads: the notification daemon (%s) received \"Download finished\" from Porthole for each: %v", notifyDaemon, files)
		return nil
	})
}

// waitShown waits for the file manager's ShowItems call number n (from 1)
// and checks that it asked for the file at path, and nothing else.
func (s *desktopSession) waitShown(ctx context.Context, n int, path string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		calls := s.files.calls()
		if len(calls) < n {
			return fmt.Errorf("the file manager (org.freedesktop.FileManager1) was asked to show %d files within %s, not %d: %v", len(calls), timeout, n, calls)
		}
		got := calls[n-1]
		if len(got) != 1 {
			return fmt.Errorf("ShowItems was called with %v, not the one file %s", got, path)
		}
		u, err := url.Parse(got[0])
		if err != nil || u.Scheme != "file" || u.Host != "" || u.Path != path {
			return fmt.Errorf("ShowItems was called with %q, not the file:// URI of %s", got[0], path)
		}
		return nil
	})
}

// notificationWindow is dunst's popup on the display.
func (t *run) notificationWindow(ctx context.Context) (xwin, error) {
	if wins := t.visibleWindows(ctx, 10, "--class", "^Dunst$"); len(wins) > 0 {
		return wins[0], nil
	}
	return xwin{}, errors.New("no notification on the display")
}

// showInFolder clicks "Show in folder" for the newest download in the
// downloads list (the list's first row; it opened by itself on the
// download), then the notification dunst shows (the first download's: one
// at a time, oldest first): each must reach the file manager with its
// file's URI.
func (t *run) showInFolder(ctx context.Context, win string, s *desktopSession, newest, oldest string) error {
	// The list's first row's button, at the right end of the row, under
	// the tab strip and the list's summary (see DownloadsPanel.vue).
	if err := t.xdo(ctx, "mousemove", "--window", win, "1208", "88", "click", "1"); err != nil {
		return err
	}
	if err := s.waitShown(ctx, 1, newest, 15*time.Second); err != nil {
		return fmt.Errorf("\"Show in folder\" in the downloads list: %w", err)
	}
	t.logf("downloads: \"Show in folder\" in the list asked the file manager (org.freedesktop.FileManager1.ShowItems) to show %s", newest)
	if !s.notifier {
		return nil
	}
	var pop xwin
	if err := poll(ctx, 10*time.Second, func() error {
		var err error
		pop, err = t.notificationWindow(ctx)
		return err
	}); err != nil {
		return err
	}
	if err := t.xdo(ctx, "mousemove", strconv.Itoa(pop.x+pop.w/2), strconv.Itoa(pop.y+min(pop.h/2, 20)), "click", "1"); err != nil {
		return err
	}
	if err := s.waitShown(ctx, 2, oldest, 15*time.Second); err != nil {
		return fmt.Errorf("a click on the \"Download finished\" notification: %w", err)
	}
	t.logf("downloads: a click on the notification dunst showed asked the file manager to show %s", oldest)
	return nil
}
