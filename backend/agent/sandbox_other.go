//go:build !linux

package agent

import "log/slog"

// lockdown: only Linux agents are sandboxed (see the package doc).
func lockdown(*slog.Logger) error { return nil }

// applySandbox: only Linux agents are sandboxed (see the package doc).
func applySandbox(LoginSpec, *slog.Logger) error { return nil }
