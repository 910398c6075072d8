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
// capped per target (MaxPerTarget) and per session (MaxPerSession); K falls
// to zero when the target has been quiet for the window, and by one for
// each channel that expired unused since the target's last Dial (an idle
// target's pool shrinks to one channel instead of churning K).
//
// Which channels are handed out, because the pool must never make a
// request fail:
//   - a safe prior: before the pool has seen anything of a target, a channel
//     younger than YoungAge (1 s) is handed out. No common server closes a
//     connection that has not sent its request that fast (nginx 60 s,
//     Apache 20–40 s, uvicorn 5 s, Tornado minutes, Go's servers only with
//     a ReadHeaderTimeout of seconds), so back-to-back connections, the
//     shape of a page load, are served from the first one;
//   - only what the pool observed lowers it: a target seen closing an
//     unused channel at age X is from then on given only channels younger
//     than X/2 − RTT; if that is under MinAge (a target that closes them at
//     once), the pool switches itself off for the target;
//   - what it observed can raise it: one channel is kept past the safe age
//     (never handed out) to measure survival, up to MaxAge; a target whose
//     unused channels survive S gets channels up to S/2 − RTT;
//   - a target that speaks first (a banner: SSH, SMTP, MySQL) is never
//     pre-opened to again once a pooled channel received bytes unasked:
//     pooled connections would only show up in its logs as clients that
//     never said a word (sshd: kex_exchange_identification). Channels
//     already open are still handed out, their early bytes replayed;
//   - each pooled channel has a reader that notices EOF (then it is dropped
//     and its age recorded) and keeps early bytes (replayed after hand-out);
//   - channels of a lost or replaced connection are never handed out;
//   - a channel is handed out only while the server answered real use of
//     the connection recently (PoolOptions.Freshness, Session.answered: a
//     login, a keepalive reply, a Dial's open, data on a channel in use);
//     the pool's own refill opens are no proof, or on an idle connection
//     they would keep it looking alive while the network changes under it
//     (issue 11). Otherwise a fresh open, whose round trip proves the
//     connection alive, is used instead;
//   - no channel is handed out while the connection is suspect (a wake, a
//     network change, a stalled open) or being verified;
//   - the newest eligible channel is handed out first.
//
// A Dial under OneShot (discovery's probes) is not demand and takes no
// pooled channel: a probe says nothing about the next connection.
//
// Seeding: the pool remembers each target's recent peak for Remember; when
// the session (re)connects, every remembered target's peak counts as demand
// again, so the first page load after a reconnect is pooled too. SeedPool
// adds a hint from outside (a web forward is an app open in a tab; after an
// agent restart the parent sets its forwards again, and they seed).
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
	recent  map[target]seedPeak // targets' recent peaks, to seed on (re)connect
	seenGen uint64              // the connection the seeds were applied for
}

// poolOff says why the pool is switched off for a target.
type poolOff uint8

const (
	poolOn           poolOff = iota
	poolSpeaksFirst          // sends bytes before it is asked (a banner)
	poolClosesUnused         // closes unused connections too early to pool
)

func (o poolOff) String() string {
	switch o {
	case poolSpeaksFirst:
		return "the target speaks first"
	case poolClosesUnused:
		return "the target closes unused connections at once"
	}
	return ""
}

type poolTarget struct {
	idle    []*pooledChan // oldest first
	opening int
	demand  demandRing
	recent  [8]int64 // mono of the last Dials (a ring), to measure bursts
	next    int
	// survived is the longest age at which an unused channel of this target
	// was seen still open; closedAt the shortest age at which the target
	// closed one (if closeSeen).
	survived   time.Duration
	closedAt   time.Duration
	closeSeen  bool
	off        poolOff
	pausedTill int64 // mono; the server refused the channel: no pooling until then
	wasted     int   // channels that expired unused since the last Dial

	hits, opened, expired uint64
}

type pooledChan struct {
	c      *chanConn
	gen    uint64
	opened int64 // mono: when its open was sent
}

// spoke reports whether the target sent bytes on this channel unasked.
func (e *pooledChan) spoke() bool {
	p := e.c.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.buf) > 0
}

// seedPeak is a target's recent peak demand and when it was last seen.
type seedPeak struct {
	n  uint16
	at int64 // mono
}

// maxRemembered bounds the targets whose peaks the pool remembers.
const maxRemembered = 64

type oneShotKey struct{}

