package forwarder

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// pool keeps pre-opened direct-tcpip channels for targets in use, so that a
// new local connection costs no SSH round trip. For each target it keeps K
// channels: the peak number of concurrent opens (Dials within one refill
// time, max(100 ms, 2×RTT), of each other) seen within the demand window,
// capped; K falls to zero when the target has been quiet for the window.
//
// Safety rules, because the pool must never make a request fail:
//   - a channel is handed out only while younger than half the longest time
//     this target's unused channels were seen to stay open (minus one RTT):
//     a target that closes idle connections after X is only ever given
//     channels younger than X/2. Until the pool has watched a channel
//     survive, it hands out nothing; one "probe" channel is kept past that
//     age (never handed out) to keep measuring, up to MaxAge;
//   - each pooled channel has a reader that notices EOF (then it is dropped
//     and its age recorded) and keeps early bytes (replayed after hand-out);
//   - channels of a lost or replaced connection are never handed out;
//   - a channel is handed out only while the connection shows recent signs
//     of life (PoolOptions.Freshness); otherwise a fresh open, whose round
//     trip proves the connection alive, is used instead;
//   - the newest eligible channel is handed out first.
//
// One window remains that no local check can close: a connection that dies
// within one one-way latency before a pooled channel is written to (its
// reset is still in flight). A fresh open would have failed and been
// retried there; a pooled write cannot be retried (never send twice).
type pool struct {
	s     *Session
	opts  PoolOptions
	slots int // demand ring length in seconds
	kickc chan struct{}

	mu      sync.Mutex
	closed  bool
	targets map[target]*poolTarget
}

type poolTarget struct {
	idle    []*pooledChan // oldest first
	opening int
	demand  demandRing
	recent  [8]int64 // mono of the last Dials (a ring), to measure bursts
	next    int
	// survived is the longest age at which an unused channel of this target
	// was seen still open; closedAt the shortest age at which the target
	// closed one (0: never).
	survived   time.Duration
	closedAt   time.Duration
	noPool     bool  // the target closes idle connections too fast to pool
	pausedTill int64 // mono; the server refused the channel: no pooling until then
}

type pooledChan struct {
	c      *chanConn
	gen    uint64
	opened int64 // mono
}

func newPool(s *Session, opts PoolOptions) *pool {
	n := int((opts.Window + time.Second - 1) / time.Second)
	return &pool{s: s, opts: opts, slots: max(n, 1), kickc: make(chan struct{}, 1), targets: make(map[target]*poolTarget)}
}

func (p *pool) kick() {
	select {
	case p.kickc <- struct{}{}:
	default:
	}
}

func (p *pool) sec(now int64) int64 { return now / int64(time.Second) }

// demand records one Dial to t.
func (p *pool) demand(t target) {
	if p.opts.Disabled {
		return
	}
	now := p.s.mono()
	p.mu.Lock()
	pt := p.targets[t]
	if pt == nil {
		pt = &poolTarget{demand: newDemandRing(p.slots)}
		p.targets[t] = pt
	}
	pt.recent[pt.next%len(pt.recent)] = now
	pt.next++
	w := int64(max(100*time.Millisecond, 2*p.s.rtt()))
	burst := 0
	for _, at := range pt.recent {
		if at != 0 && now-at <= w {
			burst++
		}
	}
	pt.demand.note(p.sec(now), uint16(burst))
	p.mu.Unlock()
	p.kick()
}

func age(now int64, e *pooledChan) time.Duration { return time.Duration(now - e.opened) }

// safeAge is the age up to which pt's channels may be handed out: half the
// observed survival (the pool's own live channels count), minus one RTT.
func (p *pool) safeAge(pt *poolTarget, now int64) time.Duration {
	h := pt.survived
	for _, e := range pt.idle {
		if a := age(now, e); a > h && !e.c.pre.failed() {
			h = a
		}
	}
	if pt.closedAt > 0 {
		h = min(h, pt.closedAt)
	}
	h = min(h, p.opts.MaxAge)
	return h/2 - p.s.rtt()
}

// probing: survival is still being measured (no close seen, MaxAge not reached).
func (p *pool) probing(pt *poolTarget) bool {
	return pt.closedAt == 0 && pt.survived < p.opts.MaxAge
}

// want is K for pt.
func (p *pool) want(pt *poolTarget, now int64) int {
	if pt.noPool || now < pt.pausedTill || !p.worthIt() {
		return 0
	}
	return min(int(pt.demand.peak(p.sec(now))), p.opts.MaxPerTarget)
}

