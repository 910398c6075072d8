package forwarder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

func TestRetryBeforeFirstByteOnly(t *testing.T) {
	t.Run("killed before the request: retried", func(t *testing.T) {
		srv := newServer(t, nil)
		ls := &lineServer{}
		backend := newRawBackend(t, ls.handle)
		s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
		fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})

		c, err := net.Dial("tcp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, 10*time.Second, "the channel to reach the backend", func() bool { return backend.accepted.Load() == 1 })
		srv.DropAll()
		waitFor(t, 10*time.Second, "the forward to move to a new channel", func() bool { return fwd.Stats().Retries == 1 })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "REQ 1\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "OK 1\n" {
			t.Fatalf("answer after the retry = %q, %v", line, err)
		}
		if n := ls.requests.Load(); n != 1 {
			t.Fatalf("backend saw %d requests, want exactly 1", n)
		}
		if n := srv.Stats().AuthOK; n != 2 {
			t.Fatalf("server saw %d connections, want 2 (the retry used a fresh session)", n)
		}
	})

	t.Run("killed after the request: not retried", func(t *testing.T) {
		srv := newServer(t, nil)
		ls := &lineServer{}
		ls.stall.Store(true)
		backend := newRawBackend(t, ls.handle)
		s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
		fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})

		c, err := net.Dial("tcp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "REQ 1\n"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the backend to get the request", func() bool { return ls.requests.Load() == 1 })
		srv.DropAll()
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := c.Read(make([]byte, 64))
		if err == nil || n != 0 {
			t.Fatalf("client read %d bytes, err %v; want the connection closed without an answer", n, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("client hung: the failure was not surfaced")
		}
		time.Sleep(300 * time.Millisecond)
		if got := ls.requests.Load(); got != 1 {
			t.Fatalf("backend saw %d requests, want 1: a written request must never be sent twice", got)
		}
		if r := fwd.Stats().Retries; r != 0 {
			t.Fatalf("%d retries after bytes were written, want 0", r)
		}
	})
}

// A backend that closes connections which sent nothing for 200 ms, hit by
// sequential requests with random gaps: the pool must never hand out a
// channel the backend already closed.
func TestPoolNeverHandsOutClosedChannel(t *testing.T) {
	srv := newServer(t, nil)
	ls := &lineServer{idle: 200 * time.Millisecond}
	backend := newRawBackend(t, ls.handle)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: poolAlways})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 40
	for i := range n {
		if err := lineRequest(fwd.Addr().String(), fmt.Sprint(i), 10*time.Second); err != nil {
			t.Fatalf("request %d failed: %v (stats %+v)", i, err, fwd.Stats())
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	snap := fwd.Stats()
	// TotalConns may exceed n: the listener is on this machine's loopback,
	// and a test listing "This computer" in a parallel package (backend/ui's
	// TestAppsOnThisComputer) probes every listener of this user once. What
	// must hold is that no connection failed and the backend saw each
	// request exactly once (below).
	if snap.FailedConns != 0 || snap.TotalConns < n {
		t.Fatalf("stats %+v; want %d connections, none failed", snap, n)
	}
	if snap.Pooled == 0 {
		t.Fatalf("no request used a pooled channel; the pool is not working (stats %+v)", snap)
	}
	if got := ls.requests.Load(); got != n {
		t.Fatalf("backend saw %d requests, want %d", got, n)
	}
	ps := s.PoolStats()
	if len(ps) != 1 || ps[0].SafeAge > 120*time.Millisecond || ps[0].SafeAge <= 0 {
		t.Fatalf("pool stats %+v; want the pool to hand out only channels younger than half the backend's 200ms idle timeout", ps)
	}
	t.Logf("pooled %d/%d, pool %+v", snap.Pooled, n, ps)
}

// Early bytes (a server greeting) sent while a channel waits in the pool are
// replayed to the client that gets it.
func TestPoolReplaysEarlyBytes(t *testing.T) {
	srv := newServer(t, nil)
	backend := newRawBackend(t, func(c net.Conn) {
		if _, err := io.WriteString(c, "HELLO\n"); err != nil {
			return
		}
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "ECHO "+line)
	})
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: poolAlways})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
	for i := range 6 {
		c, err := net.Dial("tcp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		hello, err := r.ReadString('\n')
		if err != nil || hello != "HELLO\n" {
			t.Fatalf("conn %d: greeting %q, %v", i, hello, err)
		}
		fmt.Fprintf(c, "x%d\n", i)
		echo, err := r.ReadString('\n')
		if err != nil || echo != fmt.Sprintf("ECHO x%d\n", i) {
			t.Fatalf("conn %d: echo %q, %v", i, echo, err)
		}
		_ = c.Close()
		time.Sleep(50 * time.Millisecond) // let the pool refill
	}
	if fwd.Stats().Pooled == 0 {
		t.Fatal("no connection came from the pool")
	}
}

