package ui

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/porthole-app/porthole/backend/agent"
)

// TestMain lets this test binary act as `porthole agent` when a Supervisor
// starts it again (/proc/self/exe) with agent.EnvMarker set: the tests run
// every login both in-process and over RPC in an agent process.
func TestMain(m *testing.M) {
	if os.Getenv(agent.EnvMarker) != "" && len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(agent.Main(context.Background(), os.Stdin, os.Stdout, slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	os.Exit(m.Run())
}

// forEachLogin runs f once per implementation of agent.Login: in-process
// (agent.LocalLogin) and in an agent process over RPC (RemoteLogin).
func forEachLogin(t *testing.T, f func(t *testing.T, agents bool)) {
	for _, k := range loginKinds {
		t.Run(k.name, func(t *testing.T) { f(t, k.agents) })
	}
}
