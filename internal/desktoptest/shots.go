package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// paletteShot opens the command palette with Ctrl+K, types a few letters
// (the server's name), screenshots it (the README's palette.png), and closes
// it with Escape.
func (t *run) paletteShot(ctx context.Context, win string) error {
	// Scrolled to the top first, so the page behind it is the server's.
	if err := t.xdo(ctx, "mousemove", "--window", win, "760", "500", "click", "--repeat", "6", "--delay", "60", "4"); err != nil {
		return err
	}
	if err := t.keys(ctx, win, "ctrl+k"); err != nil {
		return err
	}
	// WebKitGTK under Xvfb paints late (over a second at times): wait well.
	time.Sleep(2 * time.Second)
	if err := t.xdo(ctx, "type", "--delay", "60", "lab"); err != nil {
		return err
	}
	time.Sleep(2500 * time.Millisecond)
	if err := t.screenshot(ctx, win, "desktop-palette.png", "palette.png"); err != nil {
		return err
	}
	return t.keys(ctx, win, "Escape")
}
