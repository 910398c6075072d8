package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

func TestStateString(t *testing.T) {
	cases := []struct {
		s    State
		want string
	}{
		{StateIdle, "idle"}, {StateConnecting, "connecting"}, {StateReady, "ready"},
		{StateSuspect, "suspect"}, {StateReconnecting, "reconnecting"}, {StateFailed, "failed"},
		{StateClosed, "closed"}, {State(42), "State(42)"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.s.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			if tc.s > StateClosed {
				return
			}
			var back State
			if err := back.UnmarshalText([]byte(tc.want)); err != nil || back != tc.s {
				t.Fatalf("UnmarshalText(%q) = %v, %v", tc.want, back, err)
			}
		})
	}
	var s State
	if err := s.UnmarshalText([]byte("sleepy")); err == nil {
		t.Fatal("UnmarshalText accepted an unknown state")
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	mid := func() float64 { return 0.5 } // no jitter
	cases := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond}, {5, time.Second}, {50, time.Second},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.failures), func(t *testing.T) {
			if got := b.Delay(tc.failures, mid); got != tc.want {
				t.Fatalf("Delay(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
	t.Run("jitter bounds", func(t *testing.T) {
		lo, hi := b.Delay(3, func() float64 { return 0 }), b.Delay(3, func() float64 { return 0.999999 })
		if lo < 319*time.Millisecond || lo > 321*time.Millisecond || hi < 479*time.Millisecond || hi > 481*time.Millisecond {
			t.Fatalf("jittered range [%v, %v], want about [320ms, 480ms]", lo, hi)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		if got := (Backoff{}).Delay(1, mid); got != 100*time.Millisecond {
			t.Fatalf("default first delay %v, want 100ms", got)
		}
		if got := (Backoff{}).Delay(100, mid); got != 10*time.Second {
			t.Fatalf("default cap %v, want 10s", got)
		}
	})
}

func TestLazyDial(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenLocal(t, targetSpec(t, web.Addr()), s, LocalOptions{})

	if ta := fwd.Addr().(*net.TCPAddr); !ta.IP.IsLoopback() {
		t.Errorf("forward listens on %v, want loopback by default", ta)
	}
	if n := srv.Stats().AuthOK; n != 0 {
		t.Fatalf("server saw %d connections before any use, want 0", n)
	}
	if st := s.State().State; st != StateIdle {
		t.Fatalf("state before use = %v, want idle", st)
	}
	body, err := httpGet(fwd.Addr().String(), "/small", 10*time.Second)
	if err != nil || body != "small\n" {
		t.Fatalf("GET through the forward = %q, %v", body, err)
	}
	if n := srv.Stats().AuthOK; n != 1 {
		t.Fatalf("server saw %d connections after first use, want 1", n)
	}
	if n := web.Count("/small"); n != 1 {
		t.Fatalf("web app saw %d requests, want 1", n)
	}
	if st := s.State().State; st != StateReady {
		t.Fatalf("state after use = %v, want ready", st)
	}
	// Bytes are counted after each write returns, so the client can hold the
	// whole answer a moment before BytesOut moves: wait for it, bounded.
	waitFor(t, 5*time.Second, "the stats to count the GET", func() bool {
		snap := fwd.Stats()
		return snap.BytesOut > 0
	})
	snap := fwd.Stats()
	if snap.TotalConns != 1 || snap.DialLatency.Count != 1 || snap.BytesIn == 0 || snap.BytesOut == 0 {
		t.Fatalf("stats after one GET = %+v", snap)
	}
}

func TestSingleFlightRedial(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
	}{
		{"on demand", -1},
		{"background reconnect", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			web := testrig.NewWebApp(t)
			h, p := hostPort(t, web.Addr())
			s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{ReconnectWindow: tc.window, Pool: PoolOptions{Disabled: true}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := s.Dial(ctx, h, p)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Close()

			srv.DropAll()
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for range 50 {
				wg.Go(func() {
					c, err := s.Dial(ctx, h, p)
					if err != nil {
						errs <- err
						return
					}
					_ = c.Close()
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("dial after DropAll: %v", err)
			}
			st := srv.Stats()
			if st.Conns != 2 || st.ActiveConns != 1 {
				t.Fatalf("server stats after DropAll + 50 dials: Conns=%d ActiveConns=%d, want exactly one new connection (2 total, 1 active)", st.Conns, st.ActiveConns)
			}
		})
	}
}

func TestPingBlackholedRelayClosesClient(t *testing.T) {
	srv := newServer(t, nil)
	relay := testrig.NewRelay(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := DialSSH(ctx, relay.Addr(), clientConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(ctx, 5*time.Second); err != nil {
		t.Fatalf("ping on a healthy path: %v", err)
	}
	relay.Blackhole()
	defer relay.Resume()
	start := time.Now()
	_, err = c.Ping(ctx, 300*time.Millisecond)
	if !errors.Is(err, ErrPingTimeout) {
		t.Fatalf("ping through a blackhole = %v, want ErrPingTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ping took %v despite a 300ms timeout", d)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("client still open 5s after a ping timeout; it must be closed")
	}
	if _, _, err := c.OpenChannel("direct-tcpip", nil); err == nil {
		t.Fatal("OpenChannel works on a client closed by a ping timeout")
	}
}

func TestRefusedChannelKeepsSession(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.SetRefuseChannels(true)
	_, err := s.Dial(ctx, h, p)
	if !errors.Is(err, ErrChannelRefused) {
		t.Fatalf("Dial with channels refused = %v, want ErrChannelRefused", err)
	}
	srv.SetRefuseChannels(false)
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if n := srv.Stats().AuthOK; n != 1 {
		t.Fatalf("a refused channel made the session reconnect: %d connections, want 1", n)
	}
	fwd := listenLocal(t, LocalSpec{TargetHost: h, TargetPort: p}, s, LocalOptions{})
	srv.SetRefuseChannels(true)
	if _, err := httpGet(fwd.Addr().String(), "/small", 10*time.Second); err == nil {
		t.Fatal("GET succeeded although the server refuses channels")
	}
	if snap := fwd.Stats(); snap.FailedConns != 1 || !strings.Contains(snap.LastError, "refused") || snap.Retries != 0 {
		t.Fatalf("stats after a refused channel = %+v; want 1 failure, no retry, the reason in LastError", snap)
	}
}

func TestIdleCloseAndPingBeforeUse(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("ping when idle", func(t *testing.T) {
		s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{PingIdleThreshold: 100 * time.Millisecond, Pool: PoolOptions{Disabled: true}})
		c, err := s.Dial(ctx, h, p)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		before := srv.Stats().Keepalives
		time.Sleep(300 * time.Millisecond)
		c, err = s.Dial(ctx, h, p)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if got := srv.Stats().Keepalives; got != before+1 {
			t.Fatalf("keepalives %d → %d; want one ping before using an idle session", before, got)
		}
		c, err = s.Dial(ctx, h, p)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if got := srv.Stats().Keepalives; got != before+1 {
			t.Fatalf("pinged again right after a ping: %d keepalives, want %d", got, before+1)
		}
		_ = s.Close()
	})

	t.Run("close when idle", func(t *testing.T) {
		s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{IdleTimeout: 200 * time.Millisecond})
		base := srv.Stats().AuthOK
		c, err := s.Dial(ctx, h, p)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		if st := s.State().State; st != StateReady {
			t.Fatalf("session with an open channel is %v, want ready (idle means no open channels)", st)
		}
		_ = c.Close()
		waitFor(t, 5*time.Second, "the session to close when idle", func() bool { return s.State().State == StateIdle })
		waitFor(t, 5*time.Second, "the server to see the connection end", func() bool { return srv.Stats().ActiveConns == 0 })
		c, err = s.Dial(ctx, h, p)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if got := srv.Stats().AuthOK - base; got != 2 {
			t.Fatalf("%d connections, want 2 (one before and one after the idle close)", got)
		}
		_ = s.Close()
	})
}

func TestSessionEvents(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	var log eventLog
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Name: "tester@rig", Publisher: &log})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	srv.DropAll()
	waitFor(t, 10*time.Second, "a reconnected event", func() bool {
		_, ok := log.find(func(e Event) bool { return e.State == StateReady && e.Downtime > 0 })
		return ok
	})
	_ = s.Close()
	evs := log.events()
	want := []State{StateConnecting, StateReady, StateReconnecting, StateReady, StateClosed}
	var got []State
	for _, e := range evs {
		got = append(got, e.State)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("event states %v, want %v (events: %v)", got, want, evs)
	}
	re := evs[3]
	if !strings.HasPrefix(re.Reason, "reconnected after ") || re.Prev != StateReconnecting || re.Session != "tester@rig" || re.Time.IsZero() {
		t.Fatalf("reconnect event = %+v", re)
	}
	if lost := evs[2]; lost.Err == nil || lost.Error == "" {
		t.Fatalf("the reconnecting event carries no error: %+v", lost)
	}
}

func TestConnectRetriesWithBackoff(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("transient", func(t *testing.T) {
		fc := &failingConnector{err: errTestConnect, inner: SSHConnector{Addr: srv.Addr(), Config: clientConfig(srv)}}
		fc.n.Store(3)
		var log eventLog
		s := NewSession(fc, SessionOptions{Publisher: &log, Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
		defer s.Close()
		c, err := s.Dial(ctx, h, p)
		if err != nil {
			t.Fatalf("Dial after 3 failed connects: %v", err)
		}
		_ = c.Close()
		if n := fc.calls.Load(); n != 4 {
			t.Fatalf("%d connect attempts, want 4", n)
		}
		_ = s.Close()
		e, ok := log.find(func(e Event) bool { return e.State == StateFailed && e.Attempt == 3 })
		if !ok || e.RetryIn <= 0 || !errors.Is(e.Err, errTestConnect) {
			t.Fatalf("no failed event for attempt 3 with a retry delay: %v", log.events())
		}
	})

	t.Run("permanent", func(t *testing.T) {
		fc := &failingConnector{err: fmt.Errorf("%w: wrong password", ErrPermanent), inner: SSHConnector{Addr: srv.Addr(), Config: clientConfig(srv)}}
		fc.n.Store(100)
		s := NewSession(fc, SessionOptions{})
		defer s.Close()
		start := time.Now()
		_, err := s.Dial(ctx, h, p)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrPermanent) {
			t.Fatalf("Dial with a permanent error = %v, want ErrUnavailable wrapping ErrPermanent", err)
		}
		if n := fc.calls.Load(); n != 1 {
			t.Fatalf("%d attempts on a permanent error, want 1", n)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("permanent failure took %v", d)
		}
		if st := s.State(); st.State != StateFailed || !strings.Contains(st.Error, "wrong password") {
			t.Fatalf("state = %+v, want failed with the reason", st)
		}
	})

	t.Run("dial respects ctx", func(t *testing.T) {
		fc := &failingConnector{err: errTestConnect}
		fc.n.Store(1 << 30)
		s := NewSession(fc, SessionOptions{Backoff: Backoff{Initial: 50 * time.Millisecond, Max: 50 * time.Millisecond}})
		defer s.Close()
		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer dcancel()
		_, err := s.Dial(dctx, h, p)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errTestConnect) {
			t.Fatalf("Dial = %v, want the deadline and the last connect error", err)
		}
		if n := fc.calls.Load(); n < 2 {
			t.Fatalf("%d attempts within 300ms at 50ms backoff; want retries", n)
		}
	})
}

func TestDialClosedSession(t *testing.T) {
	s := NewSession(ConnectorFunc(func(context.Context) (SSHClient, error) { return nil, errTestConnect }), SessionOptions{})
	_ = s.Close()
	_ = s.Close()
	if _, err := s.Dial(context.Background(), "h", 1); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Dial after Close = %v, want ErrSessionClosed", err)
	}
	if _, err := s.Dial(context.Background(), "", 1); !errors.Is(err, ErrBadTarget) {
		t.Fatalf("Dial with no host = %v, want ErrBadTarget", err)
	}
	if st := s.State().State; st != StateClosed {
		t.Fatalf("state after Close = %v", st)
	}
}

// The server goes silent (SetStall): a session in use must notice through
// its ping timeout, not hang, and recover when the server answers again.
func TestStalledServerIsDetected(t *testing.T) {
	srv := newServer(t, nil)
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{StallTimeout: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond, ConnectTimeout: 2 * time.Second})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{DialTimeout: 3 * time.Second})
	if err := lineRequest(fwd.Addr().String(), "1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	srv.SetStall(true)
	start := time.Now()
	err := lineRequest(fwd.Addr().String(), "2", 20*time.Second)
	if err == nil {
		t.Fatal("request through a stalled server succeeded")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("request on a stalled server took %v to fail: %v", d, err)
	}
	srv.SetStall(false)
	waitFor(t, 15*time.Second, "a request to succeed after the stall", func() bool {
		return lineRequest(fwd.Addr().String(), "3", 10*time.Second) == nil
	})
}

