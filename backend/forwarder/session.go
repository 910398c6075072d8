package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrSessionClosed is returned by Dial after Close.
var ErrSessionClosed = errors.New("ssh session is closed")

// ErrUnavailable means no SSH connection could be made; it wraps the last
// connect error. The next Dial tries again (after the backoff).
var ErrUnavailable = errors.New("ssh connection unavailable")

// ErrChannelRefused means the SSH server answered but refused to open the
// channel, e.g. nothing listens on the target port or forwarding is
// prohibited. The connection itself is fine; retrying will not help.
var ErrChannelRefused = errors.New("ssh server refused the channel")

// ErrBadTarget means Dial got an empty host or an out-of-range port.
var ErrBadTarget = errors.New("bad forward target")

// Session is one login's SSH connection, made lazily on the first Dial and
// shared by all forwards of the login. It pings before use when the
// connection may be dead, replaces a dead connection (single-flight, with
// backoff), closes the connection when idle and keeps a pool of pre-opened
// channels for hot targets. Its methods are safe for concurrent use.
type Session struct {
	opts      SessionOptions
	connector Connector
	log       *slog.Logger
	epoch     time.Time // origin of mono()

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Session starts
	// opens counts goroutines blocked in x/crypto's OpenChannel. Close
	// waits for them only a bounded time: x/crypto can leave an open
	// unanswered forever when the connection dies at the same moment (the
	// mux drops its channel list before closing the conn, and an open that
	// lands in between is never answered nor dropped).
	opens sync.WaitGroup

	lastAlive atomic.Int64 // mono() of the last sign of life of the current connection
	// lastAnswered is mono() of the last time the server answered real use
	// of the current connection (a login, a keepalive reply, a Dial's open
	// reply, data on a channel in use): the pool hands out channels only
	// after recent answers (pool.fresh). The pool's own refill opens and a
	// pooled channel's unasked bytes do not count: on an idle connection
	// they would keep it looking fresh while the network changes under it.
	lastAnswered atomic.Int64
	srtt         atomic.Int64 // smoothed RTT in ns, 0 = unknown

	mu         sync.Mutex
	closed     bool
	state      State
	stateSince time.Time
	reason     string
	stateErr   error
	client     SSHClient                // nil while there is no connection
	gen        uint64                   // incremented for every new client
	dead       map[uint64]chan struct{} // closed when that generation's connection ended
	suspect    bool                     // ping before the next use
	flight     *flight                  // the one ping or connect in progress
	failures   int                      // consecutive failed connect attempts
	nextTry    time.Time                // no connect attempt before this
	lastErr    error                    // last connect error
	downSince  time.Time                // when the current outage began (zero: none)
	early      earlyDeaths              // logins the server dropped at once (earlydeath.go)
	openConns  int                      // channels handed out by Dial and not yet closed
	lastUse    time.Time                // last Dial or channel close
	idleTimer  *time.Timer
	// holds counts remote forwards keeping the Session connected: no idle
	// close, reconnect after every loss (until a permanent error), and a
	// keepalive every KeepaliveInterval (see hold).
	holds     int
	holdLoop  bool          // the keepalive goroutine runs
	connReady chan struct{} // closed (and replaced) when a new connection is installed
	rmux      *remoteMux    // remote forwards' channel routing (nil until the first)
	// olds are connections a speculative dial replaced, kept until their
	// ping's verdict or their last channel (see verify.go); genConns counts
	// the channels handed out per connection generation.
	olds     map[uint64]*oldConn
	genConns map[uint64]int
	spec     specCounters

	events    eventQueue
	eventDone chan struct{}
	pool      *pool
}

// NewSession returns a Session that connects with c on first use. It starts
// no connection; Close releases it.
func NewSession(c Connector, opts SessionOptions) *Session {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		opts:       opts,
		connector:  c,
		log:        opts.Logger.With("component", "forwarder.session", "session", opts.Name),
		epoch:      time.Now(),
		ctx:        ctx,
		cancel:     cancel,
		state:      StateIdle,
		stateSince: time.Now(),
		eventDone:  make(chan struct{}),
	}
	s.events.wake = make(chan struct{}, 1)
	s.pool = newPool(s, opts.Pool)
	go s.runEvents()
	if !opts.Pool.Disabled {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.pool.run(ctx)
		}()
	}
	return s
}

