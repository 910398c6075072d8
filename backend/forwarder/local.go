package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Dialer opens connections to targets on the server's side. *Session
// satisfies it. A returned conn may implement Suspect(reason string) to be
// told that it failed early (the forward then reports it before retrying).
type Dialer interface {
	Dial(ctx context.Context, host string, port int) (net.Conn, error)
}

// DialerFunc adapts a function to Dialer.
type DialerFunc func(ctx context.Context, host string, port int) (net.Conn, error)

// Dial calls f.
func (f DialerFunc) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	return f(ctx, host, port)
}

// Guard decides whether an accepted connection may be served (e.g. only
// from the same OS user). Allow returns nil to serve the connection.
type Guard interface {
	Allow(conn net.Conn) error
}

// LocalOptions configures a LocalForward. The zero value is usable.
type LocalOptions struct {
	// Guard is asked about every accepted connection; nil allows all.
	Guard Guard
	// Logger receives the forward's logs; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds getting a channel for one accepted connection
	// (including waiting for a reconnect); default 20 s.
	DialTimeout time.Duration
	// Listener, if set, is used instead of listening on the spec's address
	// (e.g. a listener handed over by portmap). The forward closes it.
	Listener net.Listener
}

// LocalForward is a running -L forward: it listens locally and forwards each
// accepted connection through a Dialer (the Session). The listener is up
// before any SSH connection exists.
//
// A connection whose channel could not be opened, or failed before any byte
// was sent through it (in either direction), is retried once on a new
// channel; once bytes have gone through, a failure closes the local
// connection instead (never send twice). Half-close is propagated both ways.
type LocalForward struct {
	spec LocalSpec
	d    Dialer
	opts LocalOptions
	log  *slog.Logger
	ln   net.Listener
	// socks, when set, makes this a dynamic forward: each connection's
	// target comes from its SOCKS handshake instead of spec.
	socks *socksOptions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[*fwdConn]struct{}

	stats Stats
}

// ListenLocal starts a local forward: it binds the listener now (loopback
// unless the spec asks for another address) and serves until Close.
//
// With spec.BindPath it listens on a Unix socket (mode 0600; a relative
// name in SocketDir, created 0700). An existing file at the path is
// replaced only when it is a stale socket of this user (a socket owned by
// this user on which connecting fails with ECONNREFUSED); anything else is
// refused with ErrSocketPathTaken and left intact. Close removes the
// socket. The Guard checks Unix socket clients too. With spec.TargetPath
// connections go to that socket on the server, which needs a Dialer that
// is also a UnixDialer (a *Session is).
func ListenLocal(spec LocalSpec, d Dialer, opts LocalOptions) (*LocalForward, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return listen(spec, spec.String(), "local forward", d, opts, nil)
}

// listen starts a local or (with socks) dynamic forward; name is its spec
// for logs and messages.
func listen(spec LocalSpec, name, what string, d Dialer, opts LocalOptions, socks *socksOptions) (*LocalForward, error) {
	if d == nil {
		return nil, errors.New(what + ": no Dialer given")
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 20 * time.Second
	}
	ln := opts.Listener
	switch {
	case ln != nil:
	case spec.BindPath != "":
		ul, err := listenUnixSocket(spec.BindPath, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, name, err)
		}
		ln = ul
	default:
		var err error
		ln, err = net.Listen("tcp", spec.ListenAddress())
		if err != nil {
			return nil, fmt.Errorf("%s %s: listen on %s: %w (is the port already in use?)", what, name, spec.ListenAddress(), err)
		}
	}
	if ua, ok := ln.Addr().(*net.UnixAddr); ok && ua.Name != "" {
		spec.BindPath = ua.Name
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		spec.BindPort = ta.Port
	}
	ctx, cancel := context.WithCancel(context.Background())
	component := "forwarder.local"
	if socks != nil {
		component = "forwarder.dynamic"
	}
	f := &LocalForward{
		spec:   spec,
		d:      d,
		opts:   opts,
		log:    opts.Logger.With("component", component, "forward", name),
		ln:     ln,
		socks:  socks,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*fwdConn]struct{}),
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.acceptLoop()
	}()
	f.log.Debug(what+" listening", "addr", ln.Addr().String())
	return f, nil
}