// A connection that goes half-dead (writes vanish) makes new channel opens
// stall; the stall timeout → ping → replace path must move the request to
// a fresh connection.
func TestOpenOnDeadConnectionMovesToNew(t *testing.T) {
	srv := newServer(t, nil)
	relay := testrig.NewRelay(t, srv.Addr())
	ls := &lineServer{}
	backend := newRawBackend(t, ls.handle)
	h, p := hostPort(t, backend.Addr())
	s := newSession(t, relay.Addr(), clientConfig(srv), SessionOptions{StallTimeout: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond, Pool: PoolOptions{Disabled: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	relay.Blackhole()
	// Old flows stay black-holed; the relay target for new flows is the
	// same server, reached directly once we resume only new flows: emulate
	// by resuming after the old connection was given up.
	done := make(chan error, 1)
	go func() {
		c, err := s.Dial(ctx, h, p)
		if err == nil {
			_ = c.Close()
		}
		done <- err
	}()
	waitFor(t, 10*time.Second, "the stalled session to be replaced", func() bool {
		st := s.State().State
		return st == StateReconnecting || st == StateFailed
	})
	relay.Resume()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dial waiting on a dead session: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dial waiting on a dead session hung")
	}
	if n := srv.Stats().AuthOK; n < 2 {
		t.Fatalf("server saw %d connections; the dead one should have been replaced", n)
	}
}

func TestClientFromSSHCloseIdempotent(t *testing.T) {
	srv := newServer(t, nil)
	c, err := DialSSH(context.Background(), srv.Addr(), clientConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	_ = c.Close()
	waited := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DialSSH(ctx, srv.Addr(), clientConfig(srv)); err == nil {
		t.Fatal("DialSSH with a canceled ctx succeeded")
	}
}

func TestConnectEagerly(t *testing.T) {
	srv := newServer(t, nil)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.State().State; st != StateReady || srv.Stats().AuthOK != 1 {
		t.Fatalf("after Connect: state %v, %d server connections; want ready and 1", st, srv.Stats().AuthOK)
	}
	if err := s.Connect(ctx); err != nil || srv.Stats().AuthOK != 1 {
		t.Fatalf("second Connect = %v with %d connections; want the same connection", err, srv.Stats().AuthOK)
	}

	bad := NewSession(ConnectorFunc(func(context.Context) (SSHClient, error) {
		return nil, fmt.Errorf("%w: host key mismatch", ErrPermanent)
	}), SessionOptions{})
	defer bad.Close()
	if err := bad.Connect(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Connect with a permanent failure = %v", err)
	}
}
