package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/discovery"
)

// ProbeDialer lets code written for a net.Conn (discovery's HTTP probe:
// write one request, read the answer) run over Login.Probe, whose bytes
// cross the agent's pipe: a net.Conn cannot.
//
// Dial checks that host:port accepts a connection (a Probe with no request)
// and returns a conn that collects what is written; the first Read sends it
// all in one Probe and then reads the answer, ending with io.EOF. Deadlines
// (SetDeadline, SetReadDeadline) bound that Probe. The conn serves one
// request/answer exchange, which is all a probe does.
//
// DialLazy (discovery.LazyDialer) skips the check: the exchange is then the
// only connection the port gets, and a failure to connect comes from the
// first Read, wrapping discovery.ErrNotConnected.
type ProbeDialer struct {
	Login Login
	// Limit is the most bytes read per exchange; default 64 KiB.
	Limit int
}

// Dial implements discovery.Dialer (and forwarder.Dialer).
func (d ProbeDialer) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	if _, err := d.Login.Probe(ctx, host, port, nil, 0); err != nil {
		return nil, err
	}
	limit := d.Limit
	if limit <= 0 {
		limit = 64 << 10
	}
	return &probeConn{login: d.Login, host: host, port: port, limit: limit}, nil
}

// DialLazy implements discovery.LazyDialer.
func (d ProbeDialer) DialLazy(_ context.Context, host string, port int) (net.Conn, error) {
	limit := d.Limit
	if limit <= 0 {
		limit = 64 << 10
	}
	return &probeConn{login: d.Login, host: host, port: port, limit: limit, lazy: true}, nil
}

type probeConn struct {
	login Login
	host  string
	port  int
	limit int
	lazy  bool // not checked at Dial: a failure to connect comes from Read

	mu       sync.Mutex
	req      bytes.Buffer
	resp     *bytes.Reader
	err      error // the probe's error, returned after the answer's bytes
	deadline time.Time
	cancel   context.CancelFunc // of the probe in flight
	closed   bool
}

func (c *probeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.resp != nil {
		return 0, errors.New("probe conn: write after the answer was read; dial again")
	}
	return c.req.Write(b)
}

func (c *probeConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if c.resp == nil {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if !c.deadline.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, c.deadline)
		}
		ctx, cancel2 := context.WithCancel(ctx)
		c.cancel = cancel2
		req := bytes.Clone(c.req.Bytes())
		c.mu.Unlock()
		resp, err := c.login.Probe(ctx, c.host, c.port, req, c.limit)
		cancel2()
		cancel()
		c.mu.Lock()
		c.cancel = nil
		if c.resp == nil {
			c.resp = bytes.NewReader(resp)
			switch {
			case err != nil && c.lazy && len(resp) == 0 && errors.Is(err, ErrProbeConnect):
				err = fmt.Errorf("%w: %w", discovery.ErrNotConnected, err)
			case err != nil && errors.Is(err, context.DeadlineExceeded):
				err = fmt.Errorf("probe %s: %w", net.JoinHostPort(c.host, strconv.Itoa(c.port)), os.ErrDeadlineExceeded)
			}
			c.err = err
		}
	}
	defer c.mu.Unlock()
	if c.resp.Len() > 0 {
		return c.resp.Read(b)
	}
	if c.err != nil {
		return 0, c.err
	}
	return 0, io.EOF
}

func (c *probeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}

func (c *probeConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *probeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.cancel != nil && !t.IsZero() && !t.After(time.Now()) {
		c.cancel() // a deadline in the past stops the probe in flight
	}
	return nil
}

func (c *probeConn) SetWriteDeadline(time.Time) error { return nil }

func (c *probeConn) LocalAddr() net.Addr { return probeAddr("porthole-agent") }

func (c *probeConn) RemoteAddr() net.Addr {
	return probeAddr(net.JoinHostPort(c.host, strconv.Itoa(c.port)))
}

type probeAddr string

func (a probeAddr) Network() string { return "ssh-probe" }
func (a probeAddr) String() string  { return string(a) }
