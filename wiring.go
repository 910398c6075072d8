package main

import (
	"log/slog"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/servers"
)

// openServerConfig opens the profiles file at profiles.DefaultPath() and the
// OS keyring, and runs each connected server in its own sandboxed `porthole
// agent` process. A broken profiles file is reported (and kept): the app
// still starts and shows the error.
func openServerConfig(log *slog.Logger) servers.Config {
	store, err := profiles.Open("", log.With("component", "profiles"))
	if err != nil {
		log.Error("the profiles file cannot be used; server logins are read-only until it is fixed", "err", err)
	}
	sup := agent.NewSupervisor(agent.SupervisorOptions{Exe: agentExecutable(), Logger: log.With("component", "agents")})
	return servers.Config{
		Store:       store,
		Secrets:     profiles.NewKeyring(log.With("component", "keyring")),
		Backend:     servers.KeyringBackendName(),
		StartLogin:  servers.SupervisorLogins(sup),
		CloseLogins: func() { _ = sup.Close() },
	}
}

// openPortmapLogged opens the endpoints file at its default place; a broken
// file is reported (and kept) and endpoints are assigned in memory.
func openPortmapLogged(log *slog.Logger) *portmap.Map {
	m, err := portmap.Open("", log.With("component", "portmap"))
	if err != nil {
		log.Error("local endpoints are not saved this run; apps may move to other addresses at the next start", "err", err)
	}
	return m
}
