package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// newLogger logs to w at the level named by $PORTHOLE_LOG (debug, info, warn, error; default info).
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("PORTHOLE_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// openSettingsLogged opens the settings file in Porthole's config directory. A
// broken file is reported (and kept); the app runs on defaults.
func openSettingsLogged(log *slog.Logger) *settingsFile {
	dir, err := configDir()
	if err != nil {
		log.Warn("settings are kept in memory only", "err", err)
		return nil
	}
	s, err := openSettings(dir + string(os.PathSeparator) + "settings.json")
	if err != nil {
		log.Error("settings file is broken; using defaults", "err", err)
	}
	return s
}
