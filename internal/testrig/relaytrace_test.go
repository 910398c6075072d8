package testrig

import (
	"sync"
	"testing"
)

// TestRelayTrace: the trace sees the flow accepted, then the client's bytes
// (up) and the echo (down), with their sizes, in that order.
func TestRelayTrace(t *testing.T) {
	r := NewRelay(t, startTCPServer(t, echoHandler))
	var mu sync.Mutex
	var evs []RelayEvent
	r.SetTrace(func(e RelayEvent) {
		mu.Lock()
		evs = append(evs, e)
		mu.Unlock()
	})
	c := dialRelay(t, r)
	roundTrip(t, c, "hello trace")
	mu.Lock()
	got := append([]RelayEvent(nil), evs...)
	mu.Unlock()
	if len(got) < 3 {
		t.Fatalf("events %+v, want accept, up, down", got)
	}
	if got[0].Kind != RelayAccept || got[0].Flow != 1 {
		t.Fatalf("first event %+v, want accept of flow 1", got[0])
	}
	var up, down int
	for _, e := range got[1:] {
		if e.Flow != 1 {
			t.Fatalf("event %+v on flow %d, want 1", e, e.Flow)
		}
		switch e.Kind {
		case RelayUp:
			if down > 0 {
				t.Fatalf("up after down in %+v", got)
			}
			up += e.Bytes
		case RelayDown:
			down += e.Bytes
		}
	}
	if up != 11 || down != 11 {
		t.Fatalf("traced %d bytes up and %d down, want 11 and 11", up, down)
	}
	r.SetTrace(nil)
	roundTrip(t, c, "untraced")
	mu.Lock()
	defer mu.Unlock()
	if len(evs) != len(got) {
		t.Fatalf("%d events after SetTrace(nil), want none", len(evs)-len(got))
	}
}