// OneShot marks ctx for a Dial that is a one-shot probe (discovery): it is
// not demand for the channel pool and takes no pooled channel.
func OneShot(ctx context.Context) context.Context {
	return context.WithValue(ctx, oneShotKey{}, true)
}

func isOneShot(ctx context.Context) bool { v, _ := ctx.Value(oneShotKey{}).(bool); return v }

func newPool(s *Session, opts PoolOptions) *pool {
	n := int((opts.Window + time.Second - 1) / time.Second)
	return &pool{s: s, opts: opts, slots: max(n, 1), kickc: make(chan struct{}, 1),
		targets: make(map[target]*poolTarget), recent: make(map[target]seedPeak)}
}

func (p *pool) kick() {
	select {
	case p.kickc <- struct{}{}:
	default:
	}
}

func (p *pool) sec(now int64) int64 { return now / int64(time.Second) }

func (p *pool) targetLocked(t target) *poolTarget {
	pt := p.targets[t]
	if pt == nil {
		pt = &poolTarget{demand: newDemandRing(p.slots)}
		p.targets[t] = pt
	}
	return pt
}

// demand records one Dial to t (unless ctx is a OneShot probe's).
func (p *pool) demand(ctx context.Context, t target) {
	if p.opts.Disabled || isOneShot(ctx) {
		return
	}
	now := p.s.mono()
	p.mu.Lock()
	pt := p.targetLocked(t)
	pt.recent[pt.next%len(pt.recent)] = now
	pt.next++
	pt.wasted = 0
	w := int64(max(100*time.Millisecond, 2*p.s.rtt()))
	burst := 0
	for _, at := range pt.recent {
		if at != 0 && now-at <= w {
			burst++
		}
	}
	pt.demand.note(p.sec(now), uint16(burst))
	p.rememberLocked(t, uint16(burst), now)
	p.mu.Unlock()
	p.kick()
}

// rememberLocked keeps t's peak for seeding after a (re)connect.
func (p *pool) rememberLocked(t target, n uint16, now int64) {
	r, ok := p.recent[t]
	if ok && time.Duration(now-r.at) <= p.opts.Window {
		n = max(n, r.n) // the peak within the last window
	}
	p.recent[t] = seedPeak{n: n, at: now}
	if len(p.recent) <= maxRemembered {
		return
	}
	var oldest target
	first := true
	for k, v := range p.recent {
		if first || v.at < p.recent[oldest].at {
			oldest, first = k, false
		}
	}
	delete(p.recent, oldest)
}

// seed notes n concurrent connections to t as demand now, and remembers it
// for the next (re)connect.
func (p *pool) seed(t target, n int) {
	if p.opts.Disabled || n <= 0 {
		return
	}
	n = min(n, p.opts.MaxPerTarget)
	_, _, ready := p.s.readyClient()
	now := p.s.mono()
	p.mu.Lock()
	p.rememberLocked(t, uint16(n), now)
	if ready {
		pt := p.targetLocked(t)
		pt.demand.note(p.sec(now), uint16(n))
		pt.wasted = 0
	}
	p.mu.Unlock()
	p.kick()
}

// applySeedsLocked counts every remembered target's recent peak as demand:
// the session has just (re)connected.
func (p *pool) applySeedsLocked(now int64) {
	for t, r := range p.recent {
		if time.Duration(now-r.at) > p.opts.Remember {
			delete(p.recent, t)
			continue
		}
		pt := p.targetLocked(t)
		pt.demand.note(p.sec(now), r.n)
		pt.wasted = 0
	}
}

// PoolSeeder is a Dialer whose pool can be told what to expect: Session,
// and agent.LocalLogin for its current Session.
type PoolSeeder interface {
	SeedPool(host string, port int, n int)
}

// BrowserConnsPerHost is how many connections a browser opens to one host
// at most (Chromium and Firefox: 6): a web forward seeds its target's pool
// with it.
const BrowserConnsPerHost = 6

// SeedPool tells the pool that host:port will likely get n connections at
// once soon (an app open in a tab: its page's next load), so that it
// pre-opens channels for it now if connected, and again after every
// (re)connect within PoolOptions.Remember.
func (s *Session) SeedPool(host string, port int, n int) {
	if host == "" || port <= 0 || port > 65535 {
		return
	}
	s.pool.seed(target{host: host, port: port}, n)
}

