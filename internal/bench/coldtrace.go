package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// traceLog collects the relay's events (testrig.Relay.SetTrace).
type traceLog struct {
	mu  sync.Mutex
	evs []testrig.RelayEvent
}

func (l *traceLog) add(e testrig.RelayEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

// since returns the events at or after t.
func (l *traceLog) since(t time.Time) []testrig.RelayEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []testrig.RelayEvent
	for _, e := range l.evs {
		if !e.At.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// coldTrace is where one cold start's time went, as the relay saw it.
type coldTrace struct {
	dial    time.Duration // exec → the client's TCP connection to the SSH server (relay)
	firstUp time.Duration // exec → the client's first byte to the server
	flights int           // client flights from the dial to the first response
	steps   []string      // "+12ms up 21B" per flight (debug log)
}

// analyzeCold reads the events of a start exec-ed at start that was ready
// (first response) at ready. A client flight is a run of client→server
// chunks after the server last spoke: each after the first waits for an
// answer, so the count is the round trips on the critical path (the relay
// sees only the SSH leg; its TCP handshake adds no delay in this rig).
func analyzeCold(evs []testrig.RelayEvent, start, ready time.Time) (coldTrace, error) {
	var ct coldTrace
	var flow int64
	lastDown := true
	for _, e := range evs {
		if e.At.After(ready) {
			break
		}
		if flow == 0 {
			if e.Kind != testrig.RelayAccept {
				continue
			}
			flow = e.Flow
			ct.dial = e.At.Sub(start)
			continue
		}
		if e.Flow != flow {
			continue
		}
		switch e.Kind {
		case testrig.RelayUp:
			if ct.firstUp == 0 {
				ct.firstUp = e.At.Sub(start)
			}
			if lastDown {
				ct.flights++
				ct.steps = append(ct.steps, fmt.Sprintf("+%dms up", e.At.Sub(start).Milliseconds()))
			}
			ct.steps[len(ct.steps)-1] += fmt.Sprintf(" %dB", e.Bytes)
			lastDown = false
		case testrig.RelayDown:
			if !lastDown {
				ct.steps = append(ct.steps, fmt.Sprintf("+%dms down", e.At.Sub(start).Milliseconds()))
			} else if len(ct.steps) > 0 {
				ct.steps[len(ct.steps)-1] += ","
			}
			if len(ct.steps) > 0 {
				ct.steps[len(ct.steps)-1] += fmt.Sprintf(" %dB", e.Bytes)
			}
			lastDown = true
		}
	}
	if flow == 0 {
		return ct, fmt.Errorf("the relay saw no connection between exec and the first response")
	}
	if !lastDown && ct.flights > 0 {
		// Bytes after the response (the channel's close) are no round trip.
		ct.flights--
		ct.steps[len(ct.steps)-1] += " (after the response)"
	}
	return ct, nil
}

func (ct coldTrace) String() string { return strings.Join(ct.steps, " | ") }