// Addr is the address the forward listens on.
func (f *LocalForward) Addr() net.Addr { return f.ln.Addr() }

// Spec is the forward's spec, with the bound port filled in.
func (f *LocalForward) Spec() LocalSpec { return f.spec }

// Stats returns a snapshot of the forward's counters.
func (f *LocalForward) Stats() StatsSnapshot { return f.stats.Snapshot() }

// Close stops listening, closes every forwarded connection and waits for
// the forward's goroutines.
func (f *LocalForward) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return nil
	}
	f.closed = true
	conns := make([]*fwdConn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	f.cancel()
	err := f.ln.Close()
	for _, c := range conns {
		c.abort(nil)
	}
	f.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close forward on %s: %w", f.ln.Addr(), err)
	}
	return nil
}

func (f *LocalForward) acceptLoop() {
	var delay time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// e.g. too many open files: wait a little and carry on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.log.Warn("accept failed; retrying", "err", err, "in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-f.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		fc := &fwdConn{f: f, client: c, target: target{host: f.spec.TargetHost, port: f.spec.TargetPort, path: f.spec.TargetPath}}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns[fc] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			fc.serve()
			f.mu.Lock()
			delete(f.conns, fc)
			f.mu.Unlock()
		}()
	}
}

// dialOnce gets a channel to t: host:port, or a Unix socket on the server.
func (f *LocalForward) dialOnce(ctx context.Context, t target) (net.Conn, error) {
	if t.path == "" {
		return f.d.Dial(ctx, t.host, t.port)
	}
	ud, ok := f.d.(UnixDialer)
	if !ok {
		return nil, fmt.Errorf("%w: %s: this forward's Dialer cannot reach Unix sockets", ErrBadTarget, t.path)
	}
	return ud.DialUnix(ctx, t.path)
}

// dial gets a channel to t, retrying once when the failure may be transient.
func (f *LocalForward) dial(ctx context.Context, t target) (net.Conn, error) {
	start := time.Now()
	c, err := f.dialOnce(ctx, t)
	if err != nil && retryableDial(ctx, err) {
		f.stats.retried.Add(1)
		f.log.Debug("dial failed; retrying once", "err", err)
		c, err = f.dialOnce(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	f.stats.observeDial(time.Since(start))
	if p, ok := c.(interface{ Pooled() bool }); ok && p.Pooled() {
		f.stats.pooled.Add(1)
	}
	return c, nil
}

func retryableDial(ctx context.Context, err error) bool {
	return ctx.Err() == nil &&
		!errors.Is(err, ErrChannelRefused) &&
		!errors.Is(err, ErrSessionClosed) &&
		!errors.Is(err, ErrBadTarget) &&
		!errors.Is(err, ErrUnavailable) &&
		!errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded)
}

// fwdConn is one forwarded connection: client is the accepted local
// connection, ch the current channel.
type fwdConn struct {
	f      *LocalForward
	client net.Conn
	target target // set before the channel is dialed

	mu        sync.Mutex
	ch        net.Conn
	wrote     bool          // client bytes were (maybe) sent into a channel
	sent      bool          // channel bytes were written to the client
	retried   bool          // the one retry was used
	swapping  chan struct{} // non-nil while a new channel is being dialed; closed when done
	swapErr   error         // the retry's dial failed
	clientEOF bool          // the client half-closed
	aborted   bool
}

func (fc *fwdConn) serve() {
	f := fc.f
	if tc, ok := fc.client.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if f.opts.Guard != nil {
		if err := f.opts.Guard.Allow(fc.client); err != nil {
			f.stats.refused.Add(1)
			f.stats.setErr(err)
			f.log.Warn("connection refused by guard", "peer", peerName(fc.client), "err", err)
			_ = fc.client.Close()
			return
		}
	}
	f.stats.total.Add(1)
	f.stats.active.Add(1)
	defer f.stats.active.Add(-1)

	var socksVersion int
	if f.socks != nil {
		req, err := f.socksAccept(fc.client)
		if err != nil {
			if f.ctx.Err() == nil {
				f.stats.failed.Add(1)
				f.stats.setErr(err)
				f.log.Info("SOCKS handshake failed", "peer", peerName(fc.client), "err", err)
			}
			_ = fc.client.Close()
			return
		}
		fc.target, socksVersion = req.target, req.version
	}

	// The channel is opened before a SOCKS client is answered, so that the
	// reply can say why it failed; the client sends nothing before the
	// reply, so nothing is sent twice.
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.DialTimeout)
	ch, err := f.dial(ctx, fc.target)
	cancel()
	if f.socks != nil {
		if rerr := f.socksAnswer(fc.client, socksVersion, err); rerr != nil && err == nil {
			_ = ch.Close()
			err = rerr
		}
	}
	if err != nil {
		if f.ctx.Err() == nil {
			f.stats.failed.Add(1)
			f.stats.setErr(err)
			f.log.Info("could not forward a connection", "target", fc.target.String(), "err", err)
		}
		_ = fc.client.Close()
		return
	}
	fc.mu.Lock()
	fc.ch = ch
	aborted := fc.aborted
	fc.mu.Unlock()
	if aborted { // Close raced with the dial
		_ = ch.Close()
		_ = fc.client.Close()
		return
	}

	done := make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(done)
		fc.downstream()
	}()
	fc.upstream()
	<-done
	fc.mu.Lock()
	ch = fc.ch
	fc.mu.Unlock()
	_ = fc.client.Close()
	_ = ch.Close()
}