// mono is the monotonic time since the Session was made.
func (s *Session) mono() int64 { return int64(time.Since(s.epoch)) }

// touch records a sign of life of the current connection.
func (s *Session) touch() { s.lastAlive.Store(s.mono()) }

// answered records that the server answered real use of the current
// connection: a sign of life that also lets the pool hand out channels.
func (s *Session) answered() {
	now := s.mono()
	s.lastAlive.Store(now)
	s.lastAnswered.Store(now)
}

// poolMayHandOut reports whether pooled channels of connection gen may be
// handed out now: it is the current connection and nothing (a wake, a
// network change, a stalled open) made it suspect since it was last
// verified.
func (s *Session) poolMayHandOut(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client != nil && s.gen == gen && !s.suspect && s.flight == nil
}

// spawn runs f in a goroutine owned by the Session, unless it is closed.
func (s *Session) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Session) rtt() time.Duration { return time.Duration(s.srtt.Load()) }

func (s *Session) noteRTT(d time.Duration) {
	if d <= 0 {
		return
	}
	for {
		old := s.srtt.Load()
		nw := int64(d)
		if old != 0 {
			nw = old - old/8 + int64(d)/8
		}
		if s.srtt.CompareAndSwap(old, nw) {
			return
		}
	}
}

// pingTimeout is max(3×RTT, MinPingTimeout) capped at MaxPingTimeout, or the
// fixed PingTimeout.
func (s *Session) pingTimeout() time.Duration {
	if s.opts.PingTimeout > 0 {
		return s.opts.PingTimeout
	}
	r := s.rtt()
	if r == 0 {
		return min(max(2*time.Second, s.opts.MinPingTimeout), s.opts.MaxPingTimeout)
	}
	return min(max(3*r, s.opts.MinPingTimeout), s.opts.MaxPingTimeout)
}

// stallTimeout is how long an open or a reply may take before the connection
// is verified: the RTT-scaled deadline max(4×sRTT, MinStallTimeout), capped
// at MaxStallTimeout (see verify.go).
func (s *Session) stallTimeout() time.Duration {
	if s.opts.StallTimeout > 0 {
		return s.opts.StallTimeout
	}
	return scaledDeadline(s.rtt(), s.opts.MinStallTimeout, s.opts.MaxStallTimeout)
}

// State returns a snapshot of the Session's state.
func (s *Session) State() StateInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := StateInfo{State: s.state, Reason: s.reason, Since: s.stateSince, RTT: s.rtt(), OpenConns: s.openConns}
	if s.stateErr != nil {
		info.Error = s.stateErr.Error()
	}
	return info
}

// setStateLocked records a state change and queues its event. Repeats of the
// same state and reason are dropped.
func (s *Session) setStateLocked(e Event) {
	if e.State == s.state && e.Reason == s.reason && e.Attempt == 0 && errors.Is(e.Err, s.stateErr) {
		return
	}
	e.Prev = s.state
	e.Session = s.opts.Name
	e.Time = time.Now()
	if e.Err != nil {
		e.Error = e.Err.Error()
	}
	if e.RTT == 0 {
		e.RTT = s.rtt()
	}
	s.state, s.reason, s.stateErr, s.stateSince = e.State, e.Reason, e.Err, e.Time
	lvl := slog.LevelInfo
	if e.State == StateSuspect || e.State == StateConnecting {
		lvl = slog.LevelDebug
	}
	s.log.Log(context.Background(), lvl, "session state", "state", e.State, "prev", e.Prev, "reason", e.Reason, "err", e.Err)
	s.events.push(e)
}

