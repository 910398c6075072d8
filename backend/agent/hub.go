package agent

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// maxQueuedEvents bounds the events waiting for slow subscribers; newer
// events are dropped (and counted) beyond it.
const maxQueuedEvents = 4096

// hub delivers events to subscribers from one goroutine, in order, so that
// publishing never blocks.
type hub struct {
	mu      sync.Mutex
	subs    map[uint64]func(Event)
	next    uint64
	q       []Event
	closed  bool
	dropped int
	wake    chan struct{}
	done    chan struct{}
}

func newHub() *hub {
	h := &hub{subs: map[uint64]func(Event){}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.run()
	return h
}

func (h *hub) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if len(h.q) >= maxQueuedEvents {
		h.dropped++
		h.mu.Unlock()
		return
	}
	h.q = append(h.q, e)
	h.mu.Unlock()
	h.signal()
}

func (h *hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hub) subscribe(f func(Event)) func() {
	h.mu.Lock()
	id := h.next
	h.next++
	if !h.closed {
		h.subs[id] = f
	}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, id)
			h.mu.Unlock()
		})
	}
}

// close delivers what is queued, then stops the goroutine and waits for it.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.signal()
	<-h.done
}

func (h *hub) run() {
	defer close(h.done)
	for {
		h.mu.Lock()
		batch := h.q
		h.q = nil
		dropped := h.dropped
		h.dropped = 0
		closed := h.closed
		ids := make([]uint64, 0, len(h.subs))
		for id := range h.subs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		subs := make([]func(Event), 0, len(ids))
		for _, id := range ids {
			subs = append(subs, h.subs[id])
		}
		h.mu.Unlock()
		if dropped > 0 {
			batch = append(batch, Event{Kind: EventLog, Time: time.Now(), Log: &LogLine{
				Time: time.Now(), Level: slog.LevelWarn, Message: "events dropped: a subscriber is too slow",
				Attrs: []LogAttr{{Key: "dropped", Value: itoa(dropped)}},
			}})
		}
		for _, e := range batch {
			for _, f := range subs {
				f(e)
			}
		}
		if closed && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			<-h.wake
		}
	}
}

// teeHandler sends every record to base (as far as base wants it) and
// publishes records at or above min as EventLog lines.
type teeHandler struct {
	base   slog.Handler
	min    slog.Level
	emit   func(LogLine)
	attrs  []LogAttr
	prefix string // group prefix for attribute keys
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min || h.base.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.base.Enabled(ctx, r.Level) {
		err = h.base.Handle(ctx, r)
	}
	if r.Level >= h.min {
		line := LogLine{Time: r.Time, Level: r.Level, Message: r.Message, Attrs: slices.Clone(h.attrs)}
		r.Attrs(func(a slog.Attr) bool {
			line.Attrs = appendAttr(line.Attrs, h.prefix, a)
			return true
		})
		h.emit(line)
	}
	return err
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.base = h.base.WithAttrs(as)
	n.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		n.attrs = appendAttr(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.base = h.base.WithGroup(name)
	n.prefix = h.prefix + name + "."
	return &n
}

func appendAttr(out []LogAttr, prefix string, a slog.Attr) []LogAttr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			out = appendAttr(out, p, g)
		}
		return out
	}
	if a.Key == "" {
		return out
	}
	return append(out, LogAttr{Key: prefix + a.Key, Value: v.String()})
}

// relog writes a LogLine received from an agent to log.
func relog(log *slog.Logger, l *LogLine, extra ...slog.Attr) {
	if !log.Enabled(context.Background(), l.Level) {
		return
	}
	r := slog.NewRecord(l.Time, l.Level, l.Message, 0)
	for _, a := range l.Attrs {
		r.AddAttrs(slog.String(a.Key, a.Value))
	}
	r.AddAttrs(extra...)
	_ = log.Handler().Handle(context.Background(), r)
}

func itoa(n int) string {
	return slog.IntValue(n).String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
