package forwarder

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// chanConn is a direct-tcpip channel as a net.Conn. It also implements
// CloseWrite (half-close) and Suspect (report trouble to its Session).
//
// Deadlines are accepted and ignored: an SSH channel has none. Callers that
// need a bound close the conn instead.
type chanConn struct {
	s      *Session
	ch     ssh.Channel
	gen    uint64
	target target

	// pre is set for pooled channels: bytes and EOF read while pooled. Only
	// the reading goroutine touches the field after hand-out.
	pre    *prefetch
	pooled bool

	remoteClosed chan struct{} // closed when the server closed the channel or the connection died
	closeOnce    sync.Once
	closed       atomic.Bool
	registered   atomic.Bool

	// Stall watchdog: a write arms it; a read with data before it fires
	// disarms it, unless a write came after the arming (it re-arms then, so
	// a request written right after a reply is watched too). If it fires,
	// the Session verifies its connection.
	reads     atomic.Uint64
	readMark  atomic.Uint64
	writes    atomic.Uint64
	writeMark atomic.Uint64
	armed     atomic.Bool
	timerMu   sync.Mutex
	timer     *time.Timer
}

// newChanConn wraps an open channel; pre is non-nil for pooled channels.
func (s *Session) newChanConn(ch ssh.Channel, reqs <-chan *ssh.Request, gen uint64, t target, pre *prefetch) *chanConn {
	c := &chanConn{s: s, ch: ch, gen: gen, target: t, pre: pre, pooled: pre != nil, remoteClosed: make(chan struct{})}
	drain := func() {
		for r := range reqs {
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
		close(c.remoteClosed)
	}
	if !s.spawn(drain) {
		go drain() // the Session is closing and its connection with it; this ends then
	}
	return c
}

// prefetch holds what a pooled channel received before it was handed out.
// While pooled, a reader goroutine keeps one Read in flight so that EOF is
// noticed; after hand-out, the conn's Read first returns the buffered bytes,
// then waits for that in-flight Read, and only then reads the channel itself.
type prefetch struct {
	mu     sync.Mutex
	buf    []byte // early bytes (e.g. a server greeting), not yet consumed
	err    error  // read error seen by the reader (io.EOF: the server closed)
	handed bool   // handed out: the reader stops after its current Read
	exited bool   // the reader goroutine is done; done is (being) closed
	done   chan struct{}
}

// maxPrefetch bounds what a pooled channel buffers before it stops reading.
const maxPrefetch = 64 << 10

// claim marks p handed out; false if the channel already failed.
func (p *prefetch) claim() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return false
	}
	p.handed = true
	return true
}

func (p *prefetch) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil
}

// finish marks the reader as gone.
func (p *prefetch) finish() {
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	close(p.done)
}

// prefetchLoop reads a pooled channel so that EOF is noticed while it waits
// and early bytes are kept. It stops after a read error (calling onFail if
// the channel was still pooled), after the channel is handed out, or when
// the buffer is full.
func (c *chanConn) prefetchLoop(onFail func(error)) {
	p := c.pre
	defer p.finish()
	tmp := make([]byte, 512)
	for {
		n, err := c.ch.Read(tmp)
		p.mu.Lock()
		p.buf = append(p.buf, tmp[:n]...)
		p.err = err
		handed := p.handed
		full := len(p.buf) >= maxPrefetch
		p.mu.Unlock()
		switch {
		case n > 0 && handed:
			c.s.answered() // data on a channel in use
		case n > 0:
			c.s.touch() // unasked bytes (a banner): alive, but not an answer
		}
		if err != nil {
			if !handed {
				onFail(err)
			}
			return
		}
		if handed || full {
			return
		}
	}
}

func (c *chanConn) Read(b []byte) (int, error) {
	for p := c.pre; p != nil; {
		p.mu.Lock()
		if len(p.buf) > 0 {
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			if len(p.buf) == 0 {
				p.buf = nil
			}
			p.mu.Unlock()
			c.reads.Add(1)
			return n, nil
		}
		if p.exited {
			err := p.err
			p.mu.Unlock()
			if err != nil {
				return 0, err
			}
			c.pre = nil // drained: read the channel directly from now on
			break
		}
		p.mu.Unlock()
		<-p.done // the reader's Read is still in flight
	}
	n, err := c.ch.Read(b)
	if n > 0 {
		c.reads.Add(1)
		c.s.answered()
	}
	return n, err
}

func (c *chanConn) Write(b []byte) (int, error) {
	n, err := c.ch.Write(b)
	if n > 0 {
		c.writes.Add(1)
		c.armStall()
	}
	return n, err
}

// CloseWrite sends EOF: the server's side sees the end of the stream.
func (c *chanConn) CloseWrite() error { return c.ch.CloseWrite() }

// Close closes the channel. If the server does not confirm within the stall
// timeout, the Session verifies its connection.
func (c *chanConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.timerMu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.timerMu.Unlock()
		err = c.ch.Close()
		if c.registered.Load() {
			c.s.release(c.gen)
		}
		select {
		case <-c.remoteClosed:
		default:
			d := c.s.stallTimeout()
			time.AfterFunc(d, func() {
				select {
				case <-c.remoteClosed:
				default:
					c.s.checkAlive(c.gen, "the server did not confirm a channel close within "+fmtDur(d))
				}
			})
		}
	})
	return err
}

// Suspect tells the Session that something went wrong on this channel: it
// pings its connection before the next use (if it is still the current one).
func (c *chanConn) Suspect(reason string) { c.s.checkAlive(c.gen, reason) }

// Pooled reports whether the channel came from the pool (for stats and tests).
func (c *chanConn) Pooled() bool { return c.pooled }

func (c *chanConn) armStall() {
	if !c.armed.CompareAndSwap(false, true) {
		return
	}
	c.startStallTimer()
}

// startStallTimer marks the counters and (re)starts the watchdog's timer.
func (c *chanConn) startStallTimer() {
	c.readMark.Store(c.reads.Load())
	c.writeMark.Store(c.writes.Load())
	d := c.s.stallTimeout()
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if c.closed.Load() {
		return
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.stallFired)
	} else {
		c.timer.Reset(d)
	}
}

func (c *chanConn) stallFired() {
	stalled := c.reads.Load() == c.readMark.Load()
	if !stalled && c.writes.Load() != c.writeMark.Load() && !c.closed.Load() {
		c.startStallTimer() // a later write still waits for its reply
		return
	}
	c.armed.Store(false)
	if stalled && !c.closed.Load() {
		c.s.checkAlive(c.gen, "no reply on a channel to "+c.target.String()+" after data was written")
	}
}

func (c *chanConn) LocalAddr() net.Addr  { return chanAddr("porthole") }
func (c *chanConn) RemoteAddr() net.Addr { return chanAddr(c.target.String()) }

func (c *chanConn) SetDeadline(time.Time) error      { return nil }
func (c *chanConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chanConn) SetWriteDeadline(time.Time) error { return nil }

// chanAddr is the address of either end of a channel.
type chanAddr string

func (a chanAddr) Network() string { return "ssh" }
func (a chanAddr) String() string  { return string(a) }
