package forwarder

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole-app/porthole/backend/netwatch"
)

// WakeClock reads the two clocks the wake detector compares. The monotonic
// clock stops while the machine sleeps (Linux CLOCK_MONOTONIC, macOS
// mach_absolute_time, Windows unbiased interrupt time); the wall clock does
// not. Tests inject a fake.
type WakeClock interface {
	Wall() time.Time     // wall-clock time, without a monotonic reading
	Mono() time.Duration // monotonic time since an arbitrary origin
}

// SystemClock is the real WakeClock.
type SystemClock struct{ origin time.Time }

// NewSystemClock returns the real clock.
func NewSystemClock() *SystemClock { return &SystemClock{origin: time.Now()} }

// Wall is time.Now() stripped of its monotonic reading.
func (c *SystemClock) Wall() time.Time { return time.Now().Round(0) }

// Mono is the monotonic time since NewSystemClock.
func (c *SystemClock) Mono() time.Duration { return time.Since(c.origin) }

// Suspecter is told when its connection may have died (*Session does).
type Suspecter interface {
	MarkSuspect(reason string)
}

// WakeOptions configures a WakeDetector. The zero value is usable.
type WakeOptions struct {
	// Interval between clock comparisons; default 2 s.
	Interval time.Duration
	// Threshold: a wall-clock jump that exceeds the monotonic jump by more
	// than this means the machine slept; default 4 s.
	Threshold time.Duration
	// Clock is compared; nil uses the system clock.
	Clock WakeClock
	// Logger receives the detector's logs; nil discards them.
	Logger *slog.Logger
	// NoDBus skips logind's PrepareForSleep signal (Linux only anyway).
	NoDBus bool
	// OnWake, if set, is called after the registered sessions were marked.
	OnWake func(reason string)
	// Network reports the network's changes (addresses, routes, links);
	// nil opens netwatch's watcher for this system in Start (Linux:
	// netlink; elsewhere nothing yet) unless NoNetwork.
	Network NetworkSource
	// NoNetwork: do not watch the network.
	NoNetwork bool
}

// NetworkSource reports network changes to fn until ctx ends
// (*netwatch.Watcher is one; tests inject their own).
type NetworkSource interface {
	Run(ctx context.Context, fn func(netwatch.Change)) error
}

// WakeDetector notices that the machine woke from sleep, or that its
// network changed, and marks every registered Session suspect, so it pings
// before the next use (at once if it carries traffic). It compares the
// wall-clock and monotonic jumps between ticks, listens on Linux to
// logind's PrepareForSleep signal on the system D-Bus (absent buses are
// fine), and to the network's changes (a NetworkSource).
type WakeDetector struct {
	opts WakeOptions
	log  *slog.Logger

	mu       sync.Mutex
	subs     map[uint64]Suspecter
	nextID   uint64
	started  bool
	closed   bool
	primed   bool
	lastWall time.Time
	lastMono time.Duration

	wakes      atomic.Uint64
	netChanges atomic.Uint64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// NewWakeDetector returns a detector; Start begins watching.
func NewWakeDetector(opts WakeOptions) *WakeDetector {
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Threshold <= 0 {
		opts.Threshold = 4 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = NewSystemClock()
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	return &WakeDetector{opts: opts, log: opts.Logger.With("component", "forwarder.wake"), subs: make(map[uint64]Suspecter)}
}

// Register adds s; the returned function removes it.
func (w *WakeDetector) Register(s Suspecter) (unregister func()) {
	w.mu.Lock()
	id := w.nextID
	w.nextID++
	w.subs[id] = s
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.subs, id)
		w.mu.Unlock()
	}
}

// Wakes counts the wakes noticed so far.
func (w *WakeDetector) Wakes() uint64 { return w.wakes.Load() }

// NetworkChanges counts the network changes acted on so far.
func (w *WakeDetector) NetworkChanges() uint64 { return w.netChanges.Load() }

// Start begins the clock comparisons (and the D-Bus watch on Linux), and
// the network watch: when Start returns, a network change is noticed.
func (w *WakeDetector) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed {
		return
	}
	w.started = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.tick(ctx)
	}()
	if !w.opts.NoDBus {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.watchSleepSignal(ctx)
		}()
	}
	if src := w.networkSource(); src != nil {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := src.Run(ctx, w.NetworkChanged); err != nil && ctx.Err() == nil {
				w.log.Warn("stopped watching the network; a network change is noticed only when a connection fails", "err", err)
			}
		}()
	}
}

// networkSource is the configured NetworkSource, or this system's watcher
// (nil when there is none or it cannot be opened: the clocks and pings
// still find a dead connection, only later).
func (w *WakeDetector) networkSource() NetworkSource {
	switch {
	case w.opts.NoNetwork:
		return nil
	case w.opts.Network != nil:
		return w.opts.Network
	}
	nw, err := netwatch.Open(netwatch.Options{Logger: w.opts.Logger})
	switch {
	case errors.Is(err, netwatch.ErrUnsupported):
		w.log.Debug("this system does not report network changes; they are noticed when a connection fails")
		return nil
	case err != nil:
		w.log.Warn("cannot watch the network; a network change is noticed only when a connection fails", "err", err)
		return nil
	}
	return nw
}

// Close stops watching and waits for the detector's goroutines.
func (w *WakeDetector) Close() error {
	w.mu.Lock()
	w.closed = true
	cancel := w.cancel
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	w.wg.Wait()
	return nil
}

func (w *WakeDetector) tick(ctx context.Context) {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	w.Check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Check compares the clocks with the previous Check and reports (and acts
// on) a wake. The first call only takes readings.
func (w *WakeDetector) Check() bool {
	wall, mono := w.opts.Clock.Wall(), w.opts.Clock.Mono()
	w.mu.Lock()
	primed := w.primed
	dWall, dMono := wall.Sub(w.lastWall), mono-w.lastMono
	w.primed, w.lastWall, w.lastMono = true, wall, mono
	w.mu.Unlock()
	if !primed {
		return false
	}
	if gap := dWall - dMono; gap > w.opts.Threshold {
		w.Wake("the machine slept for about " + fmtDur(gap))
		return true
	}
	return false
}

// Wake marks every registered Session suspect (and calls OnWake).
func (w *WakeDetector) Wake(reason string) {
	w.wakes.Add(1)
	subs := w.registered()
	w.log.Info("wake detected; verifying connections before use", "reason", reason, "sessions", len(subs))
	for _, s := range subs {
		s.MarkSuspect("wake: " + reason)
	}
	if w.opts.OnWake != nil {
		w.opts.OnWake(reason)
	}
}

// NetworkChanged marks every registered Session suspect because of c, e.g.
// "network changed: address 10.0.0.5/24 added on wlan0".
func (w *WakeDetector) NetworkChanged(c netwatch.Change) {
	w.netChanges.Add(1)
	reason := "network changed: " + c.String()
	subs := w.registered()
	w.log.Info(reason+"; verifying connections", "sessions", len(subs))
	for _, s := range subs {
		s.MarkSuspect(reason)
	}
}

func (w *WakeDetector) registered() []Suspecter {
	w.mu.Lock()
	defer w.mu.Unlock()
	subs := make([]Suspecter, 0, len(w.subs))
	for _, s := range w.subs {
		subs = append(subs, s)
	}
	return subs
}
