package servers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogRingKeepsTheLast1000Lines(t *testing.T) {
	var r logRing
	if lines, seq := r.snapshot(); len(lines) != 0 || seq != 0 {
		t.Fatalf("empty ring: %v %d", lines, seq)
	}
	for i := 1; i <= 2500; i++ {
		if seq := r.add(fmt.Sprintf("line %d", i)); seq != uint64(i) {
			t.Fatalf("seq %d for line %d", seq, i)
		}
	}
	lines, seq := r.snapshot()
	if len(lines) != serverLogLines || seq != 2500 || lines[0] != "line 1501" || lines[999] != "line 2500" {
		t.Fatalf("%d lines, seq %d, first %q, last %q", len(lines), seq, lines[0], lines[len(lines)-1])
	}
}

func TestLineHandlerFormatsOneLinePerRecord(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var app strings.Builder
	next := slog.NewTextHandler(&app, &slog.HandlerOptions{Level: slog.LevelInfo})
	h := newLineHandler(func(l string) { mu.Lock(); got = append(got, l); mu.Unlock() }, next)
	log := slog.New(h).With("hop", "root@h:22").WithGroup("g")
	when := time.Date(2025, 1, 2, 15, 4, 5, 123e6, time.UTC)
	r := slog.NewRecord(when, slog.LevelDebug, "offering key\nsecond line", 0)
	r.Add("key", "~/.ssh/id ed", "n", 3)
	if err := log.Handler().Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	log.Warn("tcp connected", "took", 1500*time.Millisecond, "empty", "")
	if len(got) != 2 {
		t.Fatalf("lines %q", got)
	}
	if got[0] != `15:04:05.123 DEBUG offering key ⏎ second line hop=root@h:22 g.key="~/.ssh/id ed" g.n=3` {
		t.Fatalf("line 1 = %q", got[0])
	}
	if !strings.HasSuffix(got[1], ` WARN tcp connected hop=root@h:22 g.took=1.5s g.empty=""`) {
		t.Fatalf("line 2 = %q", got[1])
	}
	// The app log got the warning (its level) but not the debug line.
	if !strings.Contains(app.String(), "tcp connected") || strings.Contains(app.String(), "offering key") {
		t.Fatalf("app log: %s", app.String())
	}
}

func TestLineHandlerSkipsNilValues(t *testing.T) {
	var got string
	log := slog.New(newLineHandler(func(l string) { got = l }, nil))
	log.Info("state", "err", nil, "error", error(nil), "n", 1)
	if strings.Contains(got, "nil") || !strings.HasSuffix(got, "INFO state n=1") {
		t.Fatalf("line %q", got)
	}
}
