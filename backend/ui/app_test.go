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
	if string(b) != `{"theme":"dark","inspector":false,"hideOnClose":true}` {
		t.Fatalf("settings JSON = %s", b)
	}
}