func age(now int64, e *pooledChan) time.Duration { return time.Duration(now - e.opened) }

// safeAge is the age up to which pt's channels may be handed out: half the
// shortest age at which the target closed an unused channel, minus one RTT;
// before any close was seen, the larger of YoungAge (the safe prior) and
// half the observed survival (the pool's own live channels count) minus
// one RTT.
func (p *pool) safeAge(pt *poolTarget, now int64) time.Duration {
	if pt.closeSeen {
		return pt.closedAt/2 - p.s.rtt()
	}
	h := pt.survived
	for _, e := range pt.idle {
		if a := age(now, e); a > h && !e.c.pre.failed() {
			h = a
		}
	}
	h = min(h, p.opts.MaxAge)
	safe := h/2 - p.s.rtt()
	if p.opts.YoungAge > 0 {
		safe = max(safe, min(p.opts.YoungAge, p.opts.MaxAge))
	}
	return safe
}

// probing: survival is still being measured (no close seen, MaxAge not reached).
func (p *pool) probing(pt *poolTarget) bool {
	return pt.off == poolOn && !pt.closeSeen && pt.survived < p.opts.MaxAge
}

// want is K for pt.
func (p *pool) want(pt *poolTarget, now int64) int {
	if pt.off != poolOn || now < pt.pausedTill || !p.worthIt() {
		return 0
	}
	k := min(int(pt.demand.peak(p.sec(now))), p.opts.MaxPerTarget)
	if pt.wasted > 0 {
		k = max(k-pt.wasted, min(k, 1))
	}
	return k
}

// worthIt: a pooled channel saves one RTT; below MinRTT that is not worth
// the channels kept open.
func (p *pool) worthIt() bool {
	return p.opts.MinRTT < 0 || p.s.rtt() >= p.opts.MinRTT
}

// fresh reports whether the server answered real use of the connection
// recently enough for a pooled channel to be handed out (Session.answered:
// the pool's own refill opens do not count).
func (p *pool) fresh(now int64) bool {
	f := p.opts.Freshness
	if f <= 0 {
		f = max(500*time.Millisecond, 3*p.s.rtt())
	}
	return time.Duration(now-p.s.lastAnswered.Load()) <= f
}

// switchOffLocked stops pre-opening to t.
func (p *pool) switchOffLocked(t target, pt *poolTarget, why poolOff) {
	if pt.off != poolOn {
		return
	}
	pt.off = why
	p.s.log.Debug("pool: not pre-opening channels to this target any more", "target", t.String(), "why", why.String())
}

