// Command desktoptest checks Porthole's real desktop window under Xvfb: an
// app opened in a tab keeps its login (cookie), its localStorage and its
// IndexedDB when Porthole quits and starts again. It is part of `make test`:
//
//	go run ./internal/desktoptest [-bin build/bin/porthole] [-out build/test-artifacts] [-shots DIR]
//
// The server is a real OpenSSH sshd on loopback (testrig), with the test web
// app (testwebapp -requests) on its localhost. Porthole gets a throwaway HOME
// with the server saved (an ~/.ssh/config alias, its host key known) and runs
// in a private D-Bus session with an unlocked gnome-keyring. The test drives
// the window as a user would, with the keyboard (xdotool):
//
//  1. Ctrl+L, type http://lab:PORT/persist, Enter: the URL bar connects the
//     server and opens the page in a tab. The page gets a session cookie
//     (SameSite=Lax, 30 days), stores a localStorage value and an IndexedDB
//     record, and reports them to the app.
//  2. SIGTERM (as at logout): Porthole closes its window, its tabs saved.
//  3. Porthole starts again, on a session bus of the test's own with a real
//     notification daemon (notifyhost.go): the tab is restored, its server
//     connects by itself, and the page loads. Ctrl+R inside the app reloads
//     it; then downloads (and their notifications), find in page, zoom and a
//     page flooding the window with alerts (tools.go); Ctrl+Q (pressed
//     inside the app) quits.
//  4. Porthole starts a third time on a session bus of the test's own, with
//     a test StatusNotifierWatcher: its tray menu, closing the window with
//     the tab open (it hides; the tunnel answers), a second launch with a
//     URL (handed to the first), and Quit from the tray (see background.go).
//  5. A fourth time, discarding background tabs after 3 s: the tab is
//     discarded (a WebKit process fewer) and reloads its page when it shows
//     (see discard.go).
//
// Assertions use the test app's own record of the requests it received: the
// restored page's request carries the same cookie, and its report names the
// same localStorage value and IndexedDB record, both kept (not made anew).
//
// With -shots (make screenshots), it also writes the README's screenshots of
// the window: a server's page (its apps, its dashboard with some traffic, its
// saved rules), an app in a tab, and the tray menu as a real tray host
// (gtk-sni-tray-standalone) draws it (see trayhost.go).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/internal/testrig"
)

const serverName = "lab"