// flight is the one ping or connect in progress; Dials wait on it.
type flight struct {
	done    chan struct{}
	err     error     // set before done is closed
	waiters int       // Dials waiting (under Session.mu)
	bgUntil time.Time // keep reconnecting without waiters until then
	quiet   bool      // a background verification that publishes no Suspect/Ready
	// A verification also dials a fresh connection when its ping is still
	// unanswered after dialAfter, or at once when hurry is closed.
	dialAfter time.Duration
	hurry     chan struct{}
	hurryOnce sync.Once
	started   time.Time // when the flight began (a replaced connection's outage starts here)
}

type flightKind int

const (
	flightVerify flightKind = iota
	flightConnect
)

func (s *Session) startFlightLocked(kind flightKind, quiet bool) *flight {
	f := &flight{done: make(chan struct{}), quiet: quiet, dialAfter: s.stallTimeout(), hurry: make(chan struct{}), started: time.Now()}
	s.flight = f
	client, gen := s.client, s.gen
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runFlight(f, kind, client, gen)
	}()
	return f
}

func (s *Session) finishFlightLocked(f *flight, err error) {
	f.err = err
	if s.flight == f {
		s.flight = nil
	}
	close(f.done)
}

func (s *Session) runFlight(f *flight, kind flightKind, client SSHClient, gen uint64) {
	if kind == flightVerify {
		s.verifyRace(f, client, gen) // verify.go
		return
	}
	s.connectLoop(f)
}

