package testrig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RelayOptions configures a Relay.
type RelayOptions struct {
	// Target is the "host:port" every accepted connection is forwarded to.
	Target string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// RelayStats are the relay's counters.
type RelayStats struct {
	ActiveFlows int64 // flows open now
	TotalFlows  int64 // flows accepted since start
	BytesUp     int64 // bytes delivered client → target
	BytesDown   int64 // bytes delivered target → client
}

// relayMaxQueued is how many bytes one direction of a flow buffers (delay
// queue or blackhole) before it stops reading, letting TCP flow control push
// back on the sender.
const relayMaxQueued = 8 << 20

// Relay is a user-space TCP relay on 127.0.0.1 that forwards every accepted
// connection to a target and injects faults: latency (SetDelay), a
// "laptop asleep" blackhole (Blackhole/Resume) and a "new network" reset of
// every flow (CutFlows). The kernel here has no netem/iptables; this is how
// latency and faults are tested.
type Relay struct {
	log *slog.Logger
	ln  net.Listener

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	hole  *gate        // shut while blackholed
	delay atomic.Int64 // one-way delay in nanoseconds

	mu     sync.Mutex
	target string
	flows  map[*flow]struct{}
	closed bool

	closeOnce sync.Once
	closeErr  error

	nActive, nTotal, nUp, nDown atomic.Int64

	trace relayTrace // SetTrace
}

// StartRelay starts a relay on 127.0.0.1:0 forwarding to opts.Target. ctx
// bounds start-up only; the relay runs until Close.
func StartRelay(ctx context.Context, opts RelayOptions) (*Relay, error) {
	if opts.Target == "" {
		return nil, errors.New("start relay: RelayOptions.Target is empty: give the host:port to forward to")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start relay: listen on loopback: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		log:    orDiscard(opts.Logger).With("component", "testrig.relay"),
		ln:     ln,
		ctx:    rctx,
		cancel: cancel,
		hole:   newGate(),
		target: opts.Target,
		flows:  make(map[*flow]struct{}),
	}
	r.wg.Go(r.acceptLoop)
	r.log.Debug("relay listening", "addr", r.Addr(), "target", opts.Target)
	return r, nil
}

// NewRelay is StartRelay for tests: it fails the test on error and closes the
// relay in t.Cleanup.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	r, err := StartRelay(context.Background(), RelayOptions{Target: target})
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Addr is the relay's "127.0.0.1:port"; connect here instead of the target.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// SetDelay adds oneWay to each direction (RTT grows by 2*oneWay). Bytes are
// time-stamped when read and released when due, so the delay keeps byte
// order and does not cut bandwidth. It applies to bytes read from now on.
func (r *Relay) SetDelay(oneWay time.Duration) {
	if oneWay < 0 {
		oneWay = 0
	}
	r.delay.Store(int64(oneWay))
	r.log.Debug("delay set", "oneWay", oneWay)
}

// SetTarget makes new flows go to addr; existing flows keep their target.
func (r *Relay) SetTarget(addr string) {
	r.mu.Lock()
	r.target = addr
	r.mu.Unlock()
	r.log.Debug("target set", "target", addr)
}

// Target is where new flows go.
func (r *Relay) Target() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.target
}

// Blackhole simulates a sleeping laptop: bytes stop flowing both ways and
// nothing is closed. New connections are accepted but get nothing. Bytes
// written meanwhile are buffered (as TCP would retransmit them) and
// delivered after Resume.
func (r *Relay) Blackhole() {
	r.hole.setShut(true)
	r.log.Debug("blackhole on")
}

// Resume ends the blackhole: buffered bytes are delivered in order.
func (r *Relay) Resume() {
	r.hole.setShut(false)
	r.log.Debug("blackhole off")
}

// Blackholed reports whether the blackhole is on.
func (r *Relay) Blackholed() bool { return r.hole.isShut() }

// CutFlows simulates waking up on another network: every existing flow is
// reset on both sides (SO_LINGER 0 and close). New flows work normally (and
// are blackholed only if Blackhole is on).
func (r *Relay) CutFlows() {
	flows := r.snapshot()
	for _, f := range flows {
		f.cut()
	}
	r.log.Debug("cut flows", "n", len(flows))
}

// SilenceFlows simulates waking up on another network the way it usually
// looks: the old path is gone, so every existing flow goes silent (bytes are
// swallowed, nothing is closed or reset, as when the old network's packets no
// longer arrive), while new flows work normally. Unlike CutFlows, a client
// learns about the change only from its own timeouts.
func (r *Relay) SilenceFlows() {
	flows := r.snapshot()
	for _, f := range flows {
		f.silent.setShut(true)
	}
	r.log.Debug("silenced flows", "n", len(flows))
}

// Stats returns a snapshot of the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{
		ActiveFlows: r.nActive.Load(),
		TotalFlows:  r.nTotal.Load(),
		BytesUp:     r.nUp.Load(),
		BytesDown:   r.nDown.Load(),
	}
}

// Close stops accepting, resets every flow and waits for all goroutines.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cancel()
		if err := r.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			r.closeErr = fmt.Errorf("close relay listener: %w", err)
		}
		for _, f := range r.snapshot() {
			f.cut()
		}
		r.wg.Wait()
	})
	return r.closeErr
}

func (r *Relay) snapshot() []*flow {
	r.mu.Lock()
	defer r.mu.Unlock()
	flows := make([]*flow, 0, len(r.flows))
	for f := range r.flows {
		flows = append(flows, f)
	}
	return flows
}

