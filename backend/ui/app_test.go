package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/desktop"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/settings"
)

func TestSetThemeValidatesAndPublishes(t *testing.T) {
	bus := events.New()
	app, _ := New(Options{Mode: ModeServe, Bus: bus})
	if _, err := app.SetTheme("purple"); err == nil || !errors.Is(err, apperr.ErrBadInput) || !strings.Contains(err.Error(), `"system", "light" or "dark"`) {
		t.Fatalf("SetTheme(purple) err = %v", err)
	}
	s, err := app.SetTheme("dark")
	if err != nil || s.Theme != settings.ThemeDark {
		t.Fatalf("SetTheme(dark) = %+v, %v", s, err)
	}
	snap := bus.Snapshot()
	if len(snap) != 1 || snap[0].Topic != settings.Topic.Name() || snap[0].Data.(settings.Settings).Theme != settings.ThemeDark {
		t.Fatalf("snapshot = %+v; want the settings event", snap)
	}
	b, _ := json.Marshal(snap[0].Data)
	if want := `{"theme":"dark","inspector":false,"notify":{"serverDown":true,"needsYou":true,"agentCrash":true,"newApp":true},"hideOnClose":true,"startHidden":true,"defaults":{"pingThresholdSec":30,"idleTimeoutSec":0,"poolSize":0,"loopbackPerServer":true,"cookiesPerApp":true},"tabDiscardSec":1800}`; string(b) != want {
		t.Fatalf("settings JSON = %s; want %s", b, want)
	}
	if _, err := app.SetNotification("sometimes", true); !errors.Is(err, apperr.ErrBadInput) {
		t.Fatalf("SetNotification(sometimes) err = %v; want bad input", err)
	}
	if s, err := app.SetNotification("new-app", false); err != nil || s.Notify.NewApp || !s.Notify.NeedsYou {
		t.Fatalf("SetNotification(new-app, false) = %+v, %v", s.Notify, err)
	}
	if got, _ := events.Latest(bus, settings.Topic); got.Notify.NewApp {
		t.Fatalf("the settings event still has new-app on: %+v", got.Notify)
	}
}

// TestServerDefaultsAndStartHidden (issue 13): the defaults for new servers
// are refused with the reason when out of range; "a loopback address per
// server" off puts new endpoints on 127.0.0.1; startHidden off rewrites an
// existing start-at-login file without --hidden.
func TestServerDefaultsAndStartHidden(t *testing.T) {
	dir := t.TempDir()
	sf, err := settings.Open(filepath.Join(dir, "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	ports, err := portmap.Open(filepath.Join(dir, "endpoints.json"), nil, portmap.WithLoopbackProbe(func(netip.Addr) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	auto := &desktop.Autostart{Kind: desktop.AutostartXDG, Path: filepath.Join(dir, "autostart", "porthole.desktop"), Exe: "/usr/bin/porthole"}
	bus := events.New()
	a, _ := New(Options{Mode: ModeDesktop, Bus: bus, Settings: sf, Ports: ports, Autostart: auto})
	if _, err := a.SetServerDefaults(settings.ServerDefaults{PingThresholdSec: 0}); !errors.Is(err, apperr.ErrBadInput) || !strings.Contains(err.Error(), "ping threshold") {
		t.Fatalf("ping 0: %v; want bad input naming the ping threshold", err)
	}
	if a.GetSettings().Defaults != settings.DefaultServerDefaults() {
		t.Fatalf("a refused change was saved: %+v", a.GetSettings().Defaults)
	}
	ctx := context.Background()
	if ep, _ := ports.Endpoint(ctx, "login-a", "localhost", 40001); ep.IP == netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("per-server addresses on: %v", ep)
	}
	d := settings.ServerDefaults{PingThresholdSec: 60, IdleTimeoutSec: 600, PoolSize: 2}
	if s, err := a.SetServerDefaults(d); err != nil || s.Defaults != d {
		t.Fatalf("SetServerDefaults = %+v, %v", s, err)
	}
	if got, _ := events.Latest(bus, settings.Topic); got.Defaults != d {
		t.Fatalf("settings event %+v", got.Defaults)
	}
	if ep, _ := ports.Endpoint(ctx, "login-b", "localhost", 40001); ep.IP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("per-server addresses off: new endpoint %v; want 127.0.0.1", ep)
	}

	if err := a.SetStartAtLogin(true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(auto.Path); !strings.Contains(string(b), "--hidden") {
		t.Fatalf("start hidden on: %s", b)
	}
	if s, err := a.SetStartHidden(false); err != nil || s.StartHidden {
		t.Fatalf("SetStartHidden(false) = %+v, %v", s, err)
	}
	if b, _ := os.ReadFile(auto.Path); strings.Contains(string(b), "--hidden") {
		t.Fatalf("start hidden off, the file still says --hidden:\n%s", b)
	}
}
