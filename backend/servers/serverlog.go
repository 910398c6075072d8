package servers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// serverLogLines is how many lines of each server's log Porthole keeps.
const serverLogLines = 1000

// ServerLogLine is one line of a server's log, as the `server.log` event carries it.
type ServerLogLine struct {
	ID   string `json:"id"`   // the server (profile) ID
	Seq  uint64 `json:"seq"`  // increases by one per line of this server, from 1
	Line string `json:"line"` // "15:04:05.000 INFO connected dest=root@host:22"
}

// ServerLogView is the kept part of a server's log (ServerLog).
type ServerLogView struct {
	ID    string   `json:"id"`
	Lines []string `json:"lines"` // oldest first, at most 1000
	// Seq is the sequence number of the last line (0: none yet); live
	// `server.log` events with a higher Seq come after these lines.
	Seq uint64 `json:"seq"`
}

// logRing keeps the last serverLogLines lines of one server's log.
type logRing struct {
	mu    sync.Mutex
	lines []string // circular once full
	start int      // index of the oldest line when full
	seq   uint64
}

// add appends a line and returns its sequence number.
func (r *logRing) add(line string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	if len(r.lines) < serverLogLines {
		r.lines = append(r.lines, line)
	} else {
		r.lines[r.start] = line
		r.start = (r.start + 1) % serverLogLines
	}
	return r.seq
}

// snapshot returns the kept lines, oldest first, and the last sequence number.
func (r *logRing) snapshot() ([]string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.lines))
	out = append(out, r.lines[r.start:]...)
	out = append(out, r.lines[:r.start]...)
	return out, r.seq
}

// lineHandler is a slog.Handler that formats every record as one short line
// ("15:04:05.000 INFO msg k=v …") for a server's log, and also passes the
// record on to the app's own log. It never sees secrets: nothing in Porthole
// logs them.
type lineHandler struct {
	emit   func(line string) // receives each formatted line
	next   slog.Handler      // the app log (with the server attribute)
	prefix string            // pre-formatted attributes from WithAttrs
	group  string            // dotted group prefix from WithGroup
	now    func() time.Time
}

func newLineHandler(emit func(string), next slog.Handler) *lineHandler {
	return &lineHandler{emit: emit, next: next, now: time.Now}
}

// Enabled: the server log keeps debug lines too (they explain a failed login).
func (h *lineHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = h.now()
	}
	b.WriteString(t.Format("15:04:05.000"))
	b.WriteByte(' ')
	b.WriteString(levelWord(r.Level))
	b.WriteByte(' ')
	b.WriteString(oneLine(r.Message))
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	h.emit(b.String())
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	c.prefix = b.String()
	if h.next != nil {
		c.next = h.next.WithAttrs(attrs)
	}
	return &c
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	if h.next != nil {
		c.next = h.next.WithGroup(name)
	}
	return &c
}

func levelWord(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) || (a.Value.Kind() == slog.KindAny && a.Value.Any() == nil) {
		return // nothing to say (e.g. err=<nil>)
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			writeAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	var v string
	switch a.Value.Kind() {
	case slog.KindTime:
		v = a.Value.Time().Format(time.RFC3339)
	case slog.KindDuration:
		v = a.Value.Duration().String()
	default:
		v = a.Value.String()
	}
	b.WriteString(quoteIfNeeded(v))
}

// quoteIfNeeded quotes values with spaces, quotes, '=' or control characters.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '='
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// oneLine keeps a message on one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ⏎ ")
}

// serverLogger returns the logger a login writes to: every record becomes a
// line in the server's log (and a `server.log` event) and also goes to the
// app's log with server=<name>.
func serverLogger(app *slog.Logger, serverName string, emit func(string)) *slog.Logger {
	next := app.Handler().WithAttrs([]slog.Attr{slog.String("server", serverName)})
	return slog.New(newLineHandler(emit, next))
}

// formatLine formats a line written by Porthole itself (not through slog).
func formatLine(t time.Time, level slog.Level, msg string, args ...any) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s", t.Format("15:04:05.000"), levelWord(level), oneLine(msg))
	r := slog.NewRecord(t, level, msg, 0)
	r.Add(args...)
	var sb strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&sb, "", a)
		return true
	})
	b.WriteString(sb.String())
	return b.String()
}
