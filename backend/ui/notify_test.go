package ui

import (
	"net/http"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/profiles"
)

// TestAppRulesThroughTheBridge: the new-app rules round-trip through serve's
// HTTP bridge, and bad input or an unknown server get their statuses.
func TestAppRulesThroughTheBridge(t *testing.T) {
	ta := newTestApp(t, testAppOptions{})
	b := newBridge(t, ta)
	p, err := ta.app.AddServer(profiles.Profile{Name: "gpu1", Host: "127.0.0.1", Port: 22, User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method string
		args   []any
		status int
		body   string
	}{
		{"SetAppAttributes", []any{p.ID, 6006, map[string]any{"label": "Board", "onAppear": "open-tab"}}, http.StatusOK, `"onAppear":"open-tab"`},
		{"GetAppAttributes", []any{p.ID, 6006}, http.StatusOK, `"label":"Board"`},
		{"SetAppAttributes", []any{p.ID, 6006, map[string]any{"onAppear": "sometimes"}}, http.StatusBadRequest, "open-tab"},
		{"SetAppAttributes", []any{p.ID, 0, map[string]any{}}, http.StatusBadRequest, "not a TCP port"},
		{"SetAppAttributes", []any{"nope", 80, map[string]any{}}, http.StatusNotFound, "no server"},
		{"SetIgnoredPorts", []any{p.ID, "9000-9100,8000", false}, http.StatusOK, `"ignorePorts":"8000, 9000-9100"`},
		{"SetIgnoredPorts", []any{p.ID, "9100-9000", false}, http.StatusBadRequest, "goes down"},
		{"GetAppRules", []any{p.ID}, http.StatusOK, `"6006":{"label":"Board","onAppear":"open-tab"}`},
		{"SetNotification", []any{"new-app", false}, http.StatusOK, `"newApp":false`},
		{"SetNotification", []any{"all", false}, http.StatusBadRequest, "unknown notification kind"},
	} {
		status, body := b.call(c.method, c.args...)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s%v = %d %s; want %d with %q", c.method, c.args, status, body, c.status, c.body)
		}
	}
}