// abort closes both ends; err (if any) is recorded as the reason.
func (fc *fwdConn) abort(err error) {
	fc.mu.Lock()
	if fc.aborted {
		fc.mu.Unlock()
		return
	}
	fc.aborted = true
	ch := fc.ch
	fc.mu.Unlock()
	if err != nil && fc.f.ctx.Err() == nil {
		fc.f.stats.failed.Add(1)
		fc.f.stats.setErr(err)
		fc.f.log.Debug("forwarded connection broke", "err", err)
	}
	_ = fc.client.Close()
	if ch != nil {
		_ = ch.Close()
	}
}

// retry replaces channel cur, which failed with why, by a new one — once,
// and only while no byte went through in either direction. It returns the
// channel to continue with, or (nil, nil) when no retry is allowed.
func (fc *fwdConn) retry(cur net.Conn, why error) (net.Conn, error) {
	fc.mu.Lock()
	for fc.swapping != nil {
		w := fc.swapping
		fc.mu.Unlock()
		<-w
		fc.mu.Lock()
	}
	if fc.ch != cur { // the other direction already moved on
		nc, err := fc.ch, fc.swapErr
		fc.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return nc, nil
	}
	if fc.wrote || fc.sent || fc.retried || fc.aborted {
		fc.mu.Unlock()
		return nil, nil
	}
	fc.retried = true
	w := make(chan struct{})
	fc.swapping = w
	fc.mu.Unlock()

	f := fc.f
	f.stats.retried.Add(1)
	f.log.Debug("channel failed before any byte was sent; retrying on a new one", "err", why)
	if s, ok := cur.(interface{ Suspect(string) }); ok {
		s.Suspect(fmt.Sprintf("a channel failed before use: %v", why))
	}
	_ = cur.Close()
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.DialTimeout)
	nc, err := f.dialOnce(ctx, fc.target)
	cancel()

	fc.mu.Lock()
	fc.swapping = nil
	close(w)
	if err != nil {
		fc.swapErr = fmt.Errorf("retrying on a new channel: %w", err)
		fc.mu.Unlock()
		return nil, fc.swapErr
	}
	if fc.aborted {
		fc.mu.Unlock()
		_ = nc.Close()
		return nil, errors.New("forward closed")
	}
	fc.ch = nc
	eof := fc.clientEOF
	fc.mu.Unlock()
	if eof {
		_ = closeWrite(nc)
	}
	return nc, nil
}

