package forwarder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// poolOf is the pool's view of the target at addr (zero if it has none).
func poolOf(s *Session, addr string) PoolStats {
	for _, p := range s.PoolStats() {
		if p.Target == addr {
			return p
		}
	}
	return PoolStats{}
}

// closeAtOnce is a backend that closes every connection as soon as it has
// accepted it, before anything is read.
func closeAtOnce(net.Conn) {}

// closedRequest connects to addr, sends a request and expects what a direct
// connection to closeAtOnce gets: the connection closed with no answer.
func closedRequest(addr, id string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	_, _ = io.WriteString(c, "REQ "+id+"\n") // may fail: the other end may be closed already
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("read: %w", err) // a hang (deadline) included
	}
	if len(b) > 0 {
		return fmt.Errorf("answer %q from a backend that closes at once", b)
	}
	return nil
}

// bannerEcho speaks first ("HELLO"), then answers "REQ x" with "OK x".
func bannerEcho(c net.Conn) {
	if _, err := io.WriteString(c, "HELLO\n"); err != nil {
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "REQ ") {
		return // not a test's request (another test's scan of this machine)
	}
	_, _ = io.WriteString(c, "OK "+strings.TrimPrefix(line, "REQ "))
}

// bannerRequest reads the greeting, then sends a request and reads its answer.
func bannerRequest(addr, id string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	if hello, err := r.ReadString('\n'); err != nil || hello != "HELLO\n" {
		return fmt.Errorf("greeting %q, %v", hello, err)
	}
	if _, err := io.WriteString(c, "REQ "+id+"\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "OK "+id+"\n" {
		return fmt.Errorf("answer %q, %v", line, err)
	}
	return nil
}

// The pool against three kinds of backend, each hit by many back-to-back
// connections (no pause between them): no request fails, and the pool's
// counters show what it did. A backend that closes unused connections after
// 200 ms is pooled, with channels younger than about half that once the
// pool saw it close one; one that closes them at once, and one that speaks first, are
// not pre-opened to any more once the pool has seen that.
func TestPoolBackends(t *testing.T) {
	const n = 40
	for _, tc := range []struct {
		name    string
		handle  func(net.Conn)
		request func(addr, id string, timeout time.Duration) error
		off     poolOff // poolOn: the pool keeps pooling the target
	}{
		{"closes unused connections after 200ms", (&lineServer{idle: 200 * time.Millisecond}).handle, lineRequest, poolOn},
		{"closes unused connections at once", closeAtOnce, closedRequest, poolClosesUnused},
		{"speaks first", bannerEcho, bannerRequest, poolSpeaksFirst},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			backend := newRawBackend(t, tc.handle)
			s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: poolAlways})
			fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
			burst := func(from int) {
				t.Helper()
				for i := from; i < from+n; i++ {
					if err := tc.request(fwd.Addr().String(), fmt.Sprint(i), 10*time.Second); err != nil {
						t.Fatalf("request %d failed: %v (forward %+v, pool %+v)", i, err, fwd.Stats(), poolOf(s, backend.Addr()))
					}
				}
			}
			if tc.off == poolOn {
				// Let the pool see the backend close an unused channel
				// first: until then it hands out channels up to the safe
				// prior's age (1 s), and this backend is faster than any
				// common server (a loaded machine that paused this test
				// for 200 ms could hand out one it is closing).
				if err := tc.request(fwd.Addr().String(), "first", 10*time.Second); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "the pool to see the backend close an unused channel", func() bool {
					p := poolOf(s, backend.Addr())
					return p.SafeAge > 0 && p.SafeAge < 150*time.Millisecond
				})
				before := poolOf(s, backend.Addr())
				burst(n)
				p := poolOf(s, backend.Addr())
				if !p.Pooling || p.Hits-before.Hits == 0 || p.SafeAge >= 150*time.Millisecond {
					t.Fatalf("pool %+v (before the second burst %+v): want the target pooled, with channels younger than 150 ms (about half the backend's 200 ms; its EOF may be noticed late), and hits", p, before)
				}
				t.Logf("pool %+v; %d of %d pooled in the second burst", p, p.Hits-before.Hits, n)
			} else {
				burst(0)
				waitFor(t, 10*time.Second, "the pool to switch itself off for the target", func() bool {
					return poolOf(s, backend.Addr()).Off == tc.off.String()
				})
				off := poolOf(s, backend.Addr())
				burst(n)
				p := poolOf(s, backend.Addr())
				if p.Pooling || p.Want != 0 || p.Opened != off.Opened {
					t.Fatalf("pool %+v (when it switched off %+v): want no channel pre-opened after it switched off", p, off)
				}
				t.Logf("pool %+v", p)
			}
			if st := fwd.Stats(); st.FailedConns != 0 {
				t.Fatalf("forward %+v: want no failed connection", st)
			}
		})
	}
}