func main() {
	bin := flag.String("bin", "build/bin/porthole", "the porthole binary (it runs porthole-desktop next to it)")
	out := flag.String("out", "build/test-artifacts", "directory for logs and screenshots")
	shots := flag.String("shots", "", "also write the README screenshots (start-page.png, app-tab.png, server-dashboard.png, server-rules.png, downloads.png, tray-menu.png, palette.png) here")
	memory := flag.String("memory", "", "instead of the test: measure the window's memory with 0, 1, 3 and 6 app tabs against Chromium, into this file's memory section (make bench: docs/BENCHMARKS.md)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	t := &run{out: *out, shots: *shots}
	if *memory != "" {
		err := t.memory(ctx, *bin, *memory)
		t.cleanup()
		if err != nil {
			fmt.Fprintf(os.Stderr, "desktop-memory: FAIL: %v\n", err)
			os.Exit(1)
		}
		return
	}
	err := t.main(ctx, *bin)
	t.cleanup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "desktop-persist: FAIL: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("desktop-persist: PASS")
}

// run holds what one test run started; cleanup stops all of it.
type run struct {
	out, shots string
	tmp        string
	home       string
	env        []string

	sshd   *testrig.Sshd
	webapp *exec.Cmd
	webIn  interface{ Close() error }
	xvfb   *exec.Cmd
	app    *exec.Cmd
	appLog string

	extras  []*exec.Cmd // -shots: real apps for the screenshots
	jupyter int         // -shots: Jupyter's port on the server, 0 if none
	ruleL   int         // -shots: the saved -L rule's local port
	ruleD   int         // -shots: the saved -D rule's SOCKS port

	desk *desktopSession // run 2's session bus (notifyhost.go)

	mu      sync.Mutex
	records []testrig.RequestRecord
	webDone chan struct{}
}

func (t *run) logf(format string, a ...any) {
	fmt.Printf("desktop-persist: "+format+"\n", a...)
}

func (t *run) main(ctx context.Context, bin string) error {
	for _, tool := range []string{"Xvfb", "xdotool", "dbus-run-session", "gnome-keyring-daemon", "/usr/bin/import"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (scripts/deps.sh test installs it): %w", tool, err)
		}
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	bin = abs
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "porthole-desktop")); err != nil {
		return fmt.Errorf("no porthole-desktop next to %s: run make build: %w", bin, err)
	}
	keyringSession, err := filepath.Abs("frontend/e2e/keyring-session.sh")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.out, 0o755); err != nil {
		return err
	}
	if t.tmp, err = os.MkdirTemp("", "porthole-desktop-persist-"); err != nil {
		return err
	}

	// The server: a real sshd, and the web app on its localhost.
	t.sshd, err = testrig.StartSshd(ctx, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	if err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	webPort, err := t.startWebApp(ctx)
	if err != nil {
		return err
	}
	t.logf("sshd on %s; the test app on the server's localhost:%d", t.sshd.Addr, webPort)
	if t.shots != "" {
		if err := os.MkdirAll(t.shots, 0o755); err != nil {
			return err
		}
		t.startExtras(ctx)
	}

	// Porthole's home: the server saved once, its host key known.
	t.home = filepath.Join(t.tmp, "home")
	if _, err := t.sshd.WriteClientSSHConfig(filepath.Join(t.home, ".ssh", "config"), serverName); err != nil {
		return err
	}
	t.env = append(os.Environ(),
		"HOME="+t.home,
		"XDG_CONFIG_HOME="+filepath.Join(t.home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(t.home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(t.home, ".local", "state"),
		"XDG_CACHE_HOME="+filepath.Join(t.home, ".cache"),
		"SSH_AUTH_SOCK=",
		"XDG_DOWNLOAD_DIR=", // downloads go to the test HOME's ~/Downloads
		"PORTHOLE_LOG=debug",
		"DBUS_SESSION_BUS_ADDRESS=", // keyring-session.sh makes a private bus
		"LIBGL_ALWAYS_SOFTWARE=1",
	)
	store, err := profiles.Open(filepath.Join(t.home, ".config", "porthole", "profiles.json"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	prof := profiles.Profile{Name: serverName, Host: t.sshd.Host, Port: t.sshd.Port, User: t.sshd.User, SSHConfigAlias: serverName}
	if t.shots != "" {
		if prof.Forwards, err = t.shotRules(webPort); err != nil {
			return err
		}
	}
	if _, err := store.Add(prof); err != nil {
		return fmt.Errorf("save the server: %w", err)
	}

	disp, err := t.startXvfb(ctx)
	if err != nil {
		return err
	}
	t.env = append(t.env, "DISPLAY="+disp)

	// ---- First run: open the app from the URL bar. ----
	win, err := t.startPorthole(ctx, bin, keyringSession, 1)
	if err != nil {
		return err
	}
	mark := t.count()
	if err := t.keys(ctx, win, "ctrl+l"); err != nil {
		return err
	}
	appURL := fmt.Sprintf("http://%s:%d/persist", serverName, webPort)
	if err := t.xdo(ctx, "type", "--delay", "15", appURL); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "Return"); err != nil {
		return err
	}
	t.logf("typed %s into the URL bar", appURL)
	page1, rep1, err := t.waitPersist(ctx, mark, 60*time.Second)
	if err != nil {
		return t.fail(ctx, win, "first-run", err)
	}
	session := cookieValue(page1.Cookie, testrig.WebAppSessionCookie)
	q1, _ := url.ParseQuery(rep1.RawQuery)
	switch {
	case session != "":
		return fmt.Errorf("the first visit already had a session cookie (%q): the HOME is not fresh", page1.Cookie)
	case q1.Get("lsNew") != "true" || q1.Get("idbNew") != "true":
		return fmt.Errorf("the first visit found storage already there: %s", rep1.RawQuery)
	}
	session = cookieValue(rep1.Cookie, testrig.WebAppSessionCookie)
	if session == "" {
		return t.fail(ctx, win, "first-run", fmt.Errorf("the page's own request to the app carried no session cookie (Cookie: %q): the tab does not keep cookies", rep1.Cookie))
	}
	ls, idb := q1.Get("ls"), q1.Get("idb")
	if ls == "" || idb == "" || strings.HasPrefix(idb, "error") {
		return t.fail(ctx, win, "first-run", fmt.Errorf("the page could not store its values: %s", rep1.RawQuery))
	}
	t.logf("first run: cookie %s…, localStorage %s, IndexedDB %s (all new)", session[:8], ls, idb)
	time.Sleep(1500 * time.Millisecond) // let it paint (and WebKit write its storage)
	if err := t.screenshot(ctx, win, "desktop-app-tab.png", "app-tab.png"); err != nil {
		return err
	}
	if t.shots != "" {
		// Under Xvfb run 1 has no tray, and the window says so in a banner
		// (DesktopNotice.vue); dismiss it (the × at its right) so the README's
		// pictures show the page as on a desktop with a tray.
		if err := t.xdo(ctx, "mousemove", "--window", win, "1254", "102", "click", "1"); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		if err := t.serverPageShot(ctx, win); err != nil {
			return err
		}
		if err := t.dashboardAndRulesShots(ctx, win, webPort); err != nil {
			return err
		}
		if err := t.paletteShot(ctx, win); err != nil {
			return err
		}
	}
	// The first run ends the way a logout ends it: SIGTERM (the second, with Ctrl+Q).
	if err := t.terminate(ctx, win, 1); err != nil {
		return err
	}
	tabsFile, err := os.ReadFile(filepath.Join(t.home, ".config", "porthole", "tabs.json"))
	if err != nil || !strings.Contains(string(tabsFile), "/persist") {
		return fmt.Errorf("tabs.json after the quit does not hold the tab (%v): %s", err, tabsFile)
	}

	// ---- Second run: the tab comes back, logged in, with its storage. ----
	// On a session bus of the test's own, with a real notification daemon (notifyhost.go).
	if t.desk, err = t.startDesktopSession(ctx); err != nil {
		return err
	}
	defer t.desk.close()
	plainEnv := t.env
	t.env = append(append([]string{}, t.env...), "DBUS_SESSION_BUS_ADDRESS="+t.desk.addr)
	mark = t.count()
	start := time.Now()
	win, err = t.startPorthole(ctx, bin, keyringSession, 2)
	if err != nil {
		return err
	}
	page2, rep2, err := t.waitPersist(ctx, mark, 60*time.Second)
	if err != nil {
		return t.fail(ctx, win, "second-run", fmt.Errorf("the restored tab did not load by itself: %w", err))
	}
	loaded := time.Since(start)
	q2, _ := url.ParseQuery(rep2.RawQuery)
	var problems []string
	if got := cookieValue(page2.Cookie, testrig.WebAppSessionCookie); got != session {
		problems = append(problems, fmt.Sprintf("the restored page was requested with cookie %q, not the session %s", page2.Cookie, session))
	}
	if got := cookieValue(rep2.Cookie, testrig.WebAppSessionCookie); got != session {
		problems = append(problems, fmt.Sprintf("the restored page's report carried cookie %q, not the session %s", rep2.Cookie, session))
	}
	if q2.Get("ls") != ls || q2.Get("lsNew") != "false" {
		problems = append(problems, fmt.Sprintf("localStorage: the restored page read %q (new=%s), not %q", q2.Get("ls"), q2.Get("lsNew"), ls))
	}
	if q2.Get("idb") != idb || q2.Get("idbNew") != "false" {
		problems = append(problems, fmt.Sprintf("IndexedDB: the restored page read %q (new=%s), not %q", q2.Get("idb"), q2.Get("idbNew"), idb))
	}
	if len(problems) > 0 {
		return t.fail(ctx, win, "second-run", errors.New(strings.Join(problems, "; ")))
	}
	t.logf("second run: the restored tab loaded %.1f s after start, with cookie %s…, localStorage %s and IndexedDB %s (all kept)",
		loaded.Seconds(), session[:8], ls, idb)
	if err := t.keys(ctx, win, "ctrl+Tab"); err != nil { // show the restored tab
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	if err := t.screenshot(ctx, win, "desktop-restored-tab.png", ""); err != nil {
		return err
	}
	// The keyboard inside the app: Ctrl+R there reloads the app (the shell's
	// shortcut reaches the shell), and Ctrl+Q below quits from there too.
	mark = t.count()
	if err := t.xdo(ctx, "mousemove", "--window", win, "760", "520", "click", "1"); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	if err := t.keys(ctx, win, "ctrl+r"); err != nil {
		return err
	}
	if _, rep, err := t.waitPersist(ctx, mark, 20*time.Second); err != nil {
		return t.fail(ctx, win, "reload", fmt.Errorf("Ctrl+R pressed inside the app did not reload it: %w", err))
	} else if q, _ := url.ParseQuery(rep.RawQuery); q.Get("ls") != ls {
		return fmt.Errorf("after Ctrl+R the page read localStorage %q, not %q", q.Get("ls"), ls)
	}
	t.logf("Ctrl+R inside the app reloaded it; Ctrl+Q from inside the app follows")
	if err := t.browserTools(ctx, win, webPort); err != nil { // downloads, find, zoom, a flood of alerts (tools.go)
		return err
	}
	if t.shots != "" && t.jupyter != 0 {
		if err := t.jupyterShot(ctx, win); err != nil {
			return err
		}
	}
	if err := t.quit(ctx, win, 2); err != nil {
		return err
	}
	t.env = plainEnv
	t.desk.close()
	// ---- Third run: life in the background (tray, hide on close, second launch, tray Quit). ----
	if err := t.background(ctx, bin, keyringSession, disp, webPort); err != nil {
		return err
	}
	// ---- Fourth run: a background tab discarded, and back when it shows (discard.go). ----
	if err := t.discardRestore(ctx, bin, keyringSession); err != nil {
		return err
	}
	return t.checkLogs()
}

// startExtras runs real apps on the server's localhost for the README's
// screenshots (not for the assertions): Jupyter when it is installed, and a
// plain directory listing.
func (t *run) startExtras(ctx context.Context) {
	start := func(name string, args ...string) (int, bool) {
		port, err := freePort()
		if err != nil {
			return 0, false
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "PORT", strconv.Itoa(port))
		}
		cmd := exec.Command(name, args...)
		cmd.Dir = t.tmp
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			return 0, false
		}
		t.extras = append(t.extras, cmd)
		for range 200 {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
				_ = c.Close()
				return port, true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return 0, false
	}
	nb := filepath.Join(t.tmp, "project")
	_ = os.MkdirAll(nb, 0o755)
	_ = os.WriteFile(filepath.Join(nb, "README.md"), []byte("# project\n"), 0o644)
	if _, err := exec.LookPath("jupyter"); err == nil {
		if p, ok := start("jupyter", "notebook", "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port=PORT", "--notebook-dir="+nb); ok {
			t.jupyter = p
			t.logf("screenshots: Jupyter on the server's localhost:%d", p)
		}
	}
	if p, ok := start("python3", "-m", "http.server", "PORT", "--bind", "127.0.0.1", "--directory", nb); ok {
		t.logf("screenshots: a directory listing on the server's localhost:%d", p)
	}
}

// jupyterShot opens Jupyter from the URL bar (Porthole finds its token on
// the server) and takes the README's app-in-a-tab screenshot.
func (t *run) jupyterShot(ctx context.Context, win string) error {
	if err := t.keys(ctx, win, "ctrl+l"); err != nil {
		return err
	}
	if err := t.xdo(ctx, "type", "--delay", "15", fmt.Sprintf("http://%s:%d/tree", serverName, t.jupyter)); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "Return"); err != nil {
		return err
	}
	time.Sleep(6 * time.Second)
	return t.screenshot(ctx, win, "desktop-jupyter-tab.png", "app-tab.png")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startWebApp builds and runs testwebapp -requests, whose stdout carries a
// JSON line per request it receives.
func (t *run) startWebApp(ctx context.Context) (int, error) {
	bin := filepath.Join(t.tmp, "testwebapp")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/testrig/cmd/testwebapp").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build testwebapp: %w\n%s", err, out)
	}
	cmd := exec.Command(bin, "-stdin", "-requests")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start testwebapp: %w", err)
	}
	t.webapp, t.webIn = cmd, stdin
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return 0, errors.New("testwebapp printed no URL")
	}
	first := strings.TrimSpace(sc.Text())
	u, err := url.Parse(first)
	if err != nil || u.Port() == "" {
		return 0, fmt.Errorf("testwebapp printed %q, not its URL", first)
	}
	port, _ := strconv.Atoi(u.Port())
	t.webDone = make(chan struct{})
	go func() { // ends when testwebapp exits (cleanup closes its stdin)
		defer close(t.webDone)
		for sc.Scan() {
			var r testrig.RequestRecord
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				t.mu.Lock()
				t.records = append(t.records, r)
				t.mu.Unlock()
			}
		}
	}()
	return port, nil
}