// downstream copies channel → client.
func (fc *fwdConn) downstream() {
	fc.mu.Lock()
	cur := fc.ch
	fc.mu.Unlock()
	p := newPump()
	defer p.release()
	for {
		buf := p.buf()
		n, err := cur.Read(buf)
		if n > 0 {
			fc.mu.Lock()
			fc.sent = true
			fc.mu.Unlock()
			// Counted before the client can see them: a client that reads
			// the stats right after its response must find it counted.
			fc.f.stats.bytesIn.Add(uint64(n))
			if _, werr := fc.client.Write(buf[:n]); werr != nil {
				fc.abort(nil) // the client went away
				return
			}
		}
		p.adapt(n)
		if err == nil {
			continue
		}
		nc, rerr := fc.retry(cur, err)
		if rerr != nil {
			fc.abort(rerr)
			return
		}
		if nc != nil {
			cur = nc
			continue
		}
		if errors.Is(err, io.EOF) {
			_ = closeWrite(fc.client)
			return
		}
		fc.channelBroke(cur, fmt.Errorf("reading from the channel: %w", err))
		return
	}
}

// channelBroke handles an error on the channel side after bytes went
// through: the Session is told (it pings before the next use) and both ends
// are closed, so the client sees the failure instead of a hang.
func (fc *fwdConn) channelBroke(ch net.Conn, err error) {
	if s, ok := ch.(interface{ Suspect(string) }); ok {
		s.Suspect(err.Error())
	}
	fc.abort(err)
}

// upstream copies client → channel. On Linux it waits for the client to be
// readable before taking a buffer from the pool, so idle connections hold
// no copy buffer.
func (fc *fwdConn) upstream() {
	w := newReadWaiter(fc.client)
	var p *pump
	if w == nil {
		p = newPump()
		defer p.release()
	}
	for {
		var buf []byte
		var big *[]byte
		if w != nil {
			if err := w.wait(); err != nil {
				fc.abort(nil)
				return
			}
			big = getBuf()
			buf = *big
		} else {
			buf = p.buf()
		}
		n, err := fc.client.Read(buf)
		var werr error
		if n > 0 {
			werr = fc.send(buf[:n])
		}
		if big != nil {
			putBuf(big)
		} else {
			p.adapt(n)
		}
		if werr != nil {
			fc.abort(werr)
			return
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			fc.mu.Lock()
			fc.clientEOF = true
			for fc.swapping != nil {
				sw := fc.swapping
				fc.mu.Unlock()
				<-sw
				fc.mu.Lock()
			}
			ch := fc.ch
			fc.mu.Unlock()
			_ = closeWrite(ch)
			return
		}
		fc.abort(nil) // the client reset or went away
		return
	}
}

// send writes client bytes into the current channel. If the very first
// write fails before any byte left, the bytes go to a new channel instead.
func (fc *fwdConn) send(b []byte) error {
	for {
		fc.mu.Lock()
		for fc.swapping != nil {
			w := fc.swapping
			fc.mu.Unlock()
			<-w
			fc.mu.Lock()
		}
		if fc.swapErr != nil || fc.aborted {
			err := fc.swapErr
			fc.mu.Unlock()
			if err == nil {
				err = errors.New("forward closed")
			}
			return err
		}
		cur := fc.ch
		first := !fc.wrote
		fc.wrote = true
		fc.mu.Unlock()

		n, err := cur.Write(b)
		fc.f.stats.bytesOut.Add(uint64(n))
		if err == nil {
			return nil
		}
		if !first || n > 0 {
			err = fmt.Errorf("writing to the channel: %w", err)
			if s, ok := cur.(interface{ Suspect(string) }); ok {
				s.Suspect(err.Error())
			}
			return err
		}
		// Nothing was sent: undo the mark and move to a new channel.
		fc.mu.Lock()
		if fc.ch == cur {
			fc.wrote = false
		}
		fc.mu.Unlock()
		nc, rerr := fc.retry(cur, err)
		if rerr != nil {
			return rerr
		}
		if nc == nil {
			return fmt.Errorf("writing to the channel: %w", err)
		}
	}
}

// String is for logs.
func (fc *fwdConn) String() string {
	return peerName(fc.client) + " → " + fc.target.String()
}
