package forwarder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/internal/testrig"
)

const testPassword = "correct horse"

// poolAlways pools even at loopback RTT (by default the pool stays off below
// 1 ms RTT, where it saves nothing), so that tests exercise it.
var poolAlways = PoolOptions{MinRTT: -1}

// newServer starts testrig's in-process SSH server with password auth.
func newServer(t testing.TB, hostKey ssh.Signer) *testrig.SSHServer {
	t.Helper()
	return testrig.NewSSHServer(t, testrig.SSHServerOptions{User: "tester", Password: testPassword, HostKey: hostKey})
}

func clientConfig(srv *testrig.SSHServer) *ssh.ClientConfig {
	return srv.ClientConfig(ssh.Password(testPassword))
}

// newSession makes a Session that connects to addr (the server or a relay in
// front of it) and closes it at cleanup.
func newSession(t testing.TB, addr string, cfg *ssh.ClientConfig, opts SessionOptions) *Session {
	t.Helper()
	s := NewSession(SSHConnector{Addr: addr, Config: cfg}, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func listenLocal(t testing.TB, spec LocalSpec, d Dialer, opts LocalOptions) *LocalForward {
	t.Helper()
	f, err := ListenLocal(spec, d, opts)
	if err != nil {
		t.Fatalf("ListenLocal(%v): %v", spec, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return h, n
}

func targetSpec(t testing.TB, backendAddr string) LocalSpec {
	h, p := hostPort(t, backendAddr)
	return LocalSpec{TargetHost: h, TargetPort: p}
}

// waitFor polls cond until it holds or the (generous) timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// httpGet does one GET on a fresh TCP connection to addr.
func httpGet(addr, path string, timeout time.Duration) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}

// rawBackend is a TCP server running handle for each connection; Close
// (at cleanup) closes everything and waits.
type rawBackend struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
}

func newRawBackend(t testing.TB, handle func(net.Conn)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveRawBackend(t, ln, handle)
}

// serveRawBackend is newRawBackend on a listener of the caller's.
func serveRawBackend(t testing.TB, ln net.Listener, handle func(net.Conn)) *rawBackend {
	b := &rawBackend{ln: ln, conns: make(map[net.Conn]struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			if b.closed {
				b.mu.Unlock()
				_ = c.Close()
				return
			}
			b.conns[c] = struct{}{}
			b.wg.Add(1)
			b.mu.Unlock()
			go func() {
				defer b.wg.Done()
				handle(c)
				_ = c.Close()
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(b.Close)
	return b
}

func (b *rawBackend) Addr() string { return b.ln.Addr().String() }

func (b *rawBackend) Close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	_ = b.ln.Close()
	b.wg.Wait()
}

// lineServer answers "REQ x\n" with "OK x\n", counting requests. With stall
// set it counts the request and then sends nothing until the connection
// closes. With idle > 0 it closes connections that send nothing for that
// long (like web servers do).
type lineServer struct {
	requests atomic.Int64
	stall    atomic.Bool
	idle     time.Duration
}

func (ls *lineServer) handle(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		if ls.idle > 0 {
			_ = c.SetReadDeadline(time.Now().Add(ls.idle))
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		if !strings.HasPrefix(line, "REQ ") {
			// Not a test's request: another test's scan of this machine's
			// listeners (an HTTP probe) reached this loopback backend.
			return
		}
		ls.requests.Add(1)
		if ls.stall.Load() {
			_, _ = io.Copy(io.Discard, r)
			return
		}
		if _, err := io.WriteString(c, "OK "+strings.TrimPrefix(line, "REQ ")); err != nil {
			return
		}
	}
}

// lineRequest sends one request on a fresh connection to addr and reads the
// answer.
func lineRequest(addr, id string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "REQ "+id+"\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if line != "OK "+id+"\n" {
		return fmt.Errorf("answer %q, want %q", line, "OK "+id)
	}
	return nil
}

// settleGoroutines waits until at most baseline goroutines run, else fails
// with a dump.
// steadyGoroutines returns the goroutine count once it has stopped moving
// (the same over 5 samples 20 ms apart; at most 3 s): a baseline taken right
// after a connection comes up can miss the goroutines it is still starting
// (the server side's handlers, the client's waiters), and then a test that
// compares against it fails for goroutines that are not leaks.
func steadyGoroutines() int {
	deadline := time.Now().Add(3 * time.Second)
	n, same := runtime.NumGoroutine(), 0
	for same < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

func settleGoroutines(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines still running, want ≤ %d:\n%s", n, baseline, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventLog collects Session events.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) Publish(e Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.ev...)
}

func (l *eventLog) find(pred func(Event) bool) (Event, bool) {
	for _, e := range l.events() {
		if pred(e) {
			return e, true
		}
	}
	return Event{}, false
}

// failingConnector fails the first n connects, then dials for real.
type failingConnector struct {
	n     atomic.Int64
	err   error
	inner Connector
	calls atomic.Int64
}

func (c *failingConnector) Connect(ctx context.Context) (SSHClient, error) {
	c.calls.Add(1)
	if c.n.Add(-1) >= 0 {
		return nil, c.err
	}
	return c.inner.Connect(ctx)
}

var errTestConnect = errors.New("test: connection refused")