// connectLoop makes a new connection, retrying with backoff while Dials wait
// (or, for a background reconnect, until f.bgUntil).
func (s *Session) connectLoop(f *flight) {
	for {
		s.mu.Lock()
		if s.closed {
			s.finishFlightLocked(f, ErrSessionClosed)
			s.mu.Unlock()
			return
		}
		if err := s.droppedLocked(); err != nil {
			// The server drops every login: no new one until the cooldown ends.
			s.finishFlightLocked(f, s.unavailableLocked())
			s.mu.Unlock()
			return
		}
		if s.failures > 0 && !s.keepConnectingLocked(f) {
			// Nobody waits any more and the background window is over.
			s.finishFlightLocked(f, s.unavailableLocked())
			s.mu.Unlock()
			return
		}
		if wait := time.Until(s.nextTry); wait > 0 {
			s.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
			}
			continue
		}
		attempt := s.failures + 1
		st, reason := StateConnecting, "connecting"
		if !s.downSince.IsZero() {
			st, reason = StateReconnecting, "reconnecting"
		}
		if s.state != st || attempt > 1 {
			s.setStateLocked(Event{State: st, Reason: reason, Attempt: attempt})
		}
		s.mu.Unlock()

		cctx, cancel := context.WithTimeout(s.ctx, s.opts.ConnectTimeout)
		start := time.Now()
		c, err := s.connector.Connect(cctx)
		cancel()
		if err == nil && c == nil {
			err = errors.New("connector returned no client and no error")
		}
		if err == nil {
			if err = s.probation(c); err != nil {
				c = nil // closed by probation
			}
		}

		s.mu.Lock()
		if s.closed {
			s.finishFlightLocked(f, ErrSessionClosed)
			s.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if err == nil {
			s.installLocked(c, time.Since(start))
			s.finishFlightLocked(f, nil)
			s.mu.Unlock()
			s.pool.kick()
			return
		}
		s.failures++
		s.lastErr = err
		perm := isPermanent(err)
		delay := s.opts.Backoff.Delay(s.failures, nil)
		s.nextTry = time.Now().Add(delay)
		giveUp := perm || !s.keepConnectingLocked(f)
		ev := Event{State: StateFailed, Reason: "connect failed", Err: err, Attempt: s.failures, RetryIn: delay}
		if !giveUp {
			ev.Reason = "connect failed; retrying in " + fmtDur(delay)
		}
		if errors.Is(err, ErrDropsAfterLogin) {
			ev.Reason = "the server closes the connection right after login"
		}
		s.setStateLocked(ev)
		if giveUp {
			s.finishFlightLocked(f, s.unavailableLocked())
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// keepConnectingLocked: someone still wants the connection flight f makes.
func (s *Session) keepConnectingLocked(f *flight) bool {
	return f.waiters > 0 || time.Now().Before(f.bgUntil) || s.holds > 0
}

func (s *Session) unavailableLocked() error {
	if s.lastErr == nil {
		return ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, s.lastErr)
}

// installLocked makes c the current connection.
func (s *Session) installLocked(c SSHClient, took time.Duration) {
	s.gen++
	gen := s.gen
	s.client = c
	s.suspect = false
	s.failures = 0
	s.nextTry = time.Time{}
	s.lastErr = nil
	s.answered()
	s.noteInstalledLocked(gen)
	ev := Event{State: StateReady, Reason: "connected in " + fmtDur(took)}
	if !s.downSince.IsZero() {
		ev.Downtime = time.Since(s.downSince)
		ev.Reason = fmt.Sprintf("reconnected after %d ms", ev.Downtime.Milliseconds())
		s.downSince = time.Time{}
	}
	s.setStateLocked(ev)
	if s.dead == nil {
		s.dead = map[uint64]chan struct{}{}
	}
	dead := make(chan struct{})
	s.dead[gen] = dead
	if s.connReady != nil {
		close(s.connReady)
		s.connReady = nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := c.Wait()
		close(dead)
		s.mu.Lock()
		delete(s.dead, gen)
		s.mu.Unlock()
		if err == nil {
			err = errors.New("closed by the server")
		}
		s.lose(gen, fmt.Errorf("ssh connection lost: %w", err))
	}()
	s.armIdleLocked()
}

// lose forgets connection gen (if it is still the current one), closes it,
// empties the pool and, if the login was in use, reconnects in the
// background.
func (s *Session) lose(gen uint64, why error) {
	s.mu.Lock()
	if s.gen != gen || s.client == nil {
		s.mu.Unlock()
		return
	}
	c := s.client
	s.client = nil
	s.suspect = false
	s.stopIdleLocked()
	if s.downSince.IsZero() {
		s.downSince = time.Now()
	}
	early, drop := s.noteLossLocked(gen, why)
	if !s.closed {
		// A connection that died right after its login was wanted a moment
		// ago: redial in the background, after the backoff noteLossLocked set.
		busy := early || s.holds > 0 || (s.opts.ReconnectWindow > 0 &&
			(s.openConns > 0 || time.Since(s.lastUse) < s.opts.ReconnectWindow))
		switch {
		case drop != nil:
			s.setStateLocked(Event{State: StateFailed, Reason: "the server closes the connection right after login", Err: drop})
		case s.flight != nil:
			if busy {
				s.flight.bgUntil = time.Now().Add(s.opts.ReconnectWindow)
			}
			s.setStateLocked(Event{State: StateReconnecting, Reason: "connection lost", Err: why})
		case busy:
			s.setStateLocked(Event{State: StateReconnecting, Reason: "connection lost", Err: why})
			f := s.startFlightLocked(flightConnect, false)
			f.bgUntil = time.Now().Add(s.opts.ReconnectWindow)
		default:
			s.downSince = time.Time{} // nobody is waiting: not an outage
			s.setStateLocked(Event{State: StateIdle, Reason: "connection lost while unused; will reconnect on next use", Err: why})
		}
	}
	s.mu.Unlock()
	_ = c.Close()
	s.pool.flush()
}

func (s *Session) staleLocked() bool {
	if s.opts.PingIdleThreshold < 0 {
		return false
	}
	return time.Duration(s.mono()-s.lastAlive.Load()) > s.opts.PingIdleThreshold
}

// acquire returns a connection that is fit for use: it waits for the
// connect or ping in progress, or starts one.
func (s *Session) acquire(ctx context.Context) (SSHClient, uint64, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, 0, ErrSessionClosed
		}
		if s.flight == nil {
			switch {
			case s.client == nil:
				s.startFlightLocked(flightConnect, false)
			case s.suspect:
				s.startFlightLocked(flightVerify, false)
			case s.staleLocked():
				s.suspect = true
				idle := time.Duration(s.mono() - s.lastAlive.Load())
				s.setStateLocked(Event{State: StateSuspect, Reason: "no sign of life for " + fmtDur(idle) + "; pinging before use"})
				s.startFlightLocked(flightVerify, false)
			default:
				c, g := s.client, s.gen
				s.mu.Unlock()
				return c, g, nil
			}
		}
		f := s.flight
		f.waiters++
		s.mu.Unlock()
		select {
		case <-f.done:
			s.mu.Lock()
			f.waiters--
			s.mu.Unlock()
			if f.err != nil {
				return nil, 0, f.err
			}
		case <-ctx.Done():
			s.mu.Lock()
			f.waiters--
			last := s.lastErr
			s.mu.Unlock()
			if last != nil {
				return nil, 0, fmt.Errorf("waiting for the ssh connection: %w (last attempt: %w)", ctx.Err(), last)
			}
			return nil, 0, fmt.Errorf("waiting for the ssh connection: %w", ctx.Err())
		}
	}
}

// checkAlive verifies connection gen in the background because something on
// it looked stuck: a ping, and a fresh dial when the ping is overdue
// (verify.go). New Dials wait for the verdict. It does nothing when the
// connection showed a sign of life very recently.
func (s *Session) checkAlive(gen uint64, reason string) { s.verifyConn(gen, reason, false) }

// MarkSuspect makes the Session verify its connection before the next use,
// e.g. after the machine woke up or the network changed: a ping with the
// RTT-scaled deadline, past which a fresh connection is dialed too
// (verify.go). If channels are open, it verifies at once so that
// connections hanging on a dead link are closed quickly.
func (s *Session) MarkSuspect(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client == nil {
		return
	}
	s.suspect = true
	if s.flight == nil || s.flight.quiet {
		s.setStateLocked(Event{State: StateSuspect, Reason: reason})
	}
	if s.flight == nil && (s.openConns > 0 || s.holds > 0) {
		s.startFlightLocked(flightVerify, false)
	}
}

// Dial opens a connection to host:port on the server's side (a direct-tcpip
// channel), connecting or reconnecting first if needed. It takes a
// pre-opened channel from the pool when one is available. If the SSH
// connection dies while the channel is being opened, Dial retries once on a
// new connection (nothing has been sent yet).
func (s *Session) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	if host == "" || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: %q port %d: need a host name and a port in 1-65535", ErrBadTarget, host, port)
	}
	return s.dialTarget(ctx, target{host: host, port: port})
}

