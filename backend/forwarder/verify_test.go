package forwarder

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// These tests make the old connection's ping useless on purpose (a timeout
// of a minute): a request that then succeeds well within its own deadline
// can only have ridden the speculative dial, so they assert outcomes and
// counters, not durations.
const noPingVerdict = time.Minute

// deadlineRig is SSH server ← relay ← Session ← LocalForward → line server.
type deadlineRig struct {
	srv   *testrig.SSHServer
	relay *testrig.Relay
	ls    *lineServer
	s     *Session
	fwd   *LocalForward
	log   *eventLog
}

func newDeadlineRig(t *testing.T, opts SessionOptions) *deadlineRig {
	t.Helper()
	r := &deadlineRig{srv: newServer(t, nil), ls: &lineServer{}, log: &eventLog{}}
	r.relay = testrig.NewRelay(t, r.srv.Addr())
	backend := newRawBackend(t, r.ls.handle)
	opts.Pool.Disabled = true
	opts.Publisher = r.log
	r.s = newSession(t, r.relay.Addr(), clientConfig(r.srv), opts)
	r.fwd = listenLocal(t, targetSpec(t, backend.Addr()), r.s, LocalOptions{DialTimeout: 45 * time.Second})
	// Close the Session before the forward: a connection still reading the
	// silenced old connection ends with it (its ping would take a minute).
	t.Cleanup(func() { _ = r.s.Close() })
	if err := lineRequest(r.addr(), "warm-up", 30*time.Second); err != nil {
		t.Fatalf("request before the fault: %v", err)
	}
	return r
}

func (r *deadlineRig) addr() string { return r.fwd.Addr().String() }

func (r *deadlineRig) noEvent(t *testing.T, states ...State) {
	t.Helper()
	for _, e := range r.log.events() {
		for _, st := range states {
			if e.State == st {
				t.Errorf("unexpected %v event: %v", st, e)
			}
		}
	}
}

