package forwarder

import (
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with jitter for reconnect attempts.
// The delay after the n-th consecutive failure is
// min(Max, Initial·Multiplier^(n-1)), then spread by ±Jitter. Losing a
// working connection is not a failure: the first reconnect is immediate.
type Backoff struct {
	Initial    time.Duration // default 100 ms: a fast first retry
	Max        time.Duration // default 10 s
	Multiplier float64       // default 2
	Jitter     float64       // fraction in [0,1]; default 0.2 (±20 %)
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		b.Jitter = 0.2
	}
	return b
}

// Delay returns the wait after the failures-th consecutive failure (≥1).
// rnd returns a number in [0,1); nil uses math/rand/v2.
func (b Backoff) Delay(failures int, rnd func() float64) time.Duration {
	b = b.withDefaults()
	if failures < 1 {
		return 0
	}
	d := float64(b.Initial)
	for i := 1; i < failures && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	if rnd == nil {
		rnd = rand.Float64
	}
	d *= 1 + b.Jitter*(2*rnd()-1)
	return time.Duration(d)
}

// PoolOptions tunes the Session's channel pool.
type PoolOptions struct {
	// Disabled turns the pool off: every Dial opens a channel.
	Disabled bool
	// MaxPerTarget caps how many channels are kept open (or opening) per
	// target; default 8.
	MaxPerTarget int
	// MaxPerSession caps how many channels are kept open (or opening) for
	// all targets of the login together; default 16 (at least MaxPerTarget).
	MaxPerSession int
	// YoungAge is the safe prior: before the pool has seen a target close an
	// unused channel, a channel younger than this is handed out without
	// first proving that the target keeps unused connections open that
	// long (no common server closes one that fast: nginx 60 s, Apache
	// 20–40 s, uvicorn 5 s). Only what the pool observes lowers it: a target
	// seen closing an unused channel at age X gets channels younger than
	// X/2 − RTT from then on. Default 1 s; negative: no prior (a channel is
	// handed out only after the pool saw this target's channels survive).
	YoungAge time.Duration
	// MaxAge is the longest a pre-opened channel is kept; default 4 s. One
	// unused channel per target is kept until then to measure survival: a
	// target whose unused channels survive S gets channels younger than
	// S/2 − RTT when that is more than YoungAge.
	MaxAge time.Duration
	// MinAge: when a target closes unused channels so early that the age a
	// channel may be handed out at falls below this, the pool switches
	// itself off for the target until it has been quiet for a Window;
	// default 50 ms.
	MinAge time.Duration
	// MinRTT: the pool works only while the measured round-trip time is at
	// least this; below it a fresh open costs less than keeping channels
	// open (and their refills compete for CPU). Default 1 ms; negative pools
	// at any RTT.
	MinRTT time.Duration
	// Freshness: a pooled channel is handed out only if the server answered
	// real use of the connection (a login, a ping reply, a Dial's open, data
	// on a channel in use; not the pool's own refill opens) within this
	// long; otherwise Dial opens a fresh channel, whose round trip doubles
	// as a liveness check. This bounds the window in which a connection that died
	// silently (a black-holed path) could swallow a request written into a
	// pooled channel. Zero adapts: max(500 ms, 3×RTT).
	Freshness time.Duration
	// Window is how far back demand is remembered: K is the peak number of
	// concurrent opens within it, and falls to zero when the target has been
	// quiet for a whole Window. Default 1 min.
	Window time.Duration
	// Remember: when the Session (re)connects, each target dialed (or
	// seeded, Session.SeedPool) within this long is seeded with its recent
	// peak, so the first page load after a reconnect is pooled too.
	// Default 10 min.
	Remember time.Duration
}

