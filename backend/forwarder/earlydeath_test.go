package forwarder

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// droppingConnector logs in for real and, while drop is on, makes the
// server reset the connection right after the login, as sshd does when the
// user's ChrootDirectory is missing.
type droppingConnector struct {
	srv    *testrig.SSHServer
	inner  Connector
	drop   atomic.Bool
	logins atomic.Int64
}

func (c *droppingConnector) Connect(ctx context.Context) (SSHClient, error) {
	cl, err := c.inner.Connect(ctx)
	if err == nil {
		c.logins.Add(1)
		if c.drop.Load() {
			c.srv.DropAll()
		}
	}
	return cl, err
}

func newDroppingSession(t *testing.T, log *eventLog) (*Session, *droppingConnector, string, int) {
	t.Helper()
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	dc := &droppingConnector{srv: srv, inner: SSHConnector{Addr: srv.Addr(), Config: clientConfig(srv)}}
	dc.drop.Store(true)
	opts := SessionOptions{Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
	if log != nil {
		opts.Publisher = log
	}
	s := NewSession(dc, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s, dc, h, p
}

// TestDropsAfterLoginConnect: a server that closes every connection right
// after the login makes Connect fail after EarlyDeathLimit logins with the
// plain reason (not "connected"); Dials meanwhile fail at once without a new
// login; once the server is fixed, Connect works again.
func TestDropsAfterLoginConnect(t *testing.T) {
	var log eventLog
	s, dc, h, p := newDroppingSession(t, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	err := s.Connect(ctx)
	if !errors.Is(err, ErrDropsAfterLogin) || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Connect to a server that drops every login = %v, want ErrDropsAfterLogin (permanent)", err)
	}
	if n := dc.logins.Load(); n != EarlyDeathLimit {
		t.Errorf("%d logins, want %d", n, EarlyDeathLimit)
	}
	st := s.State()
	if st.State != StateFailed || !strings.Contains(st.Error, "right after login") || !strings.Contains(st.Error, "ChrootDirectory") {
		t.Errorf("state = %+v, want failed saying the server closes the connection right after login", st)
	}
	if e, ok := log.find(func(e Event) bool { return e.State == StateReady && e.Downtime > 0 }); ok {
		t.Errorf("a login that the server dropped was published as a reconnect: %v", e)
	}

	start := time.Now()
	_, err = s.Dial(ctx, h, p)
	if !errors.Is(err, ErrDropsAfterLogin) {
		t.Errorf("Dial while given up = %v, want ErrDropsAfterLogin", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial while given up took %v, want an error at once", d)
	}
	if n := dc.logins.Load(); n != EarlyDeathLimit {
		t.Errorf("Dial while given up logged in again (%d logins)", n)
	}

	// Connect (a person asking) tries once more, at once.
	if err := s.Connect(ctx); !errors.Is(err, ErrDropsAfterLogin) {
		t.Errorf("second Connect = %v, want ErrDropsAfterLogin", err)
	}
	if n := dc.logins.Load(); n != EarlyDeathLimit+1 {
		t.Errorf("second Connect: %d logins in all, want %d (one more)", n, EarlyDeathLimit+1)
	}

	dc.drop.Store(false) // the administrator fixed sshd_config
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect after the server was fixed: %v", err)
	}
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatalf("Dial after the server was fixed: %v", err)
	}
	_ = c.Close()
	if st := s.State(); st.State != StateReady {
		t.Errorf("state after the fix = %+v, want ready", st)
	}
}

// TestDropsAfterLoginDial: the first use is a Dial (no Connect): it ends
// with the plain error after at most EarlyDeathLimit logins, and nothing
// keeps logging in afterwards.
func TestDropsAfterLoginDial(t *testing.T) {
	s, dc, h, p := newDroppingSession(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Dial(ctx, h, p)
	if !errors.Is(err, ErrDropsAfterLogin) {
		t.Fatalf("Dial = %v, want ErrDropsAfterLogin", err)
	}
	if n := dc.logins.Load(); n > EarlyDeathLimit {
		t.Errorf("%d logins for one Dial, want at most %d", n, EarlyDeathLimit)
	}
	time.Sleep(500 * time.Millisecond) // the background redial would have run by now
	if n := dc.logins.Load(); n > EarlyDeathLimit {
		t.Errorf("%d logins after giving up, want at most %d", n, EarlyDeathLimit)
	}
	if st := s.State(); st.State != StateFailed || !strings.Contains(st.Error, "right after login") {
		t.Errorf("state = %+v, want failed saying why", st)
	}
}

// TestDropsAfterUseIsNotEarly: a connection that carried something and
// then was lost is an ordinary loss: it never counts towards giving up.
func TestDropsAfterUseIsNotEarly(t *testing.T) {
	var log eventLog
	s, dc, h, p := newDroppingSession(t, &log)
	dc.drop.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 * EarlyDeathLimit {
		c, err := s.Dial(ctx, h, p)
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
		_ = c.Close()
		seen := len(log.events())
		dc.srv.DropAll()
		// By the events, not by polling the state: the redial of a used
		// connection is so quick that the state may be ready again between polls.
		waitFor(t, 5*time.Second, "the loss to be noticed", func() bool {
			for _, e := range log.events()[seen:] {
				if e.State != StateReady {
					return true
				}
			}
			return false
		})
	}
	if st := s.State(); strings.Contains(st.Error, "right after login") {
		t.Errorf("state = %+v after losses of used connections", st)
	}
}

// TestDropsAfterLoginWebPage: a page load through a web forward to a server
// that drops every login gets Porthole's page naming the problem at once
// (not the self-reloading "Reconnecting…" page), and no more logins.
func TestDropsAfterLoginWebPage(t *testing.T) {
	s, dc, h, p := newDroppingSession(t, nil)
	fwd := listenWeb(t, webSpec(t, net.JoinHostPort(h, strconv.Itoa(p))), s, WebOptions{})
	c := webClient(t)
	for i := range 3 {
		start := time.Now()
		resp, body := do(t, c, "GET", fwd.URL()+"/small", kindNavigate, "", nil)
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(errorHeader) != "drops-login" ||
			!strings.Contains(body, "closes every login") || !strings.Contains(body, "ChrootDirectory") {
			t.Fatalf("page load %d: %s %q %.300q", i, resp.Status, resp.Header.Get(errorHeader), body)
		}
		if d := time.Since(start); i > 0 && d > 2*time.Second {
			t.Errorf("page load %d took %v, want the error at once", i, d)
		}
	}
	if n := dc.logins.Load(); n > EarlyDeathLimit {
		t.Errorf("%d logins for 3 page loads, want at most %d", n, EarlyDeathLimit)
	}
}

// TestDropsAfterLoginTwiceThenWorks: one or two logins dropped (a network
// that hiccuped) are redialed after a backoff and end connected, with no
// failure left behind.
func TestDropsAfterLoginTwiceThenWorks(t *testing.T) {
	s, dc, h, p := newDroppingSession(t, nil)
	inner := dc.inner
	var n atomic.Int64
	dc.inner = ConnectorFunc(func(ctx context.Context) (SSHClient, error) {
		if n.Add(1) > EarlyDeathLimit-1 {
			dc.drop.Store(false)
		}
		return inner.Connect(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect after %d dropped logins: %v", EarlyDeathLimit-1, err)
	}
	if got := dc.logins.Load(); got != EarlyDeathLimit {
		t.Errorf("%d logins, want %d", got, EarlyDeathLimit)
	}
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if st := s.State(); st.State != StateReady || st.Error != "" {
		t.Errorf("state = %+v, want ready", st)
	}
}
