//go:build linux

package netwatch

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestCoalesce: events that arrive before the window closes make one
// Change, in order; the next event opens a new window; a reader error
// reports what was pending and is returned; a closed socket is not an
// error.
func TestCoalesce(t *testing.T) {
	up := Event{Kind: KindLinkUp, Iface: "eth0"}
	down := Event{Kind: KindLinkDown, Iface: "eth0"}
	events := make(chan []Event)
	readErr := make(chan error)
	windows := make(chan chan time.Time, 4)
	window := func() <-chan time.Time {
		c := make(chan time.Time)
		windows <- c
		return c
	}
	got := make(chan Change, 4)
	done := make(chan error, 1)
	go func() {
		done <- coalesce(context.Background(), events, readErr, window, func(c Change) { got <- c })
	}()
	events <- []Event{down}
	events <- nil // nothing: no window, no change
	events <- []Event{up, down}
	events <- []Event{up}
	w := <-windows
	if len(windows) != 0 {
		t.Fatalf("%d more windows opened in one burst", len(windows))
	}
	w <- time.Now()
	c := <-got
	if want := []Event{down, up, down, up}; len(c.Events) != len(want) || c.Events[0] != down || c.Events[3] != up || c.Time.IsZero() {
		t.Fatalf("change = %+v, want %v", c, want)
	}
	events <- []Event{down}
	w = <-windows
	w <- time.Now()
	if c := <-got; len(c.Events) != 1 || c.Events[0] != down {
		t.Fatalf("second burst = %+v", c)
	}
	events <- []Event{up}
	<-windows
	boom := errors.New("boom")
	readErr <- boom
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("coalesce returned %v, want the reader's error", err)
	}
	if c := <-got; len(c.Events) != 1 || c.Events[0] != up {
		t.Fatalf("pending at the error = %+v, want it reported", c)
	}

	go func() {
		done <- coalesce(context.Background(), events, readErr, window, func(Change) {})
	}()
	readErr <- os.ErrClosed
	if err := <-done; err != nil {
		t.Fatalf("closed socket: %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- coalesce(ctx, events, readErr, window, func(Change) {}) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("canceled: %v, want nil", err)
	}
}