func (t *run) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.records)
}

// waitPersist waits for a /persist page request after the first `from`
// records, and the page's report after it.
func (t *run) waitPersist(ctx context.Context, from int, timeout time.Duration) (page, report testrig.RequestRecord, err error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		t.mu.Lock()
		recs := append([]testrig.RequestRecord(nil), t.records[from:]...)
		t.mu.Unlock()
		pageAt := -1
		for i, r := range recs {
			if r.Path == "/persist" && pageAt < 0 {
				pageAt = i
			}
			if r.Path == "/persist/report" && pageAt >= 0 {
				return recs[pageAt], r, nil
			}
		}
		select {
		case <-ctx.Done():
			return page, report, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.mu.Lock()
	var seen []string
	for _, r := range t.records[from:] {
		seen = append(seen, r.Path)
	}
	t.mu.Unlock()
	return page, report, fmt.Errorf("no /persist page and report reached the app within %s (it saw %v)", timeout, seen)
}

func cookieValue(header, name string) string {
	for _, part := range strings.Split(header, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == name {
			return v
		}
	}
	return ""
}

// clearStaleX removes display n's lock and socket when the X server that
// took them is gone (an Xvfb killed by SIGKILL, as Pdeathsig does, leaves
// both): else every such run would use up a display number for good.
func clearStaleX(tmp string, n int) {
	lock := filepath.Join(tmp, fmt.Sprintf(".X%d-lock", n))
	b, err := os.ReadFile(lock)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return // not a lock this code understands: leave it
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return // its server still runs
	}
	_ = os.Remove(filepath.Join(tmp, ".X11-unix", fmt.Sprintf("X%d", n)))
	_ = os.Remove(lock)
}

