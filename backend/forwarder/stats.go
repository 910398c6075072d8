package forwarder

import (
	"sync"
	"sync/atomic"
	"time"
)

// DialBucketsMs are the upper bounds (in milliseconds) of the dial latency
// histogram; a last, unbounded bucket counts the rest.
var DialBucketsMs = [...]float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// Stats counts what one forward did. The zero value is ready; methods are
// safe for concurrent use and allocation-free on the data path.
type Stats struct {
	bytesIn     atomic.Uint64
	bytesOut    atomic.Uint64
	active      atomic.Int64
	total       atomic.Uint64
	failed      atomic.Uint64
	retried     atomic.Uint64
	refused     atomic.Uint64
	pooled      atomic.Uint64
	dialBuckets [len(DialBucketsMs) + 1]atomic.Uint64
	dialCount   atomic.Uint64
	dialSumNs   atomic.Uint64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

// StatsSnapshot is a copy of a forward's Stats, ready for JSON.
type StatsSnapshot struct {
	BytesIn     uint64        `json:"bytesIn"`  // server → local client
	BytesOut    uint64        `json:"bytesOut"` // local client → server
	ActiveConns int64         `json:"activeConns"`
	TotalConns  uint64        `json:"totalConns"`
	FailedConns uint64        `json:"failedConns"` // could not be forwarded or broke
	Retries     uint64        `json:"retries"`     // moved to a new channel before any byte was sent
	Refused     uint64        `json:"refused"`     // refused by the Guard
	Pooled      uint64        `json:"pooled"`      // served by a pre-opened channel
	DialLatency HistogramSnap `json:"dialLatency"`
	LastError   string        `json:"lastError,omitempty"`
	LastErrorAt time.Time     `json:"lastErrorAt,omitzero"`
}

// HistogramSnap is a fixed-bucket histogram: Counts[i] counts values ≤
// BoundsMs[i] (and > BoundsMs[i-1]); the last count has no upper bound.
type HistogramSnap struct {
	BoundsMs []float64 `json:"boundsMs"`
	Counts   []uint64  `json:"counts"`
	Count    uint64    `json:"count"`
	SumMs    float64   `json:"sumMs"`
}

// Quantile estimates the q-quantile (0..1) in milliseconds as the upper
// bound of the bucket holding it (the last bound for the open bucket).
func (h HistogramSnap) Quantile(q float64) float64 {
	if h.Count == 0 || len(h.Counts) == 0 {
		return 0
	}
	rank := uint64(q*float64(h.Count) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			if i < len(h.BoundsMs) {
				return h.BoundsMs[i]
			}
			break
		}
	}
	return h.BoundsMs[len(h.BoundsMs)-1]
}

func (s *Stats) observeDial(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	i := 0
	for i < len(DialBucketsMs) && ms > DialBucketsMs[i] {
		i++
	}
	s.dialBuckets[i].Add(1)
	s.dialCount.Add(1)
	s.dialSumNs.Add(uint64(max(d, 0)))
}

func (s *Stats) setErr(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.lastErr = err.Error()
	s.lastErrAt = time.Now()
	s.mu.Unlock()
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	snap := StatsSnapshot{
		BytesIn:     s.bytesIn.Load(),
		BytesOut:    s.bytesOut.Load(),
		ActiveConns: s.active.Load(),
		TotalConns:  s.total.Load(),
		FailedConns: s.failed.Load(),
		Retries:     s.retried.Load(),
		Refused:     s.refused.Load(),
		Pooled:      s.pooled.Load(),
		DialLatency: HistogramSnap{
			BoundsMs: append([]float64(nil), DialBucketsMs[:]...),
			Counts:   make([]uint64, len(s.dialBuckets)),
			Count:    s.dialCount.Load(),
			SumMs:    float64(s.dialSumNs.Load()) / float64(time.Millisecond),
		},
	}
	for i := range s.dialBuckets {
		snap.DialLatency.Counts[i] = s.dialBuckets[i].Load()
	}
	s.mu.Lock()
	snap.LastError, snap.LastErrorAt = s.lastErr, s.lastErrAt
	s.mu.Unlock()
	return snap
}
