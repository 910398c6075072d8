// Package events is Porthole's typed event bus: one topic, one payload type.
//
// A room declares its topics with NewTopic[T] and publishes values of T with
// Publish; the bus keeps the latest value of every topic, so that a new
// subscriber gets a snapshot first and the updates after it (the model is
// tailscale's eventbus). The desktop window (Wails events) and `porthole
// serve` (server-sent events) are two Sinks of one Bus; in-process code
// subscribes with Subscribe and gets typed values, never `any`.
//
// Every topic is registered once, by name, with its payload type's name
// (Topics), so that a test can check the frontend's topic map against it.
package events

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
)

// Topic names a stream of values of type T.
type Topic[T any] struct{ name string }

// Name is the topic's wire name ("servers", "app.status", …).
func (t Topic[T]) Name() string { return t.name }

// TopicInfo describes a registered topic.
type TopicInfo struct {
	Name    string // wire name
	Payload string // the payload's Go type name, without its package ("ServerList")
}

var (
	registryMu sync.Mutex
	registry   = map[string]TopicInfo{}
)

// NewTopic registers a topic. Call it once per name, in a package-level var;
// a name registered twice with another payload type panics (a programming
// error the first test run finds).
func NewTopic[T any](name string) Topic[T] {
	typ := reflect.TypeFor[T]()
	info := TopicInfo{Name: name, Payload: typeName(typ)}
	registryMu.Lock()
	defer registryMu.Unlock()
	if old, ok := registry[name]; ok && old != info {
		panic(fmt.Sprintf("events: topic %q registered as %s and as %s", name, old.Payload, info.Payload))
	}
	registry[name] = info
	return Topic[T]{name: name}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return typeName(t.Elem()) + "[]"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.Name()
}

// Topics lists every registered topic, sorted by name.
func Topics() []TopicInfo {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]TopicInfo, 0, len(registry))
	for _, t := range registry {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b TopicInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Event is one published value, as sinks and snapshots carry it.
type Event struct {
	Topic string `json:"topic"`
	Data  any    `json:"data"`
}

// Sink receives every event on the wire side (Wails' EventsEmit, serve's
// server-sent events). Publish must not block for long.
type Sink interface {
	Publish(topic string, data any)
}

// Bus keeps the latest value per topic and forwards every value to its sinks
// and typed subscribers. The zero Bus is not usable; use New. A nil *Bus
// drops what is published (for tests of parts that publish nothing asserted).
type Bus struct {
	mu    sync.Mutex
	order []string
	last  map[string]any
	sinks []Sink
	subs  map[string][]*subscriber
	next  int
}

type subscriber struct {
	id int
	f  func(any)
}

// New returns an empty bus.
func New() *Bus { return &Bus{last: map[string]any{}, subs: map[string][]*subscriber{}} }

// AddSink starts forwarding every event to s.
func (b *Bus) AddSink(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sinks = append(b.sinks, s)
}

// Publish records v as the topic's latest value and hands it to every sink
// and subscriber, in the caller's goroutine.
func Publish[T any](b *Bus, t Topic[T], v T) {
	if b == nil {
		return
	}
	b.mu.Lock()
	if _, ok := b.last[t.name]; !ok {
		b.order = append(b.order, t.name)
	}
	b.last[t.name] = v
	sinks := slices.Clone(b.sinks)
	subs := slices.Clone(b.subs[t.name])
	b.mu.Unlock()
	for _, s := range sinks {
		s.Publish(t.name, v)
	}
	for _, s := range subs {
		s.f(v)
	}
}

// Subscribe calls f with the topic's latest value (if any), then with every
// later one. The returned function unsubscribes.
func Subscribe[T any](b *Bus, t Topic[T], f func(T)) (cancel func()) {
	b.mu.Lock()
	b.next++
	s := &subscriber{id: b.next, f: func(v any) { f(v.(T)) }}
	b.subs[t.name] = append(b.subs[t.name], s)
	last, ok := b.last[t.name]
	b.mu.Unlock()
	if ok {
		f(last.(T))
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.subs[t.name] = slices.DeleteFunc(b.subs[t.name], func(x *subscriber) bool { return x.id == s.id })
	}
}

// Latest returns the topic's latest value.
func Latest[T any](b *Bus, t Topic[T]) (T, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.last[t.name]
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

// Snapshot returns the latest event of every topic, in first-published order.
func (b *Bus) Snapshot() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Event, 0, len(b.order))
	for _, t := range b.order {
		out = append(out, Event{Topic: t, Data: b.last[t]})
	}
	return out
}
