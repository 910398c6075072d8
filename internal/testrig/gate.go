package testrig

import (
	"net"
	"sync"
)

// gate blocks callers while it is shut and lets them through while it is
// open. It is the building block of SSHServer.SetStall and Relay.Blackhole:
// waiting on a gate never leaks a goroutine because every wait also watches
// a done channel owned by the waiter.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGate() *gate {
	ch := make(chan struct{})
	close(ch)
	return &gate{open: ch}
}

// setShut shuts (true) or opens (false) the gate.
func (g *gate) setShut(shut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	isOpen := isClosedChan(g.open)
	switch {
	case shut && isOpen:
		g.open = make(chan struct{})
	case !shut && !isOpen:
		close(g.open)
	}
}

func (g *gate) isShut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !isClosedChan(g.open)
}

// wait blocks while the gate is shut. It returns false when done was closed
// first.
func (g *gate) wait(done <-chan struct{}) bool {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-done:
		return false
	default:
	}
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

func isClosedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// gatedConn is a net.Conn whose Read and Write block while its gate is shut.
// Bytes the kernel delivers while shut are held back until the gate opens.
// Close unblocks every waiter.
type gatedConn struct {
	net.Conn
	gate      *gate
	done      chan struct{}
	closeOnce sync.Once
}

func newGatedConn(c net.Conn, g *gate) *gatedConn {
	return &gatedConn{Conn: c, gate: g, done: make(chan struct{})}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	if !c.gate.wait(c.done) {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	if !c.gate.wait(c.done) {
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if !c.gate.wait(c.done) {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// abort resets the connection (RST instead of FIN) and closes it.
func (c *gatedConn) abort() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// resetConn closes c with SO_LINGER 0 so the peer sees a reset.
func resetConn(c net.Conn) {
	if c == nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