func (t *run) startXvfb(ctx context.Context) (string, error) {
	for n := 91; n <= 140; n++ {
		clearStaleX("/tmp", n)
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		disp := fmt.Sprintf(":%d", n)
		cmd := exec.Command("Xvfb", disp, "-screen", "0", "1366x860x24", "-nolisten", "tcp")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return "", fmt.Errorf("start Xvfb: %w", err)
		}
		// The display is ours once its lock names our Xvfb: another test
		// may have taken the number a moment before (ours then exits), and
		// its socket is not ours to drive.
		ours := false
		for range 100 {
			_, serr := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
			if pid, err := xLockPID(n); err == nil && pid == cmd.Process.Pid && serr == nil {
				ours = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !ours {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			continue
		}
		t.xvfb = cmd
		return disp, nil
	}
	return "", errors.New("no free X display number between :91 and :140 (or Xvfb did not come up on one within 5 s)")
}

// xLockPID is the process named in display n's lock file.
func xLockPID(n int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/tmp/.X%d-lock", n))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("display :%d's lock file holds %q, not a process id", n, b)
	}
	return pid, nil
}

// startPorthole runs porthole (which execs porthole-desktop) in a private
// D-Bus session with an unlocked gnome-keyring, and waits for its window and
// for the UI to say it rendered.
func (t *run) startPorthole(ctx context.Context, bin, keyringSession string, n int) (string, error) {
	t.appLog = filepath.Join(t.out, fmt.Sprintf("desktop-persist-run%d.log", n))
	logf, err := os.Create(t.appLog)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command("sh", keyringSession, bin)
	cmd.Env = t.env
	cmd.Dir = t.home
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // its own group: cleanup stops all of it
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start porthole: %w", err)
	}
	t.app = cmd
	var win string
	for time.Since(start) < 20*time.Second {
		out, _ := t.xdotool(ctx, "search", "--onlyvisible", "--name", "^Porthole$")
		if f := strings.Fields(string(out)); len(f) > 0 {
			win = f[0]
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if win == "" {
		log, _ := os.ReadFile(t.appLog)
		return "", fmt.Errorf("run %d: no window titled Porthole within 20 s; its log:\n%s", n, log)
	}
	winAt := time.Since(start)
	for time.Since(start) < 30*time.Second {
		if log, _ := os.ReadFile(t.appLog); strings.Contains(string(log), "ui ready") {
			t.logf("run %d: window after %d ms, UI ready after %d ms", n, winAt.Milliseconds(), time.Since(start).Milliseconds())
			// Keyboard focus to the window (there is no window manager under Xvfb).
			if err := t.xdo(ctx, "windowfocus", "--sync", win); err != nil {
				return "", err
			}
			time.Sleep(300 * time.Millisecond)
			return win, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(t.appLog)
	return "", fmt.Errorf("run %d: the UI never said it rendered; its log:\n%s", n, log)
}

// xdotool runs xdotool on the test's display; its stderr goes into the error.
func (t *run) xdotool(ctx context.Context, args ...string) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "xdotool", args...)
	cmd.Env = t.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("xdotool %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func (t *run) xdo(ctx context.Context, args ...string) error {
	_, err := t.xdotool(ctx, args...)
	return err
}

// keys presses keys in the focused window (XTEST, like a keyboard).
func (t *run) keys(ctx context.Context, win string, keys ...string) error {
	if err := t.xdo(ctx, "windowfocus", "--sync", win); err != nil {
		return err
	}
	return t.xdo(ctx, append([]string{"key", "--clearmodifiers"}, keys...)...)
}

// serverPageShot clicks the server in the sidebar (its page lists the apps
// found on it), waits for the scan, and takes the README's screenshot.
func (t *run) serverPageShot(ctx context.Context, win string) error {
	// The sidebar's first server row (see AppSidebar.vue): below "This computer".
	if err := t.xdo(ctx, "mousemove", "--window", win, "100", "167", "click", "1"); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the page scans the server and probes its ports
	return t.screenshot(ctx, win, "desktop-server-apps.png", "start-page.png")
}

// screenshot captures the window into the artifacts (name) and, with
// -shots, the README's screenshot (readme, if not "").
func (t *run) screenshot(ctx context.Context, win, name, readme string) error {
	g, err := t.windowGeometry(ctx, win)
	if err != nil {
		return fmt.Errorf("window geometry: %w", err)
	}
	path := filepath.Join(t.out, name)
	crop := fmt.Sprintf("%dx%d+%d+%d", g.w, g.h, g.x, g.y)
	cmd := exec.CommandContext(ctx, "/usr/bin/import", "-window", "root", "-crop", crop, "+repage", path)
	cmd.Env = t.env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("screenshot: %w: %s", err, b)
	}
	t.logf("screenshot %s", path)
	if readme != "" && t.shots != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(t.shots, readme), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// quit presses Ctrl+Q and waits for Porthole to exit by itself.
func (t *run) quit(ctx context.Context, win string, n int) error {
	if err := t.keys(ctx, win, "ctrl+q"); err != nil {
		return err
	}
	return t.waitExit(ctx, n, "Ctrl+Q")
}

// waitExit waits for Porthole to exit cleanly after how.
func (t *run) waitExit(ctx context.Context, n int, how string) error {
	app := t.app
	done := make(chan error, 1)
	go func() { done <- app.Wait() }()
	var timeout error
	select {
	case err := <-done:
		t.app = nil
		if err != nil {
			log, _ := os.ReadFile(t.appLog)
			return fmt.Errorf("run %d: Porthole exited with %v after %s; its log:\n%s", n, err, how, log)
		}
		t.logf("run %d: %s closed Porthole", n, how)
		return nil
	case <-time.After(20 * time.Second):
		timeout = fmt.Errorf("run %d: Porthole was still running 20 s after %s", n, how)
	case <-ctx.Done():
		timeout = ctx.Err()
	}
	// Wait is already being called: stop the group here rather than in cleanup.
	_ = syscall.Kill(-app.Process.Pid, syscall.SIGKILL)
	<-done
	t.app = nil
	return timeout
}

// terminate sends SIGTERM to the window's process (as a session logout
// does) and waits for Porthole to close by itself, saying why.
func (t *run) terminate(ctx context.Context, win string, n int) error {
	out, err := t.xdotool(ctx, "getwindowpid", win)
	if err != nil {
		return fmt.Errorf("the window's pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("the window's pid: %q", out)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM to %d: %w", pid, err)
	}
	if err := t.waitExit(ctx, n, "SIGTERM"); err != nil {
		return err
	}
	log, _ := os.ReadFile(t.appLog)
	if !strings.Contains(string(log), "quitting on a signal") {
		return fmt.Errorf("run %d: Porthole exited on SIGTERM without closing the window itself; its log:\n%s", n, log)
	}
	// Wails' own handler prints this; it quit a second time, after GTK's main
	// loop had ended, and the window crashed in about 1 run in 4.
	if strings.Contains(string(log), "Ctrl+C detected") {
		return fmt.Errorf("run %d: Wails' signal handler ran as well as Porthole's (a second quit); its log:\n%s", n, log)
	}
	return nil
}

// fail keeps a screenshot of the window for the failure report.
func (t *run) fail(ctx context.Context, win, what string, err error) error {
	_ = t.screenshot(ctx, win, "failed-desktop-persist-"+what+".png", "")
	log, _ := os.ReadFile(t.appLog)
	return fmt.Errorf("%w\nPorthole's log (%s):\n%s", err, t.appLog, log)
}

func (t *run) checkLogs() error {
	for n := 1; n <= 4; n++ {
		log, err := os.ReadFile(filepath.Join(t.out, fmt.Sprintf("desktop-persist-run%d.log", n)))
		if err != nil {
			return err
		}
		for _, bad := range []string{"panic:", "fatal error:", "cannot keep the window's cookies on disk"} {
			if strings.Contains(string(log), bad) {
				return fmt.Errorf("run %d logged %q:\n%s", n, bad, log)
			}
		}
	}
	return nil
}

// stopGroup stops a command started in a process group of its own:
// SIGTERM to the group, SIGKILL after 5 s.
func stopGroup(c *exec.Cmd) {
	if c == nil || c.Process == nil {
		return
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (t *run) cleanup() {
	stopGroup(t.app)
	for _, c := range t.extras {
		stopGroup(c)
	}
	if t.xvfb != nil && t.xvfb.Process != nil {
		// SIGTERM: Xvfb then removes its lock and socket (SIGKILL leaves them).
		_ = t.xvfb.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = t.xvfb.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = t.xvfb.Process.Kill()
			<-done
		}
	}
	if t.webIn != nil {
		_ = t.webIn.Close()
	}
	if t.webapp != nil {
		// Its stdout ends when it exits (stdin closed); read it all before Wait.
		if t.webDone != nil {
			select {
			case <-t.webDone:
			case <-time.After(5 * time.Second):
				_ = t.webapp.Process.Kill()
				<-t.webDone
			}
		}
		_ = t.webapp.Wait()
	}
	if t.sshd != nil {
		_ = t.sshd.Close()
	}
	if t.tmp != "" {
		_ = os.RemoveAll(t.tmp)
	}
}