// dialTarget is Dial for a host:port or (without the pool) a Unix socket.
func (s *Session) dialTarget(ctx context.Context, t target) (net.Conn, error) {
	if t.path == "" {
		s.pool.demand(ctx, t)
	}
	s.mu.Lock()
	s.lastUse = time.Now()
	s.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		client, gen, err := s.acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", t, err)
		}
		if t.path == "" {
			if c := s.pool.take(ctx, t, gen); c != nil {
				s.register(c)
				return c, nil
			}
		}
		c, err := s.open(ctx, client, gen, t)
		if err == nil {
			s.register(c)
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: opening the channel: %w", t, ctx.Err())
		}
		if errors.Is(err, ErrSessionClosed) {
			return nil, fmt.Errorf("dial %s: %w", t, err)
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			s.answered()
			if t.path != "" {
				if why := s.unixRefusal(ctx, client, gen, t.path); why != "" {
					return nil, fmt.Errorf("dial %s: %w: %s (%w)", t, ErrChannelRefused, why, err)
				}
			}
			return nil, fmt.Errorf("dial %s: %w: %w", t, ErrChannelRefused, err)
		}
		// The connection died under the open: nothing was sent, move on.
		s.log.Debug("channel open failed on a dead connection; retrying on a new one", "target", t.String(), "err", err)
		s.lose(gen, fmt.Errorf("opening a channel failed: %w", err))
		lastErr = err
	}
	return nil, fmt.Errorf("dial %s: the ssh connection died twice while opening the channel: %w", t, lastErr)
}

// directTCPIP is the payload of a direct-tcpip channel open (RFC 4254 7.2).
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigAddr string
	OrigPort uint32
}

type openResult struct {
	ch   ssh.Channel
	reqs <-chan *ssh.Request
	err  error
	took time.Duration
}