func (o PoolOptions) withDefaults() PoolOptions {
	if o.MaxPerTarget <= 0 {
		o.MaxPerTarget = 8
	}
	if o.MaxPerSession <= 0 {
		o.MaxPerSession = max(16, o.MaxPerTarget)
	}
	if o.YoungAge == 0 {
		o.YoungAge = time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 4 * time.Second
	}
	if o.Remember <= 0 {
		o.Remember = 10 * time.Minute
	}
	if o.MinAge <= 0 {
		o.MinAge = 50 * time.Millisecond
	}
	if o.MinRTT == 0 {
		o.MinRTT = time.Millisecond
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	return o
}

// SessionOptions configures a Session. The zero value is usable.
type SessionOptions struct {
	// Name identifies the login in logs and events (e.g. "alice@gpu1"). Never
	// put secrets here.
	Name string
	// Logger receives the Session's logs; nil discards them.
	Logger *slog.Logger
	// Publisher receives state-change events; nil drops them.
	Publisher Publisher

	// IdleTimeout closes the SSH connection after it had no open channel for
	// this long; default 5 min; negative keeps it open forever.
	IdleTimeout time.Duration
	// PingIdleThreshold: a connection that showed no sign of life for longer
	// than this is pinged before the next channel rides on it; default 30 s;
	// negative never pings for idleness (Suspect still pings).
	PingIdleThreshold time.Duration
	// PingTimeout bounds every keepalive. Zero (the default) adapts to the
	// measured round-trip time: max(3×RTT, MinPingTimeout), capped at
	// MaxPingTimeout (2 s before any RTT was measured).
	PingTimeout    time.Duration
	MinPingTimeout time.Duration // default 1 s
	MaxPingTimeout time.Duration // default 5 s
	// StallTimeout: a channel open, or a reply after data was written, that
	// takes longer than this makes the Session verify its connection with a
	// ping and a speculative dial of a fresh connection; the first to prove
	// alive is used (the open or the request keeps waiting if the ping is
	// answered first). Zero adapts to the measured round-trip time:
	// max(4×RTT, MinStallTimeout), capped at MaxStallTimeout (the cap before
	// any RTT was measured).
	StallTimeout    time.Duration
	MinStallTimeout time.Duration // default 300 ms
	MaxStallTimeout time.Duration // default 2 s
	// ConnectTimeout bounds one Connect call; default 20 s.
	ConnectTimeout time.Duration
	// ReconnectWindow: when a connection that was in use (an open channel, or
	// a Dial within this window) is lost, the Session reconnects in the
	// background, retrying with Backoff for up to this long; default 1 min;
	// negative reconnects only on demand.
	ReconnectWindow time.Duration
	// KeepaliveInterval: while remote forwards hold the Session, a
	// connection without a sign of life for this long is pinged, so that a
	// dead path (a network change that left the old flows silent) is noticed
	// and the forwards are requested again on a new connection; default 2 s.
	KeepaliveInterval time.Duration
	// Backoff spaces reconnect attempts.
	Backoff Backoff
	// Pool tunes the channel pool.
	Pool PoolOptions
}

func (o SessionOptions) withDefaults() SessionOptions {
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.PingIdleThreshold == 0 {
		o.PingIdleThreshold = 30 * time.Second
	}
	if o.MinPingTimeout <= 0 {
		o.MinPingTimeout = time.Second
	}
	if o.MaxPingTimeout <= 0 {
		o.MaxPingTimeout = 5 * time.Second
	}
	if o.MaxPingTimeout < o.MinPingTimeout {
		o.MaxPingTimeout = o.MinPingTimeout
	}
	if o.MinStallTimeout <= 0 {
		o.MinStallTimeout = 300 * time.Millisecond
	}
	if o.MaxStallTimeout <= 0 {
		o.MaxStallTimeout = 2 * time.Second
	}
	if o.MaxStallTimeout < o.MinStallTimeout {
		o.MaxStallTimeout = o.MinStallTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 20 * time.Second
	}
	if o.ReconnectWindow == 0 {
		o.ReconnectWindow = time.Minute
	}
	if o.KeepaliveInterval <= 0 {
		o.KeepaliveInterval = 2 * time.Second
	}
	o.Backoff = o.Backoff.withDefaults()
	o.Pool = o.Pool.withDefaults()
	return o
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
