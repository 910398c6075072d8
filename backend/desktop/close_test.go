package desktop

import (
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/servers"
)

func TestBeforeClose(t *testing.T) {
	for _, c := range []struct {
		name                      string
		setting, tray, busy, quit bool
		want                      bool
	}{
		{"tunnels open", true, true, true, false, true},
		{"nothing open", true, true, false, false, false},
		{"setting off", false, true, true, false, false},
		{"no tray", true, false, true, false, false},
		{"quit asked", true, true, true, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBackground(nil, func() bool { return c.setting })
			b.SetTray(c.tray)
			firsts := 0
			b.OnFirstHide(func() { firsts++ })
			if c.quit {
				b.Quitting()
			}
			if got := b.BeforeClose(c.busy); got != c.want {
				t.Fatalf("BeforeClose = %v, want %v", got, c.want)
			}
			b.BeforeClose(c.busy)
			if want := map[bool]int{true: 1, false: 0}[c.want]; firsts != want {
				t.Fatalf("onFirstHide ran %d times, want %d", firsts, want)
			}
			if b.HideOnClose() != (c.setting && c.tray) {
				t.Fatalf("effective HideOnClose = %v", b.HideOnClose())
			}
		})
	}
}

func TestTrayMenu(t *testing.T) {
	list := []servers.ServerSummary{{ID: "a", Name: "gpu1", State: servers.ServerConnected}, {ID: "b", Name: "lab", State: servers.ServerFailed}, {ID: "c", Name: "old", State: servers.ServerDisconnected}}
	tabs := []apps.SavedTab{{ID: "t1", Title: "JupyterLab"}, {ID: "t2", RemoteURL: "http://localhost:8888/lab?token=secret"}}
	m := TrayMenu(list, tabs)
	text := RenderMenu(m)
	for _, w := range []string{"Show Porthole\n", "● gpu1 — connected\n    Disconnect\n", "✕ lab — failed\n    Connect\n", "○ old — disconnected\n    Connect\n", "JupyterLab\n", "http://localhost:8888/lab\n", "Open Porthole in your browser\nSettings…\n", "Quit Porthole\n"} {
		if !strings.Contains(text, w) {
			t.Errorf("menu lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "secret") {
		t.Errorf("the menu shows a token:\n%s", text)
	}
	if !SomeServerDown(list) || SomeServerDown(list[:1]) || SomeServerDown(list[2:]) {
		t.Error("SomeServerDown: a failed server must show the down icon, a connected or disconnected one not")
	}
	if m[len(m)-1].ID != MenuQuit || m[0].ID != MenuShow {
		t.Errorf("menu order: first %q, last %q", m[0].ID, m[len(m)-1].ID)
	}
	t.Logf("the tray menu:\n%s", text)
}

func TestDownIcon(t *testing.T) {
	if _, err := DownIcon([]byte("not a png")); err == nil {
		t.Fatal("DownIcon accepted a non-PNG")
	}
}