func TestHalfClose(t *testing.T) {
	srv := newServer(t, nil)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: poolAlways})

	t.Run("client closes its write side first", func(t *testing.T) {
		backend := newRawBackend(t, func(c net.Conn) {
			b, err := io.ReadAll(c) // until the client's EOF arrives
			if err != nil {
				return
			}
			fmt.Fprintf(c, "got %d bytes: %s", len(b), b)
		})
		fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
		c, err := net.Dial("tcp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "ping"); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "got 4 bytes: ping" {
			t.Fatalf("answer after half-close = %q, %v", b, err)
		}
	})

	t.Run("server closes its write side first", func(t *testing.T) {
		got := make(chan string, 1)
		backend := newRawBackend(t, func(c net.Conn) {
			if _, err := io.WriteString(c, "banner"); err != nil {
				return
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			if len(b) > 0 { // pooled channels that were never used send nothing
				got <- string(b)
			}
		})
		fwd := listenLocal(t, targetSpec(t, backend.Addr()), s, LocalOptions{})
		c, err := net.Dial("tcp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c) // ends with the server's EOF
		if err != nil || string(b) != "banner" {
			t.Fatalf("read until EOF = %q, %v", b, err)
		}
		if _, err := io.WriteString(c, "still talking"); err != nil {
			t.Fatalf("write after the server's half-close: %v", err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		select {
		case s := <-got:
			if s != "still talking" {
				t.Fatalf("server got %q after its half-close", s)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("server never saw the client's bytes and EOF")
		}
	})
}

func TestNoGoroutinesLeftAfterClose(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	idle := newRawBackend(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	baseline := runtime.NumGoroutine()
	func() {
		s := NewSession(SSHConnector{Addr: srv.Addr(), Config: clientConfig(srv)}, SessionOptions{Pool: poolAlways})
		defer s.Close()
		fwd, err := ListenLocal(targetSpec(t, web.Addr()), s, LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer fwd.Close()
		fwd2, err := ListenLocal(targetSpec(t, idle.Addr()), s, LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer fwd2.Close()
		for range 5 {
			if _, err := httpGet(fwd.Addr().String(), "/small", 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		// Connections still open at Close must be ended by it.
		var open []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", fwd2.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, "x"); err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		waitFor(t, 10*time.Second, "3 open connections", func() bool { return fwd2.Stats().ActiveConns == 3 })
		waitFor(t, 10*time.Second, "the pool to fill", func() bool {
			for _, p := range s.PoolStats() {
				if p.Idle > 0 {
					return true
				}
			}
			return false
		})
		defer func() {
			for _, c := range open {
				_ = c.Close()
			}
		}()
	}()
	settleGoroutines(t, baseline)
}

// 500 idle forwarded connections must not each hold a copy buffer. The
// Dialer here is plain TCP so that the measurement covers the forward only
// (the in-process SSH server's per-channel buffers would swamp it).
func TestIdleConnectionsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 sockets")
	}
	const n = 500
	var mu sync.Mutex
	var held []net.Conn
	backend := newRawBackend(t, func(c net.Conn) {
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
		buf := make([]byte, 16) // no io.Copy: its 32 KiB buffer would count here
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	dialer := DialerFunc(func(ctx context.Context, host string, port int) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", backend.Addr())
	})
	fwd := listenLocal(t, targetSpec(t, backend.Addr()), dialer, LocalOptions{})

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Traffic once each way, then idle.
		if _, err := io.WriteString(c, "hello"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 20*time.Second, "all connections to be forwarded", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(held) == n && fwd.Stats().BytesOut == 5*n
	})
	after := heap()
	delta := int64(after) - int64(before)
	perConn := delta / n
	t.Logf("heap in use grew by %d KiB for %d idle connections (%d bytes each, including 4 sockets per connection)", delta>>10, n, perConn)
	// Holding one 32 KiB buffer per direction would be 64 KiB per connection.
	if perConn > 16<<10 {
		t.Fatalf("%d bytes of heap per idle connection; want < 16 KiB (copy buffers must not be held while idle)", perConn)
	}
}

type denyAll struct{ calls int }

func (g *denyAll) Allow(net.Conn) error {
	g.calls++
	return errors.New("denied by test guard")
}

func TestGuardRefuses(t *testing.T) {
	var dials int
	dialer := DialerFunc(func(ctx context.Context, host string, port int) (net.Conn, error) {
		dials++
		return nil, errors.New("must not dial")
	})
	g := &denyAll{}
	fwd := listenLocal(t, LocalSpec{TargetHost: "127.0.0.1", TargetPort: 9}, dialer, LocalOptions{Guard: g})
	c, err := net.Dial("tcp", fwd.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a refused connection stayed open")
	}
	waitFor(t, 5*time.Second, "the refusal to be counted", func() bool { return fwd.Stats().Refused == 1 })
	if dials != 0 {
		t.Fatalf("dialed %d times for a refused connection", dials)
	}
	if s := fwd.Stats(); !strings.Contains(s.LastError, "denied by test guard") || s.TotalConns != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestListenLocalErrors(t *testing.T) {
	d := DialerFunc(func(context.Context, string, int) (net.Conn, error) { return nil, errors.New("unused") })
	if _, err := ListenLocal(LocalSpec{TargetHost: "h"}, d, LocalOptions{}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("ListenLocal with port 0 target = %v, want ErrBadSpec", err)
	}
	f := listenLocal(t, LocalSpec{TargetHost: "h", TargetPort: 1}, d, LocalOptions{})
	_, port := hostPort(t, f.Addr().String())
	if f.Spec().BindPort != port {
		t.Fatalf("Spec().BindPort = %d, want the bound port %d", f.Spec().BindPort, port)
	}
	if _, err := ListenLocal(LocalSpec{BindPort: port, TargetHost: "h", TargetPort: 1}, d, LocalOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second listener on the same port = %v, want an 'in use' hint", err)
	}
}

func TestStatsSnapshotJSON(t *testing.T) {
	var s Stats
	for _, d := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 70 * time.Millisecond, time.Minute} {
		s.observeDial(d)
	}
	s.bytesIn.Add(10)
	s.setErr(errors.New("boom"))
	snap := s.Snapshot()
	h := snap.DialLatency
	if h.Count != 5 || len(h.Counts) != len(DialBucketsMs)+1 || h.Counts[0] != 1 || h.Counts[2] != 2 || h.Counts[len(h.Counts)-1] != 1 {
		t.Fatalf("histogram %+v", h)
	}
	if q := h.Quantile(0.5); q != 5 {
		t.Fatalf("median = %v ms, want 5 (the bucket holding 3ms)", q)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"bytesIn":10`, `"activeConns":0`, `"dialLatency":{"boundsMs":[1,2,5`, `"lastError":"boom"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
}

// Faults through the relay: after each, the next request succeeds and no
// request hangs.
func TestFaultsThroughRelay(t *testing.T) {
	hostKey := testrig.NewTestKey(t)
	var events *eventLog
	rig := func(t *testing.T) (*testrig.SSHServer, *testrig.Relay, *testrig.WebApp, *Session, *LocalForward) {
		srv := newServer(t, hostKey)
		relay := testrig.NewRelay(t, srv.Addr())
		web := testrig.NewWebApp(t)
		events = &eventLog{}
		s := newSession(t, relay.Addr(), clientConfig(srv), SessionOptions{ConnectTimeout: 5 * time.Second, Publisher: events, Pool: poolAlways})
		fwd := listenLocal(t, targetSpec(t, web.Addr()), s, LocalOptions{DialTimeout: 15 * time.Second})
		if _, err := httpGet(fwd.Addr().String(), "/small", 10*time.Second); err != nil {
			t.Fatalf("GET before the fault: %v", err)
		}
		return srv, relay, web, s, fwd
	}
	// get fails the test if a request hangs; it returns the request's error.
	get := func(t *testing.T, fwd *LocalForward) error {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			_, err := httpGet(fwd.Addr().String(), "/small", 25*time.Second)
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("request hung")
			return nil
		}
	}

	t.Run("blackout then resume", func(t *testing.T) {
		_, relay, _, _, fwd := rig(t)
		relay.Blackhole()
		during := make(chan error, 1)
		go func() {
			_, err := httpGet(fwd.Addr().String(), "/small", 25*time.Second)
			during <- err
		}()
		time.Sleep(1500 * time.Millisecond)
		relay.Resume()
		if err := get(t, fwd); err != nil {
			t.Fatalf("GET after resume: %v", err)
		}
		select {
		case err := <-during:
			t.Logf("GET during the blackout ended with %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("GET started during the blackout hung")
		}
	})

	t.Run("network change", func(t *testing.T) {
		srv, relay, _, _, fwd := rig(t)
		relay.CutFlows()
		if err := get(t, fwd); err != nil {
			t.Fatalf("GET after the network change: %v", err)
		}
		if n := srv.Stats().AuthOK; n != 2 {
			t.Fatalf("server saw %d connections, want 2", n)
		}
	})

	t.Run("long blackout replaced by new path", func(t *testing.T) {
		srv, relay, _, s, fwd := rig(t)
		relay.Blackhole()
		s.MarkSuspect("test: the network went away")
		if err := get(t, fwd); err == nil {
			t.Log("GET during the blackout succeeded (resumed in time)")
		}
		relay.Resume()
		relay.CutFlows()
		if err := get(t, fwd); err != nil {
			t.Fatalf("GET after the blackout: %v", err)
		}
		if n := srv.Stats().AuthOK; n < 2 {
			t.Fatalf("server saw %d connections; the dead one should have been replaced", n)
		}
	})

	// The server's reset reaches the client through the relay a moment
	// later; a request written into a pooled channel within that moment
	// cannot be retried (never send twice), so these wait until the session
	// noticed the loss, as any request a moment later would.
	noticed := func(t *testing.T) {
		t.Helper()
		waitFor(t, 10*time.Second, "the session to notice the lost connection", func() bool {
			_, ok := events.find(func(e Event) bool { return e.State == StateReconnecting })
			return ok
		})
	}

	t.Run("server drops all", func(t *testing.T) {
		srv, _, _, _, fwd := rig(t)
		srv.DropAll()
		noticed(t)
		if err := get(t, fwd); err != nil {
			t.Fatalf("GET after DropAll: %v", err)
		}
	})

	t.Run("server restarted", func(t *testing.T) {
		srv, relay, _, _, fwd := rig(t)
		srv2 := newServer(t, hostKey) // same host key, new process in effect
		relay.SetTarget(srv2.Addr())
		_ = srv.Close()
		noticed(t)
		if err := get(t, fwd); err != nil {
			t.Fatalf("GET after the server restart: %v", err)
		}
		if n := srv2.Stats().Conns; n != 1 {
			t.Fatalf("new server saw %d connections, want 1", n)
		}
	})
}