// openChannel opens a direct-tcpip channel on client, blocking until the
// server answers or the connection dies.
func openChannel(client SSHClient, t target) openResult {
	start := time.Now()
	if t.path != "" {
		ch, reqs, err := client.OpenChannel("direct-streamlocal@openssh.com", ssh.Marshal(&directStreamlocal{SocketPath: t.path}))
		return openResult{ch: ch, reqs: reqs, err: err, took: time.Since(start)}
	}
	payload := ssh.Marshal(&directTCPIP{Host: t.host, Port: uint32(t.port), OrigAddr: "127.0.0.1", OrigPort: 0})
	ch, reqs, err := client.OpenChannel("direct-tcpip", payload)
	return openResult{ch: ch, reqs: reqs, err: err, took: time.Since(start)}
}

// open opens a channel, bounded by ctx. An open that takes longer than the
// stall timeout makes the Session verify the connection with a ping and a
// speculative dial at once (verify.go); if the ping fails, or the new
// connection answers first, the open fails with a connection error and
// dialTarget retries it on the new connection.
func (s *Session) open(ctx context.Context, client SSHClient, gen uint64, t target) (*chanConn, error) {
	res := make(chan openResult, 1)
	var mu sync.Mutex
	abandoned := false
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSessionClosed
	}
	dead, ok := s.dead[gen]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: opening a channel to %s: the connection already ended", errConnLost, t)
	}
	s.opens.Add(1)
	if s.connReady == nil {
		s.connReady = make(chan struct{})
	}
	var moved <-chan struct{} = s.connReady // closed when a new connection is installed
	s.mu.Unlock()
	go func() {
		defer s.opens.Done()
		r := openChannel(client, t)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if r.err == nil {
				s.discardChannel(r.ch, r.reqs)
			}
			return
		}
		res <- r
	}()
	abandon := func() {
		mu.Lock()
		abandoned = true
		mu.Unlock()
		select {
		case r := <-res:
			if r.err == nil {
				s.discardChannel(r.ch, r.reqs)
			}
		default:
		}
	}
	stall := s.stallTimeout()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for {
		select {
		case <-dead:
			// The connection ended while the open was in flight; x/crypto
			// may never answer it, so fail now and let the caller retry on
			// the next connection (nothing was sent on this channel).
			abandon()
			return nil, fmt.Errorf("%w: opening a channel to %s", errConnLost, t)
		case r := <-res:
			if r.err != nil {
				return nil, r.err
			}
			s.noteRTT(r.took)
			s.answered()
			return s.newChanConn(r.ch, r.reqs, gen, t, nil), nil
		case <-moved:
			// A speculative dial replaced this connection (verify.go): the
			// open moves to the new one (nothing was sent on this channel).
			if moved = s.movedFrom(gen); moved == nil {
				abandon()
				return nil, fmt.Errorf("%w: opening a channel to %s: a new connection replaced this one", errConnLost, t)
			}
		case <-timer.C:
			s.checkAliveNow(gen, fmt.Sprintf("opening a channel to %s took longer than %s", t, fmtDur(stall)))
		case <-ctx.Done():
			abandon()
			return nil, ctx.Err()
		}
	}
}

// spawnOpen runs f, which calls x/crypto's OpenChannel, in a goroutine that
// Close waits for only openWaitOnClose (see Session.opens).
func (s *Session) spawnOpen(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.opens.Add(1)
	go func() {
		defer s.opens.Done()
		f()
	}()
	return true
}

// errConnLost: the connection ended under an operation; retrying on the next
// connection is safe when nothing was written.
var errConnLost = errors.New("ssh connection lost")

// openWaitOnClose bounds how long Close waits for opens stuck in x/crypto.
const openWaitOnClose = 2 * time.Second

// discardChannel closes a channel nobody will use.
func (s *Session) discardChannel(ch ssh.Channel, reqs <-chan *ssh.Request) {
	_ = ch.Close()
	if !s.spawn(func() { ssh.DiscardRequests(reqs) }) {
		go ssh.DiscardRequests(reqs) // the connection is being closed; this ends with it
	}
}