// The measured failure: the network changed without a sleep, the old flows
// went silent, the session looked fine. The first new connection's channel
// open passes its RTT-scaled deadline, the Session pings and dials at
// once, and the request rides the new connection (the open moved over;
// nothing was sent twice).
func TestOpenDeadlineRacesAFreshDial(t *testing.T) {
	r := newDeadlineRig(t, SessionOptions{PingTimeout: noPingVerdict})
	r.relay.SilenceFlows()
	if err := lineRequest(r.addr(), "after", 40*time.Second); err != nil {
		t.Fatalf("first request after the old flows went silent: %v (speculative dials: started %d, won %d)",
			err, r.s.spec.started.Load(), r.s.spec.won.Load())
	}
	if won := r.s.spec.won.Load(); won != 1 {
		t.Errorf("%d speculative dials won, want 1", won)
	}
	if n := r.srv.Stats().AuthOK; n != 2 {
		t.Errorf("%d logins, want 2 (the first and the speculative one)", n)
	}
	if n := r.ls.requests.Load(); n != 2 {
		t.Errorf("the backend saw %d requests, want 2 (warm-up + one after)", n)
	}
	if st := r.s.State().State; st != StateReady {
		t.Errorf("state %v, want ready", st)
	}
	r.noEvent(t, StateFailed)

	// The replaced connection is kept until its ping's verdict, and while
	// it is, no verification dials again: at most two connections.
	started := r.s.spec.started.Load()
	r.s.mu.Lock()
	gen, olds := r.s.gen, len(r.s.olds)
	r.s.mu.Unlock()
	if olds != 1 {
		t.Fatalf("%d replaced connections kept, want 1 (its ping cannot have answered)", olds)
	}
	r.s.lastAlive.Store(-int64(time.Hour)) // look stuck, so that the check is not skipped
	r.s.checkAliveNow(gen, "test: another stall")
	waitFor(t, 30*time.Second, "the verification to end", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.flight == nil
	})
	if got := r.s.spec.started.Load(); got != started {
		t.Errorf("a verification dialed while a replaced connection was kept (%d → %d): more than two connections", started, got)
	}
	if err := lineRequest(r.addr(), "again", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// silentServer accepts TCP connections and never says a word, like a
// server whose sshd hangs before its banner.
type silentServer struct {
	accepted atomic.Int64
	ended    atomic.Int64 // connections the client closed
}

func newSilentServer(t *testing.T) (*silentServer, string) {
	t.Helper()
	ss := &silentServer{}
	b := newRawBackend(t, func(c net.Conn) {
		ss.accepted.Add(1)
		_, _ = io.Copy(io.Discard, c)
		ss.ended.Add(1)
	})
	return ss, b.Addr()
}

// The path got slow, not dead: the open passes its deadline, the ping is
// answered, and the speculative dial, which reached a server that accepts
// TCP but never speaks SSH, is given up (long before its ConnectTimeout)
// and the old session is left alone.
func TestSpeculativeDialGivesUpWhenThePingAnswers(t *testing.T) {
	r := newDeadlineRig(t, SessionOptions{StallTimeout: 100 * time.Millisecond, ConnectTimeout: noPingVerdict})
	silent, silentAddr := newSilentServer(t)
	r.relay.SetTarget(silentAddr) // new flows (a fresh dial) reach the silent server
	r.relay.SetDelay(250 * time.Millisecond)
	if err := lineRequest(r.addr(), "slow", 40*time.Second); err != nil {
		t.Fatalf("request on a slow but alive path: %v", err)
	}
	if n := r.s.spec.started.Load(); n == 0 {
		t.Fatal("no speculative dial started although the open took longer than its deadline")
	}
	if n := r.s.spec.won.Load(); n != 0 {
		t.Fatalf("%d speculative dials won against a server that never speaks SSH", n)
	}
	waitFor(t, 30*time.Second, "the silent server to see the dial given up", func() bool {
		return silent.accepted.Load() > 0 && silent.ended.Load() == silent.accepted.Load()
	})
	if n := r.s.spec.abandoned.Load(); n == 0 {
		t.Error("no speculative dial counted as given up")
	}
	// (Logins, not TCP connections: another test's scan of this machine's
	// listeners may reach the server.)
	if n := r.srv.Stats().AuthOK; n != 1 {
		t.Errorf("server saw %d logins; want the one old session only", n)
	}
	if st := r.s.State().State; st != StateReady {
		t.Errorf("state %v, want ready", st)
	}
	r.noEvent(t, StateReconnecting, StateFailed)
	if n := r.ls.requests.Load(); n != 2 {
		t.Errorf("the backend saw %d requests, want 2", n)
	}
}

// Bytes that went into a channel on the old connection are never sent
// again: the connection waiting for its reply fails once the old
// connection is given up, while new connections ride the fresh one.
func TestFirstByteDeadlineNeverSendsTwice(t *testing.T) {
	r := newDeadlineRig(t, SessionOptions{MinPingTimeout: 500 * time.Millisecond})
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(40 * time.Second))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "REQ a\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "OK a\n" {
		t.Fatalf("first answer %q, %v", line, err)
	}
	r.relay.SilenceFlows()
	if _, err := io.WriteString(c, "REQ b\n"); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err == nil {
		t.Fatalf("got %q for a request written into a dead connection: it was sent twice", line)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection waiting on a dead path hung until the test's deadline")
	}
	if err := lineRequest(r.addr(), "c", 30*time.Second); err != nil {
		t.Fatalf("a new connection after the old path died: %v", err)
	}
	if n := r.ls.requests.Load(); n != 3 { // warm-up, a, c: b was swallowed and not resent
		t.Errorf("the backend saw %d requests, want 3 (b must not be resent)", n)
	}
	if n := r.srv.Stats().AuthOK; n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

