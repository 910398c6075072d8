package main

import (
	"sync"

	"github.com/porthole-app/porthole/backend/webui"
)

// Publisher receives UI events. The desktop implements it with runtime.EventsEmit,
// serve with server-sent events (webui.Server).
type Publisher interface {
	Publish(topic string, data any)
}

// eventHub remembers the latest event per topic (the snapshot a new subscriber
// gets first) and forwards every event to its sinks.
type eventHub struct {
	mu    sync.Mutex
	order []string
	last  map[string]any
	sinks []Publisher
}

func newEventHub() *eventHub { return &eventHub{last: map[string]any{}} }

// AddSink starts forwarding events to p.
func (h *eventHub) AddSink(p Publisher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sinks = append(h.sinks, p)
}

// Publish records data as the topic's latest value and forwards it.
func (h *eventHub) Publish(topic string, data any) {
	h.mu.Lock()
	if _, ok := h.last[topic]; !ok {
		h.order = append(h.order, topic)
	}
	h.last[topic] = data
	sinks := append([]Publisher(nil), h.sinks...)
	h.mu.Unlock()
	for _, s := range sinks {
		s.Publish(topic, data)
	}
}

// Snapshot returns the latest event of every topic, in first-published order.
func (h *eventHub) Snapshot() []webui.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]webui.Event, 0, len(h.order))
	for _, t := range h.order {
		out = append(out, webui.Event{Topic: t, Data: h.last[t]})
	}
	return out
}
