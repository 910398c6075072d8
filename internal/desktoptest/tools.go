package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// What a browser tab does besides showing a page (issue 15), in the Linux
// window's app views, driven with the keyboard as a user would:
//
//   - downloads: the test app's attachment, opened twice from the URL bar,
//     lands in the test HOME's XDG download folder as porthole-export.csv
//     and then "porthole-export (1).csv" (never overwritten), with nothing
//     half-written left behind, and the list published to the shell says so;
//     "Show in folder" in the list, and a click on the notification a real
//     notification daemon (dunst) shows, ask the file manager
//     (org.freedesktop.FileManager1.ShowItems) to show the file; dunst
//     received "Download finished" for each, naming the file and its folder;
//   - find: Ctrl+F inside the app, then the word: the bar is told "1 of 7",
//     Enter makes it "2 of 7", Shift+Enter back to 1 and round to 7 of 7;
//   - zoom: Ctrl+plus twice and Ctrl+minus once inside the app: the level
//     changes and is kept for the app (appzoom.json);
//   - uploads: a click on the page's file input opens the GTK file chooser;
//     a path typed there (Ctrl+L) reaches the page as the chosen file;
//   - print: Ctrl+P in the app opens the print dialog;
//   - basic auth: the sign-in is Porthole's question in the tab, and what
//     is typed there signs the page in;
//   - a page calling alert() 100 times in a loop: each shows in the tab, the
//     third offers "Stop dialogs from this page", and after it the loop ends
//     at once (the page reports all 100 returned) while the window opens
//     another page as usual.
func (t *run) browserTools(ctx context.Context, win string, webPort int) error {
	dlDir := filepath.Join(t.home, "Downloads")
	base := fmt.Sprintf("http://%s:%d", serverName, webPort)

	// ---- downloads ----
	for i, want := range []string{testrig.WebAppDownloadName, "porthole-export (1).csv"} {
		// A query of its own each time: the same address again would only show the tab.
		if err := t.openURL(ctx, win, fmt.Sprintf("%s/tools/download?n=%d", base, i+1)); err != nil {
			return err
		}
		if err := t.waitFile(ctx, filepath.Join(dlDir, want), 30*time.Second); err != nil {
			return t.fail(ctx, win, "download", fmt.Errorf("download %d: %w", i+1, err))
		}
		if b, err := os.ReadFile(filepath.Join(dlDir, want)); err != nil || string(b) != testrig.WebAppDownloadBody {
			return fmt.Errorf("download %d: %s holds %q (%v), not the test app's CSV", i+1, want, b, err)
		}
		if err := t.waitLog(ctx, `download saved.*`+regexp.QuoteMeta(want), 10*time.Second); err != nil {
			return t.fail(ctx, win, "download", err)
		}
	}
	ents, err := os.ReadDir(dlDir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 {
		return fmt.Errorf("the download folder holds %v; want the two downloads and nothing half-written", names)
	}
	t.logf("downloads: %v in %s (the second did not overwrite the first)", names, dlDir)
	time.Sleep(800 * time.Millisecond) // the list opened by itself on the new download
	if err := t.showInFolder(ctx, win, t.desk, filepath.Join(dlDir, "porthole-export (1).csv"), filepath.Join(dlDir, testrig.WebAppDownloadName)); err != nil {
		return t.fail(ctx, win, "show-in-folder", err)
	}
	if err := t.checkDownloadNotices(ctx, t.desk, dlDir, []string{testrig.WebAppDownloadName, "porthole-export (1).csv"}); err != nil {
		return t.fail(ctx, win, "download-notification", err)
	}
	if err := t.screenshot(ctx, win, "desktop-downloads.png", "downloads.png"); err != nil {
		return err
	}

	// ---- find in page ----
	mark := t.count()
	if err := t.openURL(ctx, win, base+"/tools"); err != nil {
		return err
	}
	if err := t.waitPath(ctx, mark, "/tools", 30*time.Second); err != nil {
		return t.fail(ctx, win, "find", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := t.clickApp(ctx, win); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "ctrl+f"); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if err := t.xdo(ctx, "type", "--delay", "20", testrig.WebAppFindWord); err != nil {
		return err
	}
	// Each letter typed is a search; the view reports on the last a moment later.
	if err := t.waitLogQuiet(ctx, `msg="find in page" `, time.Second, 15*time.Second); err != nil {
		return t.fail(ctx, win, "find", err)
	}
	// What the view tells the shell's bar ("n of m") is in the log; which
	// line the match WebKit selected is in, the page reports
	// (/tools/selected): the two must agree.
	n := testrig.WebAppFindCount
	for _, st := range []struct {
		key  string // "": the search itself
		want int
	}{{"", 1}, {"Return", 2}, {"shift+Return", 1}, {"shift+Return", n}} {
		pattern := fmt.Sprintf(`find in page.*matches=%d current=%d `, n, st.want)
		seen, from, what := 0, mark, "the search" // the search: since the page loaded
		if st.key != "" {
			seen, _ = t.logCount(pattern)
			from, what = t.count(), st.key+" in the find bar"
			if err := t.keys(ctx, win, st.key); err != nil { // the bar has the keyboard
				return err
			}
		}
		if err := t.waitLogCount(ctx, pattern, seen+1, 15*time.Second); err != nil {
			return t.fail(ctx, win, "find", fmt.Errorf("after %s the bar was not told \"%d of %d\": %w", what, st.want, n, err))
		}
		if err := t.waitSelected(ctx, from, st.want, 15*time.Second); err != nil {
			return t.fail(ctx, win, "find", fmt.Errorf("after %s the bar says \"%d of %d\": %w", what, st.want, n, err))
		}
		if st.key == "Return" {
			time.Sleep(300 * time.Millisecond)
			if err := t.screenshot(ctx, win, "desktop-find.png", ""); err != nil {
				return err
			}
		}
	}
	t.logf("find: Ctrl+F in the app, %q: the bar showed 1 of %d, Enter 2 of %d, Shift+Enter 1 and then (wrapping) %d of %d, each the match the page had selected",
		testrig.WebAppFindWord, n, n, n, n)
	if err := t.keys(ctx, win, "Escape"); err != nil {
		return err
	}

	// ---- zoom, kept per app ----
	if err := t.clickApp(ctx, win); err != nil {
		return err
	}
	zoomFile := filepath.Join(t.home, ".config", "porthole", "appzoom.json")
	for _, step := range []struct {
		key  string
		want float64
	}{{"ctrl+plus", 1.1}, {"ctrl+plus", 1.25}, {"ctrl+minus", 1.1}} {
		if err := t.keys(ctx, win, step.key); err != nil {
			return err
		}
		if err := t.waitZoom(ctx, zoomFile, step.want, 10*time.Second); err != nil {
			return t.fail(ctx, win, "zoom", fmt.Errorf("after %s: %w", step.key, err))
		}
	}
	t.logf("zoom: Ctrl+plus, Ctrl+plus, Ctrl+minus inside the app: 110 %%, kept in %s", zoomFile)

	// ---- print: Ctrl+P in the app (still /tools) opens GTK's print dialog ----
	if err := t.clickApp(ctx, win); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "ctrl+p"); err != nil {
		return err
	}
	var printWin string
	if err := poll(ctx, 20*time.Second, func() error {
		out, err := t.xdotool(ctx, "search", "--onlyvisible", "--name", "^Print$")
		if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
			printWin = f[0]
			return nil
		}
		return errors.New("no print dialog (\"Print\") opened within 20 s of Ctrl+P in the app")
	}); err != nil {
		return t.fail(ctx, win, "print", err)
	}
	if err := t.xdo(ctx, "windowfocus", "--sync", printWin); err != nil {
		return err
	}
	if err := t.xdo(ctx, "key", "--clearmodifiers", "Escape"); err != nil {
		return err
	}
	t.logf("print: Ctrl+P in the app opened the print dialog")
	time.Sleep(500 * time.Millisecond)

	// ---- uploads: the page's file input opens the GTK file chooser ----
	upload := filepath.Join(t.home, "Downloads", testrig.WebAppDownloadName)
	mark = t.count()
	if err := t.openURL(ctx, win, base+"/tools/upload"); err != nil {
		return err
	}
	if err := t.waitPath(ctx, mark, "/tools/upload", 30*time.Second); err != nil {
		return t.fail(ctx, win, "upload", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := t.clickApp(ctx, win); err != nil {
		return err
	}
	var chooser string
	if err := poll(ctx, 15*time.Second, func() error {
		out, err := t.xdotool(ctx, "search", "--onlyvisible", "--name", "^Select File")
		if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
			chooser = f[0]
			return nil
		}
		return errors.New("no file chooser window (\"Select File\") opened within 15 s of a click on the page's file input")
	}); err != nil {
		return t.fail(ctx, win, "upload", err)
	}
	if err := t.xdo(ctx, "windowfocus", "--sync", chooser); err != nil {
		return err
	}
	// The chooser reads its keys only once it is drawn; under load that
	// takes a while (typed too early, the path lands in its search).
	time.Sleep(1500 * time.Millisecond)
	if err := t.xdo(ctx, "key", "--clearmodifiers", "ctrl+l"); err != nil {
		return err
	}
	time.Sleep(800 * time.Millisecond)
	if err := t.xdo(ctx, "type", "--delay", "15", upload); err != nil {
		return err
	}
	time.Sleep(800 * time.Millisecond)
	if err := t.xdo(ctx, "key", "--clearmodifiers", "Return"); err != nil {
		return err
	}
	want := fmt.Sprintf("name=%s&size=%d", testrig.WebAppDownloadName, len(testrig.WebAppDownloadBody))
	if err := t.waitPathQuery(ctx, mark, "/tools/upload/done", want, 20*time.Second); err != nil {
		return t.fail(ctx, win, "upload", fmt.Errorf("the file chosen in the GTK file chooser did not reach the page: %w", err))
	}
	t.logf("upload: the page's file input opened the GTK file chooser, and the file chosen there reached the page")

	// ---- HTTP basic auth: Porthole's own question in the tab ----
	mark = t.count()
	if err := t.openURL(ctx, win, base+"/tools/auth"); err != nil {
		return err
	}
	if err := t.waitLog(ctx, `msg="page dialog" .*kind=auth`, 30*time.Second); err != nil {
		return t.fail(ctx, win, "auth", fmt.Errorf("no sign-in question for the app's basic auth: %w", err))
	}
	time.Sleep(800 * time.Millisecond) // the shell draws it; the user name field has the keyboard
	if err := t.xdo(ctx, "type", "--delay", "15", testrig.WebAppAuthUser); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "Tab"); err != nil {
		return err
	}
	if err := t.xdo(ctx, "type", "--delay", "15", testrig.WebAppAuthPassword); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "Return"); err != nil {
		return err
	}
	if err := t.waitPath(ctx, mark, "/tools/auth/ok", 20*time.Second); err != nil {
		return t.fail(ctx, win, "auth", fmt.Errorf("the credentials typed into Porthole's question did not sign the page in: %w", err))
	}
	t.logf("auth: the app's basic auth was Porthole's question in the tab, and the typed credentials signed the page in")

	// ---- a page that floods the window with alerts ----
	mark = t.count()
	if err := t.openURL(ctx, win, base+"/tools/alerts?n=100"); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		if err := t.waitLogCount(ctx, `msg="page dialog" `, i, 30*time.Second); err != nil {
			return t.fail(ctx, win, "dialogs", fmt.Errorf("alert %d never showed: %w", i, err))
		}
		time.Sleep(700 * time.Millisecond) // the shell draws it and focuses its OK button
		if i < 3 {
			if err := t.keys(ctx, win, "Return"); err != nil {
				return err
			}
			continue
		}
		if err := t.waitLog(ctx, `msg="page dialog" .*flood=true`, 5*time.Second); err != nil {
			return t.fail(ctx, win, "dialogs", fmt.Errorf("the third alert in a row did not offer to stop them: %w", err))
		}
		if t.shots != "" {
			_ = t.screenshot(ctx, win, "desktop-dialog-flood.png", "")
		}
		// OK has the focus; "Stop dialogs from this page" is before Cancel/OK.
		if err := t.keys(ctx, win, "shift+Tab", "Return"); err != nil {
			return err
		}
	}
	if err := t.waitPathQuery(ctx, mark, "/tools/alerts/done", "n=100", 30*time.Second); err != nil {
		return t.fail(ctx, win, "dialogs", fmt.Errorf("after Stop, the page's loop of alerts did not run to its end: %w", err))
	}
	// The window is as usable as before: the URL bar opens another page.
	mark = t.count()
	if err := t.openURL(ctx, win, base+"/tools"); err != nil {
		return err
	}
	if err := t.waitPath(ctx, mark, "/tools", 30*time.Second); err != nil {
		return t.fail(ctx, win, "dialogs", fmt.Errorf("the window did not open a page after the flood: %w", err))
	}
	t.logf("dialogs: 100 alerts in a loop; the third offered Stop, the loop then ended, and the window opened another page")
	// Back to /persist: the next run restores this tab and checks that page.
	mark = t.count()
	if err := t.openURL(ctx, win, base+"/persist"); err != nil {
		return err
	}
	if _, _, err := t.waitPersist(ctx, mark, 30*time.Second); err != nil {
		return t.fail(ctx, win, "tools-end", err)
	}
	return nil
}

