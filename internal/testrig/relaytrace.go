package testrig

import (
	"sync/atomic"
	"time"
)

// RelayEventKind is what a RelayEvent saw.
type RelayEventKind int

const (
	// RelayAccept: a client connected to the relay (a new flow).
	RelayAccept RelayEventKind = iota
	// RelayUp: bytes read from the client (client → target).
	RelayUp
	// RelayDown: bytes read from the target (target → client).
	RelayDown
)

func (k RelayEventKind) String() string {
	switch k {
	case RelayAccept:
		return "accept"
	case RelayUp:
		return "up"
	case RelayDown:
		return "down"
	}
	return "RelayEventKind(?)"
}

// RelayEvent is one thing the relay saw on a flow, stamped when it was read
// (before the added delay): the trace shows how a client's bytes go back and
// forth, e.g. how many round trips a login takes.
type RelayEvent struct {
	Flow  int64 // the flow's number, from 1 in accept order
	Kind  RelayEventKind
	Bytes int
	At    time.Time
}

type traceFunc = func(RelayEvent)

// SetTrace makes the relay call fn for every accepted flow and every chunk
// of bytes it reads (fn must be quick and safe for concurrent use); nil
// stops tracing.
func (r *Relay) SetTrace(fn func(RelayEvent)) {
	if fn == nil {
		r.trace.Store(nil)
		return
	}
	r.trace.Store(&fn)
}

func (r *Relay) emit(flow int64, kind RelayEventKind, n int, at time.Time) {
	if p := r.trace.Load(); p != nil {
		(*p)(RelayEvent{Flow: flow, Kind: kind, Bytes: n, At: at})
	}
}

// relayTrace is the Relay's trace hook (nil: off).
type relayTrace = atomic.Pointer[traceFunc]