func (r *Relay) acceptLoop() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Debug("accept failed", "err", err)
			}
			return
		}
		ctx, cancel := context.WithCancel(r.ctx)
		f := &flow{r: r, client: c.(*net.TCPConn), ctx: ctx, cancel: cancel, silent: newGate(), id: r.nTotal.Add(1)}
		r.emit(f.id, RelayAccept, 0, time.Now())
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			cancel()
			resetConn(c)
			return
		}
		r.flows[f] = struct{}{}
		r.mu.Unlock()
		r.nActive.Add(1)
		r.wg.Go(f.run)
	}
}

// flow is one relayed connection: client ⇄ relay ⇄ upstream.
type flow struct {
	r      *Relay
	client *net.TCPConn
	ctx    context.Context // canceled when the flow is cut or the relay closes
	cancel context.CancelFunc

	silent *gate // shut by SilenceFlows: this flow never delivers again
	id     int64 // 1, 2, … in accept order (RelayEvent.Flow)

	mu       sync.Mutex
	upstream *net.TCPConn
	isCut    bool
	cutOnce  sync.Once
}

// cut resets both sides of the flow.
func (f *flow) cut() {
	f.cutOnce.Do(func() {
		f.cancel()
		f.mu.Lock()
		f.isCut = true
		up := f.upstream
		f.mu.Unlock()
		resetConn(f.client)
		if up != nil {
			resetConn(up)
		}
	})
}

func (f *flow) setUpstream(up *net.TCPConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isCut {
		return false
	}
	f.upstream = up
	return true
}

func (f *flow) run() {
	r := f.r
	defer func() {
		f.cancel()
		r.mu.Lock()
		delete(r.flows, f)
		r.mu.Unlock()
		r.nActive.Add(-1)
	}()
	target := r.Target()
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(f.ctx, "tcp", target)
	if err != nil {
		r.log.Debug("dial target failed", "target", target, "err", err)
		// A blackholed client hears nothing, not even the failure.
		r.hole.wait(f.ctx.Done())
		f.cut()
		return
	}
	up := c.(*net.TCPConn)
	if !f.setUpstream(up) {
		resetConn(up)
		return
	}
	upQ, downQ := newDelayQueue(), newDelayQueue()
	var pumps sync.WaitGroup
	var upEOF, downEOF bool
	pumps.Go(func() { f.read(f.client, upQ, RelayUp) })
	pumps.Go(func() { f.read(up, downQ, RelayDown) })
	var writers sync.WaitGroup
	writers.Go(func() { upEOF = f.write(upQ, up, &r.nUp) })
	writers.Go(func() { downEOF = f.write(downQ, f.client, &r.nDown) })
	writers.Wait()
	if upEOF && downEOF {
		// Both sides finished cleanly: close without a reset.
		_ = f.client.Close()
		_ = up.Close()
	} else {
		f.cut()
	}
	pumps.Wait()
}

// read moves bytes from src into q, stamped with their due time.
func (f *flow) read(src *net.TCPConn, q *delayQueue, kind RelayEventKind) {
	done := f.ctx.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		now := time.Now()
		due := now.Add(time.Duration(f.r.delay.Load()))
		if n > 0 {
			f.r.emit(f.id, kind, n, now)
			b := make([]byte, n)
			copy(b, buf[:n])
			if !q.push(done, chunk{data: b, due: due}) {
				return
			}
		}
		if err != nil {
			// A reset (or any read error) travels behind the bytes that came
			// before it, as on a real path: the other side gets them, then
			// the reset. (Cutting at once lost an sshd banner sent just
			// before sshd reset the connection.)
			q.push(done, chunk{eof: errors.Is(err, io.EOF), reset: !errors.Is(err, io.EOF), due: due})
			return
		}
	}
}

// write delivers q's chunks to dst when due and not blackholed. It reports
// whether it ended by forwarding EOF (as opposed to the flow being cut).
func (f *flow) write(q *delayQueue, dst *net.TCPConn, counter *atomic.Int64) bool {
	done := f.ctx.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c, ok := q.pop(done)
		if !ok {
			return false
		}
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-done:
				return false
			}
		}
		if !f.r.hole.wait(done) || !f.silent.wait(done) {
			return false
		}
		if c.reset {
			f.cut()
			return false
		}
		if c.eof {
			_ = dst.CloseWrite()
			return true
		}
		if _, err := dst.Write(c.data); err != nil {
			f.cut()
			return false
		}
		counter.Add(int64(len(c.data)))
	}
}

type chunk struct {
	data  []byte
	due   time.Time
	eof   bool
	reset bool // the source failed (a reset): cut the flow when this is due
}

// delayQueue is a single-producer single-consumer FIFO of chunks with a
// byte cap.
type delayQueue struct {
	mu    sync.Mutex
	items []chunk
	bytes int
	wake  chan struct{} // cap 1: something was pushed
	space chan struct{} // cap 1: something was popped
}

func newDelayQueue() *delayQueue {
	return &delayQueue{wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (q *delayQueue) push(done <-chan struct{}, c chunk) bool {
	for {
		q.mu.Lock()
		if q.bytes < relayMaxQueued || len(c.data) == 0 {
			q.items = append(q.items, c)
			q.bytes += len(c.data)
			q.mu.Unlock()
			signal(q.wake)
			return true
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-done:
			return false
		}
	}
}

func (q *delayQueue) pop(done <-chan struct{}) (chunk, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			c := q.items[0]
			q.items[0] = chunk{}
			q.items = q.items[1:]
			q.bytes -= len(c.data)
			q.mu.Unlock()
			signal(q.space)
			return c, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-done:
			return chunk{}, false
		}
	}
}