// worthIt: a pooled channel saves one RTT; below MinRTT that is not worth
// the channels kept open.
func (p *pool) worthIt() bool {
	return p.opts.MinRTT < 0 || p.s.rtt() >= p.opts.MinRTT
}

// fresh reports whether the connection showed a sign of life recently
// enough for a pooled channel to be handed out.
func (p *pool) fresh(now int64) bool {
	f := p.opts.Freshness
	if f <= 0 {
		f = max(500*time.Millisecond, 3*p.s.rtt())
	}
	return time.Duration(now-p.s.lastAlive.Load()) <= f
}

// take hands out a pooled channel to t on connection gen, or nil.
func (p *pool) take(t target, gen uint64) *chanConn {
	if p.opts.Disabled {
		return nil
	}
	now := p.s.mono()
	if !p.fresh(now) {
		p.kick()
		return nil
	}
	var drop []*chanConn
	var got *chanConn
	p.mu.Lock()
	if pt := p.targets[t]; pt != nil && !pt.noPool {
		safe := p.safeAge(pt, now)
		for i := len(pt.idle) - 1; i >= 0 && got == nil; i-- { // newest first
			e := pt.idle[i]
			bad := e.gen != gen || e.c.pre.failed()
			if !bad && age(now, e) > safe {
				continue // too old to hand out (maybe the probe)
			}
			pt.idle = append(pt.idle[:i], pt.idle[i+1:]...)
			if bad || !e.c.pre.claim() {
				drop = append(drop, e.c)
				continue
			}
			got = e.c
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		_ = c.Close()
	}
	p.kick()
	return got
}

// run maintains the pool until ctx ends: expires old channels, opens
// channels up to K per target, forgets quiet targets.
func (p *pool) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(p.maintain())
		select {
		case <-ctx.Done():
			return
		case <-p.kickc:
		case <-timer.C:
		}
	}
}

func (p *pool) maintain() time.Duration {
	client, gen, ok := p.s.readyClient()
	now := p.s.mono()
	next := time.Hour
	var drop []*chanConn
	var opens []target
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return next
	}
	for t, pt := range p.targets {
		safe := p.safeAge(pt, now)
		probing := p.probing(pt)
		eligible, probeKept := 0, false
		keep := pt.idle[:0]
		for _, e := range pt.idle { // oldest first
			a := age(now, e)
			switch {
			case (ok && e.gen != gen) || e.c.pre.failed():
				drop = append(drop, e.c)
				continue
			case a >= p.opts.MaxAge:
				pt.survived = max(pt.survived, a)
				drop = append(drop, e.c)
				continue
			}
			pt.survived = max(pt.survived, a)
			if a > safe || pt.noPool {
				if !probing || probeKept {
					drop = append(drop, e.c)
					continue
				}
				probeKept = true // the oldest channel keeps measuring survival
				next = min(next, p.opts.MaxAge-a, 100*time.Millisecond)
			} else {
				eligible++
				next = min(next, safe-a+time.Millisecond)
			}
			keep = append(keep, e)
		}
		clear(pt.idle[len(keep):])
		pt.idle = keep
		k := p.want(pt, now)
		if ok {
			for n := k - eligible - pt.opening; n > 0; n-- {
				pt.opening++
				opens = append(opens, t)
			}
		}
		if len(pt.idle) == 0 && pt.opening == 0 && pt.demand.peak(p.sec(now)) == 0 && now >= pt.pausedTill {
			delete(p.targets, t) // quiet for a whole window
			continue
		}
		next = min(next, time.Second)
	}
	p.mu.Unlock()
	for _, c := range drop {
		_ = c.Close()
	}
	for _, t := range opens {
		if !p.s.spawnOpen(func() { p.openOne(t, client, gen) }) {
			p.mu.Lock()
			p.targets[t].opening--
			p.mu.Unlock()
		}
	}
	return max(next, time.Millisecond)
}

