package ui

import (
	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/notify"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/rules"
	"github.com/porthole-app/porthole/backend/servers"
)

// --- servers (backend/servers) and their questions (backend/prompts) ---

// ListServers lists the server logins with their connection state.
func (a *App) ListServers() []servers.ServerSummary { return a.servers.Summaries() }

// ReloadServers reads profiles.json again (e.g. after fixing it by hand).
func (a *App) ReloadServers() (servers.ServerList, error) { return a.servers.Reload() }

// GetServer returns the saved profile of a server (no secrets).
func (a *App) GetServer(id string) (profiles.Profile, error) { return a.servers.Get(id) }

// ValidateServer checks a profile as the form is typed: every field and the
// key file. It never saves anything.
func (a *App) ValidateServer(p profiles.Profile) servers.ValidationResult {
	return a.servers.Validate(p)
}

// AddServer saves a new server (its id is assigned) and returns it.
func (a *App) AddServer(p profiles.Profile) (profiles.Profile, error) { return a.servers.Add(p) }

// UpdateServer saves the changes to a server.
func (a *App) UpdateServer(p profiles.Profile) (profiles.Profile, error) { return a.servers.Update(p) }

// DeleteServer disconnects a server, deletes it and its saved secrets.
func (a *App) DeleteServer(id string) error { return a.servers.Remove(id) }

// DuplicateServer saves a copy of a server, with its saved secrets.
func (a *App) DuplicateServer(id string) (profiles.Profile, error) { return a.servers.Duplicate(id) }

// ImportCandidates lists the hosts of ~/.ssh/config that can be imported.
func (a *App) ImportCandidates() (servers.ImportList, error) { return a.servers.ImportCandidates() }

// ImportServers imports the named ~/.ssh/config hosts; with link, each stays
// linked to its alias (resolved again at every connection).
func (a *App) ImportServers(aliases []string, link bool) (servers.ImportResult, error) {
	return a.servers.ImportServers(aliases, link)
}

// Connect connects a server and returns once it is connected or has failed;
// progress, questions and state changes arrive as events meanwhile.
func (a *App) Connect(id string) (servers.ServerSummary, error) { return a.servers.Connect(id) }

// Disconnect disconnects a server (and cancels its open questions).
func (a *App) Disconnect(id string) (servers.ServerSummary, error) {
	if _, err := a.servers.Get(id); err != nil {
		return servers.ServerSummary{}, err
	}
	a.servers.Disconnect(id, "disconnected by you")
	return a.servers.Summary(id), nil
}

// Prewarm dials a connected server's idle SSH connection in the background,
// never asking anything (the user opened its page or is about to open an app).
func (a *App) Prewarm(id string) error { return a.servers.Prewarm(id) }

// Prompts returns the open questions (as the `prompts` event does).
func (a *App) Prompts() []prompts.Prompt { return a.servers.Prompts().List() }

// AnswerPrompt answers an open question.
func (a *App) AnswerPrompt(promptID string, answer prompts.PromptAnswer) error {
	return a.servers.Prompts().Answer(promptID, answer)
}

// CancelPrompt cancels an open question; its connection attempt stops.
func (a *App) CancelPrompt(promptID string) error { return a.servers.Prompts().Cancel(promptID) }

// ServerLog returns the last 1000 lines of a server's log.
func (a *App) ServerLog(id string) (servers.ServerLogView, error) {
	if _, err := a.servers.Get(id); err != nil {
		return servers.ServerLogView{}, err
	}
	return a.servers.ServerLog(id), nil
}

// ServerStats returns a server's dashboard: state, uptime, RTT, the
// forwards' connections and traffic, the last 24 h's reconnects (as the
// `server.stats` event does).
func (a *App) ServerStats(id string) (servers.ServerStats, error) {
	if _, err := a.servers.Get(id); err != nil {
		return servers.ServerStats{}, err
	}
	return a.servers.ServerStats(id), nil
}

// KeyringStatus checks whether secrets can be kept in the OS keyring.
func (a *App) KeyringStatus() servers.KeyringStatus { return a.servers.KeyringStatus(true) }

// --- apps (backend/apps) ---

// ListApps lists what listens on a server ("local": this computer) and
// what it is; it publishes `apps` when the list changed.
func (a *App) ListApps(serverID string) (apps.AppList, error) {
	return a.apps.ListApps(a.context(), serverID)
}

