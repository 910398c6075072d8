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
