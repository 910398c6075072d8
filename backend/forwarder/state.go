package forwarder

import (
	"fmt"
	"time"
)

// State is where a Session stands.
type State int

const (
	// StateIdle: no SSH connection and none wanted right now (never used,
	// closed after being idle, or lost while nobody was using it). The next
	// Dial connects.
	StateIdle State = iota
	// StateConnecting: the first connection (from Idle) is being made.
	StateConnecting
	// StateReady: connected and recently proven alive.
	StateReady
	// StateSuspect: connected, but the connection may be dead (after a wake,
	// a long idle period, or an error on a channel); it is pinged before use.
	StateSuspect
	// StateReconnecting: the connection was lost and a new one is being made
	// (or the next attempt is waiting out its backoff).
	StateReconnecting
	// StateFailed: the last connection attempt failed; the next Dial tries
	// again after the backoff.
	StateFailed
	// StateClosed: Close was called; the Session refuses new work.
	StateClosed
)

var stateNames = [...]string{
	StateIdle:         "idle",
	StateConnecting:   "connecting",
	StateReady:        "ready",
	StateSuspect:      "suspect",
	StateReconnecting: "reconnecting",
	StateFailed:       "failed",
	StateClosed:       "closed",
}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText makes State appear as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a State name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown session state %q: want one of idle, connecting, ready, suspect, reconnecting, failed, closed", b)
}

// Event is one state change of a Session.
type Event struct {
	Session string    `json:"session,omitempty"` // SessionOptions.Name
	State   State     `json:"state"`
	Prev    State     `json:"prev"`
	Reason  string    `json:"reason,omitempty"` // human-readable why, e.g. "reconnected after 840 ms"
	Err     error     `json:"-"`
	Error   string    `json:"error,omitempty"` // Err.Error(), for JSON
	Time    time.Time `json:"time"`
	// Attempt counts consecutive connection attempts (1 for the first).
	Attempt int `json:"attempt,omitempty"`
	// RetryIn is the backoff before the next attempt (StateFailed, StateReconnecting).
	RetryIn time.Duration `json:"retryInNs,omitempty"`
	// Downtime is how long the login had no usable connection, set on the
	// Ready event that ends an outage.
	Downtime time.Duration `json:"downtimeNs,omitempty"`
	// RTT is the last measured round-trip time, when known.
	RTT time.Duration `json:"rttNs,omitempty"`
}

func (e Event) String() string {
	s := fmt.Sprintf("%s → %s", e.Prev, e.State)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Publisher receives Session events. Publish is called from one goroutine,
// in order, never while the Session holds a lock; it should not block long.
type Publisher interface {
	Publish(Event)
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(Event)

// Publish calls f(e).
func (f PublisherFunc) Publish(e Event) { f(e) }

// StateInfo is a snapshot of a Session's state.
type StateInfo struct {
	State     State         `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	Error     string        `json:"error,omitempty"`
	Since     time.Time     `json:"since"`
	RTT       time.Duration `json:"rttNs,omitempty"`
	OpenConns int           `json:"openConns"`
}
