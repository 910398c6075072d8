package servers

import (
	"slices"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/forwarder"
)

// TopicServerStats carries ServerStats: one server's dashboard, at most
// about once a second per server (the agent's EventStats, batched), and on
// every change of its connection state.
var TopicServerStats = events.NewTopic[ServerStats]("server.stats")

// ReconnectWindow is how far back a server's reconnects are kept.
const ReconnectWindow = 24 * time.Hour

// maxReconnects caps a server's reconnect ring (the oldest go first).
const maxReconnects = 256

// Reconnect is one outage the login recovered from on its own.
type Reconnect struct {
	Time       time.Time `json:"time"` // when the connection was back
	DowntimeMs int64     `json:"downtimeMs"`
}

// ServerStats is the server page's dashboard (the `server.stats` event).
type ServerStats struct {
	ID    string      `json:"id"`
	State ServerState `json:"state"`
	// ConnectedSince is when the current connection came up (zero while
	// not connected): the uptime.
	ConnectedSince time.Time `json:"connectedSince,omitzero"`
	// RTTMs is the round-trip time the last ping measured (0: unknown).
	RTTMs float64 `json:"rttMs"`
	// ActiveConns, BytesIn and BytesOut sum the login's forwards (apps,
	// rules), as of Time; the counters start again with a new login.
	ActiveConns int64  `json:"activeConns"`
	BytesIn     uint64 `json:"bytesIn"`
	BytesOut    uint64 `json:"bytesOut"`
	// Reconnects are the last 24 h's, oldest first.
	Reconnects []Reconnect `json:"reconnects"`
	Time       time.Time   `json:"time"`
}

// reconnectRing keeps a server's reconnects of the last ReconnectWindow.
type reconnectRing struct{ list []Reconnect }

// add records a reconnect at t after downtime down, and prunes.
func (r *reconnectRing) add(t time.Time, down time.Duration) {
	r.list = append(r.list, Reconnect{Time: t, DowntimeMs: down.Milliseconds()})
	if n := len(r.list); n > maxReconnects {
		r.list = slices.Delete(r.list, 0, n-maxReconnects)
	}
	r.prune(t)
}

// prune drops the reconnects older than ReconnectWindow before now.
func (r *reconnectRing) prune(now time.Time) {
	cut := now.Add(-ReconnectWindow)
	i := 0
	for i < len(r.list) && !r.list[i].Time.After(cut) {
		i++
	}
	r.list = slices.Delete(r.list, 0, i)
}

// within is a copy of the reconnects of the window before now.
func (r *reconnectRing) within(now time.Time) []Reconnect {
	r.prune(now)
	out := make([]Reconnect, len(r.list))
	copy(out, r.list)
	return out
}

// ServerStats returns a server's dashboard now.
func (m *Manager) ServerStats(id string) ServerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statsLocked(id)
}

func (m *Manager) statsLocked(id string) ServerStats {
	now := m.now()
	s := ServerStats{ID: id, Time: now, Reconnects: []Reconnect{}}
	lv := m.live[id]
	if lv == nil {
		return s
	}
	s.State, s.ConnectedSince, s.Reconnects = lv.state, lv.upSince, lv.reconnects.within(now)
	if lv.state == ServerConnected {
		s.RTTMs = float64(lv.rtt.Microseconds()) / 1000
	}
	if lv.runner != nil {
		s.ActiveConns, s.BytesIn, s.BytesOut = lv.traffic.ActiveConns, lv.traffic.BytesIn, lv.traffic.BytesOut
		if !lv.trafficAt.IsZero() {
			s.Time = lv.trafficAt
		}
	}
	return s
}

func (m *Manager) publishStats(id string) {
	m.mu.Lock()
	s := m.statsLocked(id)
	m.mu.Unlock()
	events.Publish(m.bus, TopicServerStats, s)
}

// noteStateLocked keeps what the dashboard needs of a session event: the
// uptime, the RTT, and a reconnect with its downtime.
func (m *Manager) noteStateLocked(lv *serverLive, e forwarder.Event) {
	if e.RTT > 0 {
		lv.rtt = e.RTT
	}
	switch e.State {
	case forwarder.StateReady:
		if e.Downtime > 0 {
			t := e.Time
			if t.IsZero() {
				t = m.now()
			}
			lv.reconnects.add(t, e.Downtime)
		}
		if lv.upSince.IsZero() || e.Prev != forwarder.StateSuspect {
			lv.upSince = nonZero(e.Time, m.now)
		}
	case forwarder.StateSuspect:
	default:
		lv.upSince = time.Time{}
	}
}

// onStats keeps a login's forward counters, summed, and publishes them.
func (m *Manager) onStats(id string, gen uint64, st agent.Stats) {
	m.mu.Lock()
	lv := m.live[id]
	if lv == nil || lv.gen != gen || lv.runner == nil {
		m.mu.Unlock()
		return
	}
	var sum forwarder.StatsSnapshot
	for _, f := range st.Forwards {
		sum.ActiveConns += f.Stats.ActiveConns
		sum.BytesIn += f.Stats.BytesIn
		sum.BytesOut += f.Stats.BytesOut
	}
	lv.traffic, lv.trafficAt = sum, m.now()
	if st.Session.RTT > 0 {
		lv.rtt = st.Session.RTT
	}
	m.mu.Unlock()
	m.publishStats(id)
}

func nonZero(t time.Time, now func() time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t
}

// clearTraffic forgets the uptime and counters of a login that ended.
func (lv *serverLive) clearTraffic() {
	lv.upSince, lv.rtt, lv.traffic, lv.trafficAt = time.Time{}, 0, forwarder.StatsSnapshot{}, time.Time{}
}