// openURL types url into the URL bar (Ctrl+L) and opens it.
func (t *run) openURL(ctx context.Context, win, url string) error {
	// Pressed in an app view, Ctrl+L reaches the shell through the backend,
	// which then takes the keyboard: keys typed before that go to the app.
	// So a second Ctrl+L, once the shell has it, selects the bar's text.
	for range 2 {
		if err := t.keys(ctx, win, "ctrl+l"); err != nil {
			return err
		}
		time.Sleep(600 * time.Millisecond)
	}
	if err := t.xdo(ctx, "type", "--delay", "15", url); err != nil {
		return err
	}
	return t.keys(ctx, win, "Return")
}

// clickApp gives the app view the keyboard (a click in the middle of it).
func (t *run) clickApp(ctx context.Context, win string) error {
	if err := t.xdo(ctx, "mousemove", "--window", win, "760", "520", "click", "1"); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	return nil
}

func (t *run) waitFile(ctx context.Context, path string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s did not appear within %s: %w", path, timeout, err)
		}
		return nil
	})
}

func (t *run) waitLog(ctx context.Context, pattern string, timeout time.Duration) error {
	return t.waitLogCount(ctx, pattern, 1, timeout)
}

// waitLogCount waits for n lines of the running Porthole's log to match.
func (t *run) waitLogCount(ctx context.Context, pattern string, n int, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		if got, _ := t.logCount(pattern); got < n {
			return fmt.Errorf("Porthole's log has %d lines matching %q within %s; want %d", got, pattern, timeout, n)
		}
		return nil
	})
}