// Back-to-back connections with no pause get pooled channels from the
// start: a channel is handed out while younger than the safe prior, before
// the pool has watched any of the target's channels survive (which
// back-to-back use never gives it time to do).
func TestPoolServesBackToBack(t *testing.T) {
	t.Run("the first pre-opened channel is handed out", func(t *testing.T) {
		srv := newServer(t, nil)
		ls := &lineServer{}
		backend := newRawBackend(t, ls.handle)
		// A loaded machine may pause this test for a second; the prior
		// and the freshness bound are lengthened so that such a pause
		// cannot turn the hit under test into a miss.
		opts := poolAlways
		opts.YoungAge, opts.MaxAge, opts.Freshness = 30*time.Second, time.Minute, time.Minute
		s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: opts})
		fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
		if err := lineRequest(fwd.Addr().String(), "0", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a pre-opened channel", func() bool { return poolOf(s, backend.Addr()).Idle >= 1 })
		if err := lineRequest(fwd.Addr().String(), "1", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if p := poolOf(s, backend.Addr()); p.Hits < 1 {
			t.Fatalf("pool %+v: the second connection did not get the pre-opened channel", p)
		}
	})
	t.Run("defaults, no pause", func(t *testing.T) {
		srv := newServer(t, nil)
		ls := &lineServer{}
		backend := newRawBackend(t, ls.handle)
		s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: poolAlways})
		fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
		const n = 60
		for i := range n {
			if err := lineRequest(fwd.Addr().String(), fmt.Sprint(i), 10*time.Second); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		p := poolOf(s, backend.Addr())
		if p.Hits == 0 || fwd.Stats().Pooled != p.Hits {
			t.Fatalf("pool %+v, forward %+v: want back-to-back connections served by pooled channels", p, fwd.Stats())
		}
		t.Logf("%d of %d back-to-back connections pooled (pool %+v)", p.Hits, n, p)
	})
}

// A probe (OneShot) is not demand: it neither makes the pool pre-open
// channels for its target nor takes one.
func TestPoolIgnoresOneShotDials(t *testing.T) {
	srv := newServer(t, nil)
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: poolAlways})
	h, port := hostPort(t, backend.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		c, err := s.Dial(OneShot(ctx), h, port)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	// A real Dial to another target: once the pool has pre-opened for it,
	// it has also had every chance to pre-open for the probed one.
	other := newRawBackend(t, (&lineServer{}).handle)
	oh, oport := hostPort(t, other.Addr())
	c, err := s.Dial(ctx, oh, oport)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitFor(t, 10*time.Second, "the pool to pre-open for the dialed target", func() bool { return poolOf(s, other.Addr()).Idle >= 1 })
	if p := poolOf(s, backend.Addr()); p.Opened != 0 || p.Want != 0 || p.Hits != 0 {
		t.Fatalf("pool for the probed target %+v: want nothing pre-opened for one-shot dials", p)
	}
}