// register counts a handed-out channel as open.
func (s *Session) register(c *chanConn) {
	c.registered.Store(true)
	s.mu.Lock()
	s.openConns++
	s.countGenLocked(c.gen)
	s.lastUse = time.Now()
	s.stopIdleLocked()
	s.mu.Unlock()
}

// release is called when a handed-out channel of connection gen is closed.
func (s *Session) release(gen uint64) {
	s.mu.Lock()
	s.openConns--
	s.lastUse = time.Now()
	s.armIdleLocked()
	old := s.uncountGenLocked(gen)
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

func (s *Session) armIdleLocked() {
	if s.opts.IdleTimeout < 0 || s.client == nil || s.openConns > 0 || s.holds > 0 || s.closed {
		return
	}
	if s.idleTimer == nil {
		s.idleTimer = time.AfterFunc(s.opts.IdleTimeout, s.idleFired)
	} else {
		s.idleTimer.Reset(s.opts.IdleTimeout)
	}
}

func (s *Session) stopIdleLocked() {
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
}

func (s *Session) idleFired() {
	s.mu.Lock()
	if s.closed || s.client == nil || s.openConns > 0 || s.holds > 0 || s.flight != nil {
		s.mu.Unlock()
		return
	}
	if left := s.opts.IdleTimeout - time.Since(s.lastUse); left > 0 {
		s.idleTimer.Reset(left) // a Dial came and went meanwhile
		s.mu.Unlock()
		return
	}
	c := s.client
	s.client = nil
	s.suspect = false
	s.setStateLocked(Event{State: StateIdle, Reason: "closed after " + fmtDur(s.opts.IdleTimeout) + " without open channels"})
	s.mu.Unlock()
	_ = c.Close()
	s.pool.flush()
}

// readyClient returns the current connection if it is fit for background
// work (the pool), without pinging.
func (s *Session) readyClient() (SSHClient, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client == nil || s.suspect || s.flight != nil || s.staleLocked() {
		return nil, 0, false
	}
	return s.client, s.gen, true
}

func (s *Session) isCurrent(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client != nil && s.gen == gen
}

// Close closes the connection, every pooled channel and every goroutine of
// the Session, and waits for them. Connections handed out by Dial end with
// the SSH connection. Close is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.eventDone
		return nil
	}
	s.closed = true
	c := s.client
	s.client = nil
	s.stopIdleLocked()
	s.setStateLocked(Event{State: StateClosed, Reason: "closed"})
	olds := s.takeOldsLocked()
	s.mu.Unlock()
	s.cancel()
	if c != nil {
		_ = c.Close()
	}
	for _, o := range olds {
		_ = o.Close()
	}
	s.pool.close()
	s.wg.Wait()
	opensDone := make(chan struct{})
	go func() { s.opens.Wait(); close(opensDone) }()
	select {
	case <-opensDone:
	case <-time.After(openWaitOnClose):
		s.log.Warn("an ssh channel open never returned after its connection closed (golang.org/x/crypto race); abandoning it")
	}
	s.events.close()
	<-s.eventDone
	return nil
}

// target is host:port on the server's side, or (path set) a Unix socket there.
type target struct {
	host string
	port int
	path string
}

func (t target) String() string {
	if t.path != "" {
		return t.path
	}
	return net.JoinHostPort(t.host, strconv.Itoa(t.port))
}

// eventQueue is an unbounded FIFO of events drained by one goroutine, so
// that publishing never blocks the Session.
type eventQueue struct {
	mu     sync.Mutex
	q      []Event
	closed bool
	wake   chan struct{}
}

func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if !q.closed {
		q.q = append(q.q, e)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next returns the queued events, waiting for some; false when closed and
// drained.
func (q *eventQueue) next() ([]Event, bool) {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			b := q.q
			q.q = nil
			q.mu.Unlock()
			return b, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.wake
	}
}

func (s *Session) runEvents() {
	defer close(s.eventDone)
	for {
		batch, ok := s.events.next()
		if !ok {
			return
		}
		if s.opts.Publisher == nil {
			continue
		}
		for _, e := range batch {
			s.opts.Publisher.Publish(e)
		}
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