func (p *pool) openOne(t target, client SSHClient, gen uint64) {
	r := openChannel(client, t)
	now := p.s.mono()
	p.mu.Lock()
	pt := p.targets[t] // kept while opening > 0
	pt.opening--
	closed := p.closed
	if r.err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(r.err, &oce) {
			// The server refuses this target: pooling it only makes noise.
			pt.pausedTill = now + int64(p.opts.Window)
		}
		p.mu.Unlock()
		p.s.log.Debug("pool: opening a channel failed", "target", t.String(), "err", r.err)
		return
	}
	p.mu.Unlock()
	if closed {
		p.s.discardChannel(r.ch, r.reqs)
		return
	}
	p.s.touch()
	pre := &prefetch{done: make(chan struct{})}
	c := p.s.newChanConn(r.ch, r.reqs, gen, t, pre)
	e := &pooledChan{c: c, gen: gen, opened: now}
	if !p.s.spawn(func() { c.prefetchLoop(func(err error) { p.discard(t, e, err) }) }) {
		pre.finish()
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	pt.idle = append(pt.idle, e)
	p.mu.Unlock()
	p.kick()
}

// discard drops a pooled channel whose reader saw an error while it waited.
// An EOF from the server on a healthy connection means the target closes
// idle connections: the pool learns to hand out only younger channels.
func (p *pool) discard(t target, e *pooledChan, err error) {
	now := p.s.mono()
	current := p.s.isCurrent(e.gen)
	p.mu.Lock()
	found := false
	if pt := p.targets[t]; pt != nil {
		for i, x := range pt.idle {
			if x == e {
				pt.idle = append(pt.idle[:i], pt.idle[i+1:]...)
				found = true
				break
			}
		}
		if found && current && errors.Is(err, io.EOF) {
			a := age(now, e)
			if pt.closedAt == 0 || a < pt.closedAt {
				pt.closedAt = a
				pt.noPool = p.safeAge(pt, now) < p.opts.MinAge
				p.s.log.Debug("pool: target closed an unused channel; handing out only younger ones",
					"target", t.String(), "closedAfter", a, "safeAge", p.safeAge(pt, now), "pooling", !pt.noPool)
			}
		}
	}
	p.mu.Unlock()
	if found {
		_ = e.c.Close()
	}
	p.kick()
}

// flush closes every pooled channel (the connection was lost or replaced);
// demand is kept so the pool refills on the next connection.
func (p *pool) flush() {
	var drop []*chanConn
	p.mu.Lock()
	for _, pt := range p.targets {
		for _, e := range pt.idle {
			drop = append(drop, e.c)
		}
		clear(pt.idle)
		pt.idle = pt.idle[:0]
	}
	p.mu.Unlock()
	for _, c := range drop {
		_ = c.Close()
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.flush()
}

// PoolStats describes the pool for one target.
type PoolStats struct {
	Target  string        `json:"target"`
	Idle    int           `json:"idle"`
	Opening int           `json:"opening"`
	Want    int           `json:"want"`
	SafeAge time.Duration `json:"safeAgeNs"` // channels younger than this may be handed out
	Pooling bool          `json:"pooling"`   // false: the target is not pooled (it closes idle connections too fast, refuses, or the RTT is too small to bother)
}

// PoolStats returns the state of the channel pool per target.
func (s *Session) PoolStats() []PoolStats {
	p := s.pool
	now := s.mono()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PoolStats, 0, len(p.targets))
	for t, pt := range p.targets {
		out = append(out, PoolStats{
			Target: t.String(), Idle: len(pt.idle), Opening: pt.opening, Want: p.want(pt, now),
			SafeAge: p.safeAge(pt, now), Pooling: !pt.noPool && now >= pt.pausedTill && !p.opts.Disabled && p.worthIt(),
		})
	}
	return out
}

// demandRing keeps the peak burst per second over the last len(slots)
// seconds.
type demandRing struct {
	slots []uint16
	last  int64 // second of the newest slot
	init  bool
}

func newDemandRing(n int) demandRing { return demandRing{slots: make([]uint16, n)} }

func (r *demandRing) advance(sec int64) {
	n := int64(len(r.slots))
	if !r.init {
		r.last, r.init = sec, true
		return
	}
	if sec <= r.last {
		return
	}
	if sec-r.last >= n {
		clear(r.slots)
	} else {
		for i := r.last + 1; i <= sec; i++ {
			r.slots[i%n] = 0
		}
	}
	r.last = sec
}

func (r *demandRing) note(sec int64, v uint16) {
	r.advance(sec)
	i := sec % int64(len(r.slots))
	r.slots[i] = max(r.slots[i], v)
}

func (r *demandRing) peak(sec int64) uint16 {
	r.advance(sec)
	var m uint16
	for _, v := range r.slots {
		m = max(m, v)
	}
	return m
}