// OpenApp opens an app of a server in a tab: on the port's stable local
// endpoint, through an HTTP-aware forward.
func (a *App) OpenApp(serverID string, port int, path string) (apps.OpenedApp, error) {
	return a.apps.OpenApp(a.context(), serverID, port, path)
}

// ParseAppURL opens a URL the way apps print it on the server
// (http://localhost:8888/lab?token=…).
func (a *App) ParseAppURL(serverID string, raw string) (apps.OpenedApp, error) {
	return a.apps.ParseAppURL(a.context(), serverID, raw)
}

// OpenThrough opens a URL of another computer through a server
// (http://grafana.internal:3000/): the server resolves and dials the host.
func (a *App) OpenThrough(serverID string, raw string) (apps.OpenedApp, error) {
	return a.apps.OpenThrough(a.context(), serverID, raw)
}

// ForwardPort makes a raw forward (-L) of a server's port on its stable
// local endpoint, for clients such as psql.
func (a *App) ForwardPort(serverID string, port int) (apps.RawForward, error) {
	return a.apps.ForwardPort(a.context(), serverID, port)
}

// ForwardSocket forwards a Unix socket of a server (e.g. /var/run/docker.sock)
// to a stable local endpoint and says how to use it.
func (a *App) ForwardSocket(serverID string, path string) (apps.SocketForward, error) {
	return a.apps.ForwardSocket(a.context(), serverID, path)
}

// OpenExternal opens an http(s) URL in the system browser (an app's URL
// with its token as a one-time link: see apps.Manager.OpenExternal).
func (a *App) OpenExternal(url string) error { return a.apps.OpenExternal(a.context(), url) }

// GetTabs returns the tabs saved by the last SaveTabs (for restoring them).
func (a *App) GetTabs() []apps.SavedTab { return a.tabs.Get() }

// SaveTabs saves the open tabs, to restore them at the next start.
func (a *App) SaveTabs(tabs []apps.SavedTab) error { return a.tabs.Save(tabs) }

// --- notifications (backend/notify) ---

// GetAppAttributes returns a port's label and what to do when an app
// appears on it.
func (a *App) GetAppAttributes(serverID string, port int) (notify.AppAttributes, error) {
	return a.notify.AppAttributes(serverID, port)
}

// SetAppAttributes sets a port's label and what to do when an app appears
// on it: "auto" (notify, unless the port is ephemeral or ignored),
// "notify", "open-tab" or "ignore".
func (a *App) SetAppAttributes(serverID string, port int, attrs notify.AppAttributes) (notify.AppAttributes, error) {
	return a.notify.SetAppAttributes(serverID, port, attrs)
}

// GetAppRules returns a server's rules for new apps.
func (a *App) GetAppRules(serverID string) (notify.ServerRules, error) {
	return a.notify.AppRules(serverID)
}

// SetIgnoredPorts sets the port ranges of a server whose new apps notify
// nobody ("8000-8100, 9000") and whether ephemeral ports (32768 and up) do.
func (a *App) SetIgnoredPorts(serverID string, ranges string, notifyEphemeral bool) (notify.ServerRules, error) {
	return a.notify.SetIgnoredPorts(serverID, ranges, notifyEphemeral)
}

// --- saved forward rules (backend/rules) ---

// ListRules lists a server's saved rules (-L, -R, -D) with their state,
// endpoints and counters.
func (a *App) ListRules(serverID string) (rules.RuleList, error) { return a.rules.List(serverID) }

// ValidateRule checks a rule of a server as the form is typed. It never saves anything.
func (a *App) ValidateRule(serverID string, r profiles.ForwardRule) rules.ValidationResult {
	return a.rules.Validate(serverID, r)
}

// AddRule saves a new rule for a server (its id is assigned) and starts it
// if the server is connected.
func (a *App) AddRule(serverID string, r profiles.ForwardRule) (profiles.ForwardRule, error) {
	return a.rules.Add(serverID, r)
}

// UpdateRule saves the changes to a rule (found by its id) and restarts it.
func (a *App) UpdateRule(serverID string, r profiles.ForwardRule) (profiles.ForwardRule, error) {
	return a.rules.Update(serverID, r)
}

// DeleteRule deletes a rule of a server and stops it.
func (a *App) DeleteRule(serverID, ruleID string) error { return a.rules.Remove(serverID, ruleID) }
