// Package testrig is Porthole's test rig: an in-process SSH server with fault
// switches (SSHServer), a launcher for the real OpenSSH sshd (Sshd), a
// user-space TCP relay that adds latency and simulates sleep and network
// changes (Relay), and a test web app (WebApp).
//
// It is test-only: imported by tests and by `make bench`, never by the app.
//
// Every constructor exists in two forms: StartX(ctx, opts) returns (*X, error)
// for standalone programs, and NewX(t, ...) calls t.Fatal on error and
// registers t.Cleanup(x.Close). The ctx given to StartX bounds start-up only;
// the returned value lives until Close, which stops every goroutine and
// process it started and waits for them.
//
// All network traffic is loopback only.
package testrig

import (
	"io"
	"log/slog"
)

// orDiscard returns l, or a logger that discards everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}