// A suspect Session (the WakeDetector was told the network changed) pings
// before its next use with the RTT-scaled deadline and dials when the ping
// is overdue; one that carries traffic is verified at once.
func TestSuspectSessionRacesAFreshDial(t *testing.T) {
	t.Run("idle: before the next use", func(t *testing.T) {
		r := newDeadlineRig(t, SessionOptions{PingTimeout: noPingVerdict})
		w := NewWakeDetector(WakeOptions{NoDBus: true})
		defer w.Register(r.s)()
		r.relay.SilenceFlows()
		w.Wake("the network changed")
		if st := r.s.State().State; st != StateSuspect {
			t.Fatalf("state %v after a network change, want suspect", st)
		}
		if n := r.s.spec.started.Load(); n != 0 {
			t.Fatalf("an idle suspect session dialed before it was used (%d)", n)
		}
		if err := lineRequest(r.addr(), "after", 40*time.Second); err != nil {
			t.Fatalf("first request after the network change: %v", err)
		}
		if n := r.s.spec.won.Load(); n != 1 {
			t.Errorf("%d speculative dials won, want 1", n)
		}
		if n := r.ls.requests.Load(); n != 2 {
			t.Errorf("the backend saw %d requests, want 2", n)
		}
	})
	t.Run("carrying traffic: at once", func(t *testing.T) {
		r := newDeadlineRig(t, SessionOptions{PingTimeout: noPingVerdict})
		c, err := net.Dial("tcp", r.addr()) // an open channel: the session carries traffic
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, 30*time.Second, "the channel to open", func() bool { return r.s.State().OpenConns == 1 })
		r.relay.SilenceFlows()
		r.s.MarkSuspect("network changed")
		waitFor(t, 40*time.Second, "a new connection without any new request", func() bool {
			return r.s.spec.won.Load() == 1
		})
		if n := r.srv.Stats().AuthOK; n != 2 {
			t.Errorf("%d logins, want 2", n)
		}
	})
}

// gatedPingClient holds its pings until gate is closed: a connection that
// is alive but answers its keepalive late (e.g. behind a queued upload).
type gatedPingClient struct {
	SSHClient
	gate chan struct{}
}

func (c *gatedPingClient) Ping(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	select {
	case <-c.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return c.SSHClient.Ping(ctx, timeout)
}

// When the fresh dial wins but the old connection turns out alive, the old
// one is not killed under its channels: it keeps serving them and is
// closed when the last one closes.
func TestReplacedButAliveConnectionDrains(t *testing.T) {
	srv := newServer(t, nil)
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	gate := make(chan struct{})
	var first atomic.Bool
	oldEnded := make(chan struct{})
	s := NewSession(ConnectorFunc(func(ctx context.Context) (SSHClient, error) {
		c, err := DialSSH(ctx, srv.Addr(), clientConfig(srv))
		if err == nil && first.CompareAndSwap(false, true) {
			go func() { _ = c.Wait(); close(oldEnded) }()
			return &gatedPingClient{SSHClient: c, gate: gate}, nil
		}
		return c, err
	}), SessionOptions{Pool: PoolOptions{Disabled: true}})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{DialTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = s.Close() })

	c, err := net.Dial("tcp", fwd.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(40 * time.Second))
	br := bufio.NewReader(c)
	ask := func(id string) {
		t.Helper()
		if _, err := io.WriteString(c, "REQ "+id+"\n"); err != nil {
			t.Fatal(err)
		}
		if line, err := br.ReadString('\n'); err != nil || line != "OK "+id+"\n" {
			t.Fatalf("answer %q, %v; want OK %s", line, err, id)
		}
	}
	ask("a")
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	s.lastAlive.Store(-int64(time.Hour)) // look stuck, so that the check is not skipped
	s.checkAliveNow(gen, "test: an open took too long")
	waitFor(t, 30*time.Second, "the fresh dial to win", func() bool { return s.spec.won.Load() == 1 })
	if err := lineRequest(fwd.Addr().String(), "new", 30*time.Second); err != nil {
		t.Fatalf("a new connection after the replacement: %v", err)
	}
	close(gate) // the old connection answers its ping after all
	waitFor(t, 30*time.Second, "the old connection's verdict", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		o := s.olds[gen]
		return o != nil && o.alive
	})
	ask("b") // the old connection still carries its channel
	select {
	case <-oldEnded:
		t.Fatal("the old connection was closed under its open channel")
	default:
	}
	_ = c.Close()
	select {
	case <-oldEnded:
	case <-time.After(30 * time.Second):
		t.Fatal("the old connection was not closed after its last channel")
	}
	s.mu.Lock()
	kept := len(s.olds)
	s.mu.Unlock()
	if kept != 0 {
		t.Errorf("%d replaced connections still kept", kept)
	}
	if err := lineRequest(fwd.Addr().String(), "after", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().AuthOK; n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}
