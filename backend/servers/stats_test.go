package servers

import (
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/forwarder"
)

// TestReconnectRingKeeps24Hours: the ring keeps the reconnects of the last
// 24 h (a fake clock moves on), oldest first, and at most maxReconnects.
func TestReconnectRingKeeps24Hours(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration // after t0
		down time.Duration // > 0: a reconnect; 0: only read
		want []int64       // downtimes (ms) listed at that time
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "empty", steps: []step{{at: 0, want: []int64{}}}},
		{name: "one", steps: []step{{at: 0, down: 840 * time.Millisecond, want: []int64{840}}}},
		{name: "kept just under 24 h", steps: []step{
			{at: 0, down: time.Second, want: []int64{1000}},
			{at: 24*time.Hour - time.Second, want: []int64{1000}},
		}},
		{name: "dropped at 24 h", steps: []step{
			{at: 0, down: time.Second, want: []int64{1000}},
			{at: 24 * time.Hour, want: []int64{}},
		}},
		{name: "oldest first, old ones pruned by a new one", steps: []step{
			{at: 0, down: 1 * time.Second},
			{at: time.Hour, down: 2 * time.Second},
			{at: 12 * time.Hour, down: 3 * time.Second, want: []int64{1000, 2000, 3000}},
			{at: 24*time.Hour + 30*time.Minute, down: 4 * time.Second, want: []int64{2000, 3000, 4000}},
			{at: 48 * time.Hour, want: []int64{4000}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reconnectRing
			for _, s := range tc.steps {
				now := t0.Add(s.at)
				if s.down > 0 {
					r.add(now, s.down)
				}
				if s.want == nil {
					continue
				}
				got := r.within(now)
				if len(got) != len(s.want) {
					t.Fatalf("at %v: %+v; want downtimes %v", s.at, got, s.want)
				}
				for i, g := range got {
					if g.DowntimeMs != s.want[i] {
						t.Fatalf("at %v: %+v; want downtimes %v", s.at, got, s.want)
					}
				}
			}
		})
	}
	t.Run("capped", func(t *testing.T) {
		var r reconnectRing
		for i := range maxReconnects + 10 {
			r.add(t0.Add(time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
		}
		got := r.within(t0.Add(time.Hour))
		if len(got) != maxReconnects || got[0].DowntimeMs != 10 {
			t.Fatalf("%d kept, first %+v; want %d from the 11th", len(got), got[0], maxReconnects)
		}
	})
}

// TestManagerStatsFromEvents: a Ready event with a downtime is recorded as a
// reconnect; the uptime, RTT and the forwards' summed counters follow the
// login's events; a stale generation's events are ignored.
func TestManagerStatsFromEvents(t *testing.T) {
	bus := events.New()
	m := New(nil, bus, Config{})
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return clock }
	m.live["s"] = &serverLive{runner: &runner{}, gen: 1}

	m.onEvent("s", 1, forwarder.Event{State: forwarder.StateReady, Prev: forwarder.StateConnecting, Time: clock, RTT: 12 * time.Millisecond})
	m.onStats("s", 1, agent.Stats{Forwards: []agent.ForwardInfo{
		{Stats: forwarder.StatsSnapshot{ActiveConns: 2, BytesIn: 100, BytesOut: 10}},
		{Stats: forwarder.StatsSnapshot{ActiveConns: 1, BytesIn: 5, BytesOut: 1}},
	}})
	st := m.ServerStats("s")
	if st.State != ServerConnected || !st.ConnectedSince.Equal(clock) || st.RTTMs != 12 || st.ActiveConns != 3 || st.BytesIn != 105 || st.BytesOut != 11 {
		t.Fatalf("connected: %+v", st)
	}
	if got, ok := events.Latest(bus, TopicServerStats); !ok || got.ActiveConns != 3 {
		t.Fatalf("server.stats event %+v, %v", got, ok)
	}

	clock = clock.Add(time.Hour)
	m.onEvent("s", 1, forwarder.Event{State: forwarder.StateReconnecting, Time: clock})
	if st := m.ServerStats("s"); !st.ConnectedSince.IsZero() || st.RTTMs != 0 {
		t.Fatalf("reconnecting: %+v; want no uptime, no RTT", st)
	}
	clock = clock.Add(3 * time.Second)
	m.onEvent("s", 1, forwarder.Event{State: forwarder.StateReady, Prev: forwarder.StateReconnecting, Time: clock, Downtime: 3 * time.Second})
	m.onEvent("s", 2, forwarder.Event{State: forwarder.StateReady, Time: clock, Downtime: time.Minute}) // another generation
	st = m.ServerStats("s")
	if len(st.Reconnects) != 1 || st.Reconnects[0].DowntimeMs != 3000 || !st.ConnectedSince.Equal(clock) {
		t.Fatalf("after the reconnect: %+v", st)
	}
	// Suspect and back is the same connection: the uptime goes on.
	m.onEvent("s", 1, forwarder.Event{State: forwarder.StateSuspect, Prev: forwarder.StateReady, Time: clock.Add(time.Minute)})
	m.onEvent("s", 1, forwarder.Event{State: forwarder.StateReady, Prev: forwarder.StateSuspect, Time: clock.Add(2 * time.Minute)})
	if st := m.ServerStats("s"); !st.ConnectedSince.Equal(clock) {
		t.Fatalf("after suspect: uptime since %v, want %v", st.ConnectedSince, clock)
	}

	clock = clock.Add(ReconnectWindow)
	if st := m.ServerStats("s"); len(st.Reconnects) != 0 {
		t.Fatalf("a day later: %+v; want the reconnect pruned", st.Reconnects)
	}
	if st := m.ServerStats("unknown"); st.State != ServerDisconnected || st.Reconnects == nil {
		t.Fatalf("unknown server: %+v", st)
	}
}