// After the session reconnects, the pool for a target the login used before
// is seeded with its recent peak: the first connections after the reconnect
// are pool hits, though the target's demand had long been forgotten.
func TestPoolSeededAfterReconnect(t *testing.T) {
	srv := newServer(t, nil)
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	opts := poolAlways
	opts.Window = time.Second // demand is forgotten after a quiet second
	opts.YoungAge, opts.MaxAge, opts.Freshness = 30*time.Second, time.Minute, time.Minute
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: opts, IdleTimeout: 300 * time.Millisecond})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
	for i := range 3 {
		if err := lineRequest(fwd.Addr().String(), fmt.Sprint(i), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the idle connection closed and the target's demand forgotten", func() bool {
		return s.State().State != StateReady && len(s.PoolStats()) == 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pool seeded for the target after the reconnect", func() bool { return poolOf(s, backend.Addr()).Idle >= 1 })
	if err := lineRequest(fwd.Addr().String(), "after", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if p := poolOf(s, backend.Addr()); p.Hits < 1 {
		t.Fatalf("pool %+v: the first connection after the reconnect was not a pool hit", p)
	}
}

// SeedPool (a web forward of an app open in a tab, set again after an agent
// restart) pre-opens n channels at the first connection: a page load's n
// first connections are all pool hits.
func TestSeedPoolHint(t *testing.T) {
	srv := newServer(t, nil)
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	opts := poolAlways
	opts.YoungAge, opts.MaxAge, opts.Freshness = 30*time.Second, time.Minute, time.Minute
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: opts})
	h, port := hostPort(t, backend.Addr())
	s.SeedPool(h, port, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "three seeded channels", func() bool { return poolOf(s, backend.Addr()).Idle >= 3 })
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
	for i := range 3 {
		if err := lineRequest(fwd.Addr().String(), fmt.Sprint(i), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if p := poolOf(s, backend.Addr()); p.Hits < 3 {
		t.Fatalf("pool %+v: want the first 3 connections served by seeded channels", p)
	}
}

// The pool keeps at most MaxPerSession channels for all targets together,
// however many targets want them.
func TestPoolSessionCap(t *testing.T) {
	srv := newServer(t, nil)
	opts := poolAlways
	opts.MaxPerSession = 5
	opts.YoungAge, opts.MaxAge, opts.Freshness = 30*time.Second, time.Minute, time.Minute
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: opts})
	for range 3 {
		b := newRawBackend(t, (&lineServer{}).handle)
		h, port := hostPort(t, b.Addr())
		s.SeedPool(h, port, 4)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	total := func() (idle, opened int) {
		for _, p := range s.PoolStats() {
			idle += p.Idle
			opened += int(p.Opened)
		}
		return idle, opened
	}
	// (An open's channel once counted neither as opening nor as idle for a
	// moment, and the pool went past both caps: 7 idle, 6 for one target.)
	waitFor(t, 10*time.Second, "5 channels pre-opened", func() bool { i, _ := total(); return i >= 5 })
	if idle, opened := total(); idle != 5 || opened != 5 {
		t.Fatalf("%d idle, %d opened (%+v); want 5 and 5: 3 targets want 4 each, the session cap is 5", idle, opened, s.PoolStats())
	}
}

// Issue 11: after a network change that leaves the old flows silent, a
// request must not get a pooled channel of the dead connection just because
// the pool's own refill open had "proved" it alive a moment before (a
// request written into a pooled channel cannot be retried: never send
// twice). Only answers to real use (a login, a keepalive, a Dial's open,
// data on a channel in use) let the pool hand out channels.
func TestPoolRefillIsNoProofForHandOut(t *testing.T) {
	srv := newServer(t, nil)
	relay := testrig.NewRelay(t, srv.Addr())
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	// Freshness is far longer than the pool's refill period (channels
	// expire past YoungAge and are re-opened), so before the fix a refill
	// always made the idle connection look fresh.
	opts := poolAlways
	opts.YoungAge, opts.MaxAge, opts.Freshness = 200*time.Millisecond, 400*time.Millisecond, 2*time.Second
	s := newSession(t, relay.Addr(), clientConfig(srv), SessionOptions{Pool: opts})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
	addr := fwd.Addr().String()
	if err := lineRequest(addr, "warm", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Idle past Freshness: nothing real answered since, while the pool
	// keeps re-opening channels.
	time.Sleep(opts.Freshness + 500*time.Millisecond)
	opened := poolOf(s, backend.Addr()).Opened
	waitFor(t, 10*time.Second, "a refill open", func() bool {
		p := poolOf(s, backend.Addr())
		return p.Opened > opened && p.Idle >= 1
	})
	hits := poolOf(s, backend.Addr()).Hits
	relay.SilenceFlows() // the network changed; nothing tells the Session
	for i := range 4 {
		if err := lineRequest(addr, fmt.Sprint("after-", i), 15*time.Second); err != nil {
			t.Fatalf("request %d after the network change: %v (pool %+v)", i, err, poolOf(s, backend.Addr()))
		}
		if i == 0 {
			if p := poolOf(s, backend.Addr()); p.Hits != hits {
				t.Fatalf("pool %+v: the first request after the change got a pooled channel of the silenced connection", p)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := fwd.Stats(); st.FailedConns != 0 {
		t.Fatalf("forward %+v: want no failed connections", st)
	}
}

// A suspect connection (a wake or a network change was seen) hands out no
// pooled channel until it is verified, however fresh it looked before.
func TestPoolNoHandOutWhileSuspect(t *testing.T) {
	srv := newServer(t, nil)
	relay := testrig.NewRelay(t, srv.Addr())
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	opts := poolAlways
	opts.YoungAge, opts.MaxAge, opts.Freshness = 30*time.Second, time.Minute, time.Minute
	s := newSession(t, relay.Addr(), clientConfig(srv), SessionOptions{Pool: opts})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
	addr := fwd.Addr().String()
	if err := lineRequest(addr, "warm", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a pre-opened channel", func() bool { return poolOf(s, backend.Addr()).Idle >= 1 })
	_, gen, ok := s.readyClient()
	if !ok {
		t.Fatal("no ready connection")
	}
	relay.SilenceFlows()
	s.MarkSuspect("test: network changed")
	h, port := hostPort(t, backend.Addr())
	if c := s.pool.take(context.Background(), target{host: h, port: port}, gen); c != nil {
		_ = c.Close()
		t.Fatal("the pool handed out a channel of a suspect connection")
	}
	hits := poolOf(s, backend.Addr()).Hits
	for i := range 3 {
		if err := lineRequest(addr, fmt.Sprint("after-", i), 15*time.Second); err != nil {
			t.Fatalf("request %d after the network change: %v", i, err)
		}
		if i == 0 {
			if p := poolOf(s, backend.Addr()); p.Hits != hits {
				t.Fatalf("pool %+v: the first request after the change got a pooled channel of the silenced connection", p)
			}
		}
	}
}
