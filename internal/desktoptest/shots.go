package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/porthole-app/porthole/backend/profiles"
)

// README screenshots beyond the window's first pages (-shots only; the
// normal `make test` run does none of this).

// shotRules are the server's saved rules for the screenshots: a -L rule to
// the test app on the server's localhost and a -D rule (SOCKS), both on
// fixed local ports so the test can send traffic through them.
func (t *run) shotRules(webPort int) ([]profiles.ForwardRule, error) {
	var err error
	if t.ruleL, err = freePort(); err != nil {
		return nil, err
	}
	if t.ruleD, err = freePort(); err != nil {
		return nil, err
	}
	return []profiles.ForwardRule{
		{ID: profiles.NewID(), Kind: profiles.ForwardLocal, Label: "test app", LocalHost: "127.0.0.1", LocalPort: t.ruleL, RemotePort: webPort},
		{ID: profiles.NewID(), Kind: profiles.ForwardDynamic, Label: "SOCKS proxy", LocalHost: "127.0.0.1", LocalPort: t.ruleD},
	}, nil
}

// dashboardAndRulesShots sends some requests through the saved rules (so
// the dashboard's counters and sparkline are not zero), then takes the
// server page's dashboard and, scrolled down, its saved rules.
func (t *run) dashboardAndRulesShots(ctx context.Context, win string, webPort int) error {
	direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	socks := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             http.ProxyURL(&url.URL{Scheme: "socks5", Host: fmt.Sprintf("127.0.0.1:%d", t.ruleD)}),
	}}
	get := func(c *http.Client, u string) error {
		resp, err := c.Get(u)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	viaL := fmt.Sprintf("http://127.0.0.1:%d/", t.ruleL)
	viaD := fmt.Sprintf("http://127.0.0.1:%d/", webPort) // the server's localhost, through SOCKS
	var failed error
	for round := range 8 {
		for range 2 + round%4*3 {
			if err := get(direct, viaL); err != nil {
				failed = fmt.Errorf("a request through the -L rule (%s): %w", viaL, err)
			}
			if err := get(socks, viaD); err != nil {
				failed = fmt.Errorf("a request through the -D rule (SOCKS 127.0.0.1:%d): %w", t.ruleD, err)
			}
		}
		time.Sleep(600 * time.Millisecond)
	}
	if failed != nil {
		return t.fail(ctx, win, "shots-traffic", failed)
	}
	// One connection left open through each rule, so "open" is not zero.
	keepL, keepD := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: fmt.Sprintf("127.0.0.1:%d", t.ruleD)}),
	}}
	_ = get(keepL, viaL)
	_ = get(keepD, viaD)
	defer keepL.CloseIdleConnections()
	defer keepD.CloseIdleConnections()
	// Some traffic while the pictures are taken, so "now" is not zero.
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			_ = get(direct, viaL)
			_ = get(socks, viaD)
		}
	}()
	defer func() { close(stop); <-trickled }()
	time.Sleep(2500 * time.Millisecond) // the dashboard polls its stats
	if err := t.screenshot(ctx, win, "desktop-server-dashboard.png", "server-dashboard.png"); err != nil {
		return err
	}
	// Scroll the page down to the saved rules (wheel clicks over the page).
	if err := t.xdo(ctx, "mousemove", "--window", win, "760", "500", "click", "--repeat", "6", "--delay", "60", "5"); err != nil {
		return err
	}
	time.Sleep(1200 * time.Millisecond)
	return t.screenshot(ctx, win, "desktop-server-rules.png", "server-rules.png")
}

// trayMenuShot draws the tray menu Porthole publishes over D-Bus (read with
// com.canonical.dbusmenu GetLayout: labels, separators, disabled items,
// submenus) as an HTML menu, and screenshots it with headless Chromium.
// There is no tray host under Xvfb to draw it; this is the test's drawing
// of the real menu model, the server's submenu shown open. Without
// chromium it says so and skips the picture.
func (t *run) trayMenuShot(ctx context.Context, menu menuItem) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.logf("screenshots: no chromium (scripts/deps.sh test installs it): skipping tray-menu-model.png")
		return
	}
	if err := t.drawMenu(ctx, chromium, menu); err != nil {
		t.logf("screenshots: could not draw the tray menu (skipping tray-menu-model.png): %v", err)
	}
}

func (t *run) drawMenu(ctx context.Context, chromium string, menu menuItem) error {
	var open *menuItem
	var b strings.Builder
	list := func(m menuItem, top bool) {
		b.WriteString(`<div class="menu">`)
		for i, c := range m.children {
			if !c.visible {
				continue
			}
			if c.separator {
				b.WriteString(`<div class="sep"></div>`)
				continue
			}
			cls := "item"
			if !c.enabled {
				cls += " off"
			}
			hasSub := false
			for _, k := range c.children {
				if k.visible {
					hasSub = true
				}
			}
			if top && hasSub && open == nil {
				open = &m.children[i]
				cls += " hover"
			}
			b.WriteString(`<div class="` + cls + `"><span>` + html.EscapeString(c.label) + `</span>`)
			if hasSub {
				b.WriteString(`<span class="arrow">›</span>`)
			}
			b.WriteString(`</div>`)
		}
		b.WriteString(`</div>`)
	}
	list(menu, true)
	if open != nil {
		list(*open, false)
	}
	page := `<!doctype html><meta charset="utf-8"><style>
html,body{margin:0;background:#d9dee4}
body{padding:24px;display:flex;align-items:flex-start;font:14px/1 "Cantarell","Noto Sans","DejaVu Sans",sans-serif;color:#1e1e1e}
.menu{background:#fff;border:1px solid #c7ccd2;border-radius:8px;box-shadow:0 3px 10px rgba(0,0,0,.18);padding:5px 0;min-width:220px}
.menu+.menu{margin-left:-4px;margin-top:60px}
.item{display:flex;justify-content:space-between;align-items:center;gap:24px;padding:7px 16px 7px 14px;white-space:nowrap}
.item.off{color:#8a8f95}
.item.hover{background:#e3e8ef}
.arrow{color:#555;font-size:16px}
.sep{height:1px;background:#e1e4e8;margin:5px 0}
</style><body>` + b.String() + `</body>`
	dir := filepath.Join(t.tmp, "traymenu")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	htmlPath := filepath.Join(dir, "menu.html")
	if err := os.WriteFile(htmlPath, []byte(page), 0o644); err != nil {
		return err
	}
	raw := filepath.Join(dir, "raw.png")
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--window-size=900,700", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+raw, "file://"+htmlPath)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chromium --screenshot: %w: %s", err, out)
	}
	path := filepath.Join(t.out, "desktop-tray-menu-model.png")
	// Crop to the menu, with a margin of the background around it.
	if out, err := exec.CommandContext(cctx, "convert", raw, "-fuzz", "1%", "-trim", "+repage",
		"-bordercolor", "#d9dee4", "-border", "20", path).CombinedOutput(); err != nil {
		return fmt.Errorf("convert: %w: %s", err, out)
	}
	t.logf("screenshot %s (the tray menu as Porthole publishes it over D-Bus, drawn by the test)", path)
	b2, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(t.shots, "tray-menu-model.png"), b2, 0o644)
}
