package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// TestStateEventErrorCrossesThePipe: a state event's error keeps its
// identity across the agent's pipe, so the app can tell a server that drops
// every login (and a permanent failure) from any other failure.
func TestStateEventErrorCrossesThePipe(t *testing.T) {
	cause := fmt.Errorf("%w: %w (3 logins in a row)", forwarder.ErrPermanent, forwarder.ErrDropsAfterLogin)
	sent := newEventParams(Event{Kind: EventState, Login: "p1", State: &forwarder.Event{State: forwarder.StateFailed, Err: cause, Error: cause.Error()}})
	b, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	var got eventParams
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := got.validate(); err != nil {
		t.Fatal(err)
	}
	e := got.event()
	if e.State == nil || !errors.Is(e.State.Err, forwarder.ErrDropsAfterLogin) || !errors.Is(e.State.Err, forwarder.ErrPermanent) || e.State.Err.Error() != cause.Error() {
		t.Fatalf("state event after the pipe: %+v (err %v)", e.State, e.State.Err)
	}
	// An event without an error stays without one.
	b, _ = json.Marshal(newEventParams(Event{Kind: EventState, State: &forwarder.Event{State: forwarder.StateReady}}))
	got = eventParams{}
	if err := json.Unmarshal(b, &got); err != nil || got.event().State.Err != nil {
		t.Fatalf("ready event after the pipe: %+v, %v", got.event().State, err)
	}
}
