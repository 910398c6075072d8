package webui

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// hub fans pre-encoded SSE messages out to subscribers without ever blocking:
// a subscriber whose buffer is full is dropped (its channel closed).
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	buf    int
	log    *slog.Logger
}

type subscriber struct {
	ch chan []byte // closed when dropped, unsubscribed or the hub closes
}

func newHub(buf int, log *slog.Logger) *hub {
	return &hub{subs: make(map[*subscriber]struct{}), buf: buf, log: log}
}

// subscribe registers a new subscriber. On a closed hub its channel is already closed.
func (h *hub) subscribe() *subscriber {
	sub := &subscriber{ch: make(chan []byte, h.buf)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
	} else {
		h.subs[sub] = struct{}{}
	}
	return sub
}

// unsubscribe removes sub (if still present) and closes its channel.
func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// publish queues msg for every subscriber; those that are full are dropped.
func (h *hub) publish(msg []byte) {
	dropped := 0
	h.mu.Lock()
	for sub := range h.subs {
		select {
		case sub.ch <- msg:
		default:
			delete(h.subs, sub)
			close(sub.ch)
			dropped++
		}
	}
	h.mu.Unlock()
	if dropped > 0 {
		h.log.Info("event subscriber fell behind; disconnected it (the page reconnects and gets a fresh snapshot)", "dropped", dropped)
	}
}

// close ends every subscription; later subscribers get a closed channel.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// encodeEvent is the SSE frame of one event: "data: {json}\n\n".
// json.Marshal never emits a raw newline, so one data line is enough.
func encodeEvent(topic string, data any) ([]byte, error) {
	b, err := json.Marshal(Event{Topic: topic, Data: data})
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, len(b)+8)
	msg = append(msg, "data: "...)
	msg = append(msg, b...)
	msg = append(msg, "\n\n"...)
	return msg, nil
}

// Publish sends an event to every event-stream subscriber. It never blocks: a
// subscriber that has fallen EventBuffer events behind is disconnected. Data
// that cannot be encoded as JSON is logged and dropped.
func (s *Server) Publish(topic string, data any) {
	msg, err := encodeEvent(topic, data)
	if err != nil {
		s.log.Error("cannot encode event as JSON; not published", "topic", topic, "err", err)
		return
	}
	s.hub.publish(msg)
}

// takeSnapshot calls Options.Snapshot, turning a panic into an error.
func (s *Server) takeSnapshot() (evs []Event, err error) {
	if s.snapshot == nil {
		return nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("snapshot panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("snapshot: %w", ErrMethodPanicked)
		}
	}()
	return s.snapshot(), nil
}

// serveEvents is GET /api/events: the snapshot, then live events, until the
// client goes, the subscriber is dropped, or the server shuts down.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	// Subscribe before the snapshot: an event published in between is queued
	// and arrives after the snapshot, so the page never misses a change.
	sub := s.hub.subscribe()
	defer s.hub.unsubscribe(sub)

	snap, err := s.takeSnapshot()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot take the state snapshot: see the log of porthole serve")
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(nil) { // send the headers now, even with an empty snapshot
		return
	}
	for _, ev := range snap {
		msg, err := encodeEvent(ev.Topic, ev.Data)
		if err != nil {
			s.log.Error("cannot encode snapshot event as JSON; skipped", "topic", ev.Topic, "err", err)
			continue
		}
		if !write(msg) {
			return
		}
	}

	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	for {
		select {
		case msg, ok := <-sub.ch:
			if !ok {
				return
			}
			if !write(msg) {
				return
			}
		case <-tick.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