// take hands out a pooled channel to t on connection gen, or nil.
func (p *pool) take(ctx context.Context, t target, gen uint64) *chanConn {
	if p.opts.Disabled || isOneShot(ctx) {
		return nil
	}
	now := p.s.mono()
	if !p.fresh(now) || !p.s.poolMayHandOut(gen) {
		p.kick()
		return nil
	}
	var drop []*chanConn
	var got *chanConn
	p.mu.Lock()
	if pt := p.targets[t]; pt != nil && pt.off != poolClosesUnused {
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
			if e.spoke() {
				p.switchOffLocked(t, pt, poolSpeaksFirst)
			}
			pt.hits++
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
	measure := false
	if ok && gen != p.seenGen {
		p.seenGen = gen
		p.applySeedsLocked(now)
		// Seeds wait for a measured RTT (MinRTT); a fresh Session has none
		// until its first open, which may be the page load the seeds are
		// for: one keepalive measures it now.
		measure = len(p.recent) > 0 && p.s.rtt() == 0 && p.opts.MinRTT > 0
	}
	eligible := make(map[target]int, len(p.targets))
	total := 0 // channels idle or opening, for the per-session cap
	for t, pt := range p.targets {
		safe := p.safeAge(pt, now)
		probing := p.probing(pt)
		probeKept := false
		keep := pt.idle[:0]
		for _, e := range pt.idle { // oldest first
			a := age(now, e)
			if (ok && e.gen != gen) || e.c.pre.failed() {
				drop = append(drop, e.c)
				continue
			}
			if e.spoke() {
				p.switchOffLocked(t, pt, poolSpeaksFirst)
			}
			pt.survived = max(pt.survived, a)
			switch {
			case a >= p.opts.MaxAge || pt.off == poolClosesUnused:
				drop = append(drop, e.c)
				continue
			case a > safe:
				if !probing || probeKept {
					drop = append(drop, e.c)
					pt.wasted++
					pt.expired++
					continue
				}
				probeKept = true // the oldest channel keeps measuring survival
				next = min(next, p.opts.MaxAge-a, 100*time.Millisecond)
			default:
				eligible[t]++
				next = min(next, safe-a+time.Millisecond)
			}
			keep = append(keep, e)
		}
		clear(pt.idle[len(keep):])
		pt.idle = keep
		total += len(pt.idle) + pt.opening
		if len(pt.idle) == 0 && pt.opening == 0 && pt.demand.peak(p.sec(now)) == 0 && now >= pt.pausedTill {
			delete(p.targets, t) // quiet for a whole window
			delete(eligible, t)
			continue
		}
		next = min(next, time.Second)
	}
	if ok {
		for t, pt := range p.targets {
			for n := p.want(pt, now) - eligible[t] - pt.opening; n > 0 && total < p.opts.MaxPerSession; n-- {
				pt.opening++
				pt.opened++
				total++
				opens = append(opens, t)
			}
		}
	}
	p.mu.Unlock()
	if measure {
		p.s.spawn(func() {
			if rtt, err := client.Ping(p.s.ctx, p.s.pingTimeout()); err == nil {
				p.s.noteRTT(rtt)
				p.s.answered()
				p.kick()
			}
		})
	}
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
	// A channel's age counts from when its open was sent: the server
	// connected to the target before its confirmation came back, maybe
	// long before on a slow path, and a target's idle timer runs from then.
	start := p.s.mono()
	r := openChannel(client, t)
	now := p.s.mono()
	p.mu.Lock()
	pt := p.targets[t] // kept while opening > 0
	closed := p.closed
	if r.err != nil {
		pt.opening--
		var oce *ssh.OpenChannelError
		if errors.As(r.err, &oce) {
			// The server refuses this target: pooling it only makes noise.
			pt.pausedTill = now + int64(p.opts.Window)
		}
		p.mu.Unlock()
		p.s.log.Debug("pool: opening a channel failed", "target", t.String(), "err", r.err)
		return
	}
	// The channel counts as opening until it is idle (one critical
	// section): in between, maintain would see it nowhere and open another
	// past the caps.
	if closed {
		pt.opening--
	}
	p.mu.Unlock()
	if closed {
		p.s.discardChannel(r.ch, r.reqs)
		return
	}
	p.s.touch() // a sign of life, but not one that lets the pool hand out (see fresh)
	pre := &prefetch{done: make(chan struct{})}
	c := p.s.newChanConn(r.ch, r.reqs, gen, t, pre)
	e := &pooledChan{c: c, gen: gen, opened: start}
	if !p.s.spawn(func() { c.prefetchLoop(func(err error) { p.discard(t, e, err) }) }) {
		p.mu.Lock()
		pt.opening--
		p.mu.Unlock()
		pre.finish()
		_ = c.Close()
		return
	}
	p.mu.Lock()
	pt.opening--
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
// unused connections: the pool learns to hand out only younger ones, or
// switches itself off for the target if they would have to be too young.
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
		if found && e.spoke() {
			p.switchOffLocked(t, pt, poolSpeaksFirst)
		}
		if found && current && errors.Is(err, io.EOF) {
			a := age(now, e)
			if !pt.closeSeen || a < pt.closedAt {
				pt.closeSeen, pt.closedAt = true, a
				safe := p.safeAge(pt, now)
				p.s.log.Debug("pool: target closed an unused channel; handing out only younger ones",
					"target", t.String(), "closedAfter", a, "safeAge", safe)
				if safe < p.opts.MinAge {
					p.switchOffLocked(t, pt, poolClosesUnused)
				}
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
	Pooling bool          `json:"pooling"`   // false: the target is not pooled (it speaks first, closes unused connections at once, refuses, or the RTT is too small to bother)
	Off     string        `json:"off,omitempty"`
	Hits    uint64        `json:"hits"`    // Dials served by a pooled channel
	Opened  uint64        `json:"opened"`  // channels pre-opened
	Expired uint64        `json:"expired"` // pre-opened channels closed unused for their age
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
			SafeAge: p.safeAge(pt, now), Pooling: pt.off == poolOn && now >= pt.pausedTill && !p.opts.Disabled && p.worthIt(),
			Off: pt.off.String(), Hits: pt.hits, Opened: pt.opened, Expired: pt.expired,
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
