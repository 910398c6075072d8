package ui

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"
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
	if want := `{"theme":"dark","inspector":false,"notify":{"serverDown":true,"needsYou":true,"agentCrash":true,"newApp":true},"hideOnClose":true}`; string(b) != want {
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