// waitLogQuiet waits until lines matching pattern have been logged and no
// more came for quiet.
func (t *run) waitLogQuiet(ctx context.Context, pattern string, quiet, timeout time.Duration) error {
	last, since := -1, time.Now()
	return poll(ctx, timeout, func() error {
		n, _ := t.logCount(pattern)
		if n != last {
			last, since = n, time.Now()
		}
		if n == 0 || time.Since(since) < quiet {
			return fmt.Errorf("Porthole's log had %d lines matching %q and still more within %s; want them to stop for %s", n, pattern, timeout, quiet)
		}
		return nil
	})
}

// logCount is how many lines of the running Porthole's log match pattern.
func (t *run) logCount(pattern string) (int, error) {
	b, err := os.ReadFile(t.appLog)
	return len(regexp.MustCompile(pattern).FindAllIndex(b, -1)), err
}

func (t *run) waitPath(ctx context.Context, from int, path string, timeout time.Duration) error {
	return t.waitPathQuery(ctx, from, path, "", timeout)
}

// waitPathQuery waits for a request to path (with query, if not "") after
// the first `from` records.
func (t *run) waitPathQuery(ctx context.Context, from int, path, query string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		var seen []string
		for _, r := range t.records[from:] {
			if r.Path == path && (query == "" || strings.Contains(r.RawQuery, query)) {
				return nil
			}
			seen = append(seen, r.Path+"?"+r.RawQuery)
		}
		return fmt.Errorf("no request for %s?%s within %s (the app saw %v)", path, query, timeout, seen)
	})
}

// waitSelected waits for the last line /tools reported selected after the
// first `from` records to be line.
func (t *run) waitSelected(ctx context.Context, from, line int, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		last := ""
		for _, r := range t.records[from:] {
			if r.Path == "/tools/selected" {
				last = r.RawQuery
			}
		}
		if last != fmt.Sprintf("line=%d", line) {
			return fmt.Errorf("the page's selected match is not on line %d within %s (its last report: %q)", line, timeout, last)
		}
		return nil
	})
}

// waitZoom waits for appzoom.json to hold exactly one app at level want.
func (t *run) waitZoom(ctx context.Context, file string, want float64, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		var doc struct {
			Levels map[string]float64 `json:"levels"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if len(doc.Levels) != 1 {
			return fmt.Errorf("%s holds %v; want one app at %v", file, doc.Levels, want)
		}
		for _, v := range doc.Levels {
			if v != want {
				return fmt.Errorf("%s holds %v; want %v", file, doc.Levels, want)
			}
		}
		return nil
	})
}

// poll runs f every 100 ms until it returns nil or timeout passes (its
// last error).
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
